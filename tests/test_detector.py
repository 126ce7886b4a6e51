"""Detectors: the ultralytics wrapper (LiteRT threads), the YOLOX and SSD backends (decoding by hand,
real frames, batches, threads), the embedded default (finds the sample's people, its cache key) and
the error of a detector ultralytics cannot download."""
from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

from tests.conftest import shared_path


@pytest.fixture(scope="module")
def frames():
    cap = cv2.VideoCapture(str(shared_path("data", "pets09-s2l1", "vtest.avi")))
    imgs = [cap.read()[1] for _ in range(3)]
    cap.release()
    return [imgs[0], imgs[2][:, 300:700].copy()]   # two sizes, as from two cameras


def test_litert_threads_reach_the_interpreter_and_keep_the_boxes(frames, monkeypatch):
    pytest.importorskip("ai_edge_litert")
    import ai_edge_litert.interpreter as litert

    import ultralytics.nn.backends.litert as backend
    from pipeline.run.detectors import YoloDetector

    model = str(shared_path("models", "yolov8n_saved_model", "yolov8n_full_integer_quant.tflite"))
    seen = []
    real = litert.Interpreter

    class Recording(real):   # the real interpreter, recording the thread count it was built with
        def __init__(self, *args, num_threads=None, **kwargs):
            seen.append(num_threads)
            super().__init__(*args, num_threads=num_threads, **kwargs)

    monkeypatch.setattr(litert, "Interpreter", Recording)
    default = backend.NUM_THREADS
    boxes = {n: YoloDetector(model, device="cpu", threads=n)(frames) for n in (1, 2)}
    assert seen == [1, 2]
    assert backend.NUM_THREADS == default            # ultralytics' own setting is restored
    assert [b.shape[0] for b in boxes[1]] == [b.shape[0] for b in boxes[2]]
    assert all(b.shape[0] > 0 for b in boxes[1])     # PETS frames show several people
    for a, b in zip(boxes[1], boxes[2]):
        np.testing.assert_allclose(a, b, atol=1e-4)


def test_threads_zero_means_all_cores():
    import os

    from pipeline.run.detectors import YoloDetector

    model = str(shared_path("models", "yolov8n_saved_model", "yolov8n_full_integer_quant.tflite"))
    assert YoloDetector(model, device="cpu").threads == (os.cpu_count() or 1)


def test_negative_threads_is_a_config_error():
    from pipeline.run.config import DetectorConfig

    with pytest.raises(ValueError, match="detector.threads"):
        DetectorConfig(threads=-1)


# ---- the network backends (YOLOX, SSD) and the embedded default -----------------------------------
def _yolox_row(raw, level_offset, cells_x, x, y, values):
    """Write one raw YOLOX row: cell (x, y) of a map ``cells_x`` cells wide starting at ``level_offset``."""
    raw[level_offset + y * cells_x + x, :len(values)] = values


def test_yolox_decode_of_a_hand_made_grid_output():
    from pipeline.run.detectors.yolox import decode, grid_cells, to_image

    assert grid_cells(416, 416) == 3549
    assert grid_cells(64, 64) == 8 * 8 + 4 * 4 + 2 * 2
    raw = np.zeros((84, 85), np.float32)
    # stride 16 map (4 x 4 cells, after the 64 stride-8 cells), cell x=2, y=1: centre ((2 + 0.5) * 16,
    # (1 + 0.25) * 16) = (40, 20), size (exp(log 2) * 16, exp(log 4) * 16) = (32, 64), score 0.9 * 0.8
    _yolox_row(raw, 64, 4, 2, 1, [0.5, 0.25, np.log(2), np.log(4), 0.9, 0.8])
    # a confident box of another class (class 1): no person
    _yolox_row(raw, 0, 8, 3, 3, [0, 0, 0, 0, 0.95, 0.05, 0.9])
    # stride 32 map cell x=1, y=0 with a low person score 0.3 * 0.5 = 0.15
    _yolox_row(raw, 80, 2, 1, 0, [0, 0, 0, 0, 0.3, 0.5])
    boxes = decode(raw, (64, 64), conf=0.5)
    np.testing.assert_allclose(boxes, [[24, -12, 56, 52, 0.72, 0]], rtol=1e-6, atol=1e-5)
    low = decode(raw, (64, 64), conf=0.1)                   # low scores are kept down to conf
    assert len(low) == 2
    assert np.isclose(low[:, 4].min(), 0.15)
    # back to a 128 x 100 (h x w) image letterboxed with ratio 0.5, clipped to it
    np.testing.assert_allclose(to_image(boxes, 0.5, (128, 100, 3))[0, :4], [48, 0, 100, 104])
    with pytest.raises(ValueError, match="rows"):
        decode(raw[:80], (64, 64), conf=0.5)


def test_letterbox_keeps_the_aspect_ratio_top_left():
    from pipeline.run.detectors.yolox import PAD_VALUE, letterbox

    img = np.full((384, 258, 3), 7, np.uint8)
    canvas, ratio = letterbox(img, (416, 416))
    assert canvas.shape == (416, 416, 3)
    assert ratio == pytest.approx(416 / 384)
    assert (canvas[:, :279] == 7).all()
    assert (canvas[:, 280:] == PAD_VALUE).all()


def test_nms_keeps_the_best_of_overlapping_boxes():
    from pipeline.run.detectors.yolox import nms

    boxes = np.array([[1, 0, 11, 10, 0.8, 0],        # IoU 90 / 110 = 0.82 with the next one
                      [0, 0, 10, 10, 0.9, 0],
                      [50, 50, 60, 60, 0.5, 0]], np.float32)
    np.testing.assert_array_equal(nms(boxes, 0.7), boxes[[1, 2]])            # best score first
    np.testing.assert_array_equal(nms(boxes, 0.85), boxes[[1, 0, 2]])
    assert nms(np.zeros((0, 6), np.float32), 0.7).shape == (0, 6)


def test_ssd_rows_to_boxes_per_image():
    from pipeline.run.detectors.ssd import parse_rows

    rows = np.array([[0, 1, 0.9, 0.1, 0.2, 0.3, 0.6],     # image 0, pedestrian
                     [1, 1, 0.4, 0.5, 0.0, 1.2, 0.5],     # image 1, x_max past the border: clipped
                     [0, 2, 0.99, 0, 0, 1, 1],             # another class
                     [0, 1, 0.05, 0, 0, 1, 1],             # under conf
                     [0, 1, 0.95, 0.0, 0.0, 0.1, 0.1],     # best of image 0
                     [-1, 0, 0, 0, 0, 0, 0],               # end of the list
                     [1, 1, 0.99, 0, 0, 1, 1]], np.float32).reshape(1, 1, -1, 7)
    a, b = parse_rows(rows, [(100, 200, 3), (50, 40, 3)], conf=0.1, label=1)
    np.testing.assert_allclose(a, [[0, 0, 20, 10, 0.95, 0], [20, 20, 60, 60, 0.9, 0]], atol=1e-4)
    np.testing.assert_allclose(b, [[20, 0, 40, 25, 0.4, 0]], atol=1e-4)
    assert parse_rows(np.zeros((0, 7)), [(10, 10)], 0.1)[0].shape == (0, 6)


@pytest.fixture(scope="module")
def sample_frames():
    """Every 40th of the first 400 frames of both sample cameras (20 frames, 47 people) with their
    ground-truth boxes (x1, y1, x2, y2)."""
    from tests.conftest import REPO

    out = []
    for cam in ("left", "right"):
        gt = np.loadtxt(REPO / "samples" / "gt" / f"pets_{cam}" / "gt" / "gt.txt", delimiter=",")
        cap = cv2.VideoCapture(str(REPO / "samples" / f"pets_{cam}.mp4"))
        for i in range(400):
            ok, img = cap.read()
            assert ok
            if i % 40 == 0:
                g = gt[gt[:, 0] == i + 1, 2:6].copy()
                g[:, 2:] += g[:, :2]
                out.append((img, g))
        cap.release()
    return out


@pytest.fixture(scope="module")
def default_detector():
    from pipeline.run.config import DetectorConfig
    from pipeline.run.detectors import build_detector

    return build_detector(DetectorConfig(model="default", device="cpu", threads=2))


def _recall_precision(detector, frames_gt, min_score=0.3) -> tuple[float, float]:
    """IoU >= 0.5 one-to-one matches of the boxes scoring >= min_score against the ground truth."""
    from scipy.optimize import linear_sum_assignment

    from core.boxes import iou_matrix

    found = total = boxes_kept = 0
    for (img, gt), boxes in zip(frames_gt, detector([f for f, _ in frames_gt])):
        boxes = boxes[boxes[:, 4] >= min_score]
        total, boxes_kept = total + len(gt), boxes_kept + len(boxes)
        if len(gt) and len(boxes):
            iou = iou_matrix(gt, boxes[:, :4])
            r, c = linear_sum_assignment(-iou)
            found += int((iou[r, c] >= 0.5).sum())
    return found / total, found / max(1, boxes_kept)


def test_embedded_detector_finds_the_people_of_the_sample(default_detector, sample_frames):
    from pipeline.run.detectors import DEFAULT_MODEL, BoxesDetector

    assert DEFAULT_MODEL.is_file() and isinstance(default_detector, BoxesDetector)
    recall, precision = _recall_precision(default_detector, sample_frames)
    assert recall >= 0.75 and precision >= 0.7, (recall, precision)
    boxes = np.concatenate(default_detector([f for f, _ in sample_frames]))
    assert boxes.dtype == np.float32 and boxes.shape[1] == 6 and (boxes[:, 5] == 0).all()
    assert boxes[:, 4].min() >= 0.1 and (boxes[:, 4] < 0.5).any()       # low-score boxes for ByteTrack
    assert (boxes[:, 2] <= 258).all() and (boxes[:, 3] <= 384).all()     # in the frame's pixels


SSD = ("models", "openvino", "pedestrian-detection-adas-0002", "FP16-INT8", "pedestrian-detection-adas-0002.xml")


def test_an_ssd_batch_equals_single_calls(sample_frames):
    from pipeline.run.detectors import SsdDetector

    ssd = SsdDetector(str(shared_path(*SSD)), threads=1)
    imgs = [sample_frames[1][0], sample_frames[5][0], sample_frames[15][0]]
    both = ssd(imgs)
    assert ssd.engine.max_batch > 1                                      # one network call for all
    for img, b in zip(imgs, both):
        np.testing.assert_allclose(ssd([img])[0], b, atol=1e-3)


def test_threads_reach_openvino_and_keep_the_boxes(sample_frames):
    from pipeline.run.detectors import DEFAULT_MODEL, BoxesDetector
    from pipeline.run.detectors.runtime import available_cores

    boxes = {}
    for n in (1, 2, 0):
        det = BoxesDetector(str(DEFAULT_MODEL), threads=n)
        assert det.engine.name == "OpenVINO CPU" and det.engine.runtime_threads() == (n or available_cores())
        boxes[n] = det([sample_frames[12][0]])[0]
    assert len(boxes[1]) > 0
    np.testing.assert_allclose(boxes[1], boxes[2], atol=1e-3)


def test_openvino_threads_are_not_pinned_to_cores():
    """Each compiled OpenVINO network pins its threads on its own (OpenVINO's default): the detector's and the
    ReID's one thread each then shared one core of two while the other idled (bench/ov_pinning.py: the sample
    1.3x faster unpinned, the same outputs). The embedded detector is compiled unpinned."""
    from pipeline.run.detectors import DEFAULT_MODEL, BoxesDetector

    det = BoxesDetector(str(DEFAULT_MODEL), threads=1)
    assert det.engine._compile(1).get_property("ENABLE_CPU_PINNING") is False


@pytest.mark.parametrize("backend", ["onnxruntime", "opencv"])
def test_yolox_threads_reach_the_runtime_and_keep_the_boxes(backend, sample_frames):
    pytest.importorskip("onnxruntime" if backend == "onnxruntime" else "onnx")   # OpenCV: onnx reads the shape
    from pipeline.run.detectors.runtime import available_cores
    from pipeline.run.detectors.yolox import YoloxDetector

    model = str(shared_path("models", "yolox_nano.onnx"))
    boxes = {}
    before = cv2.getNumThreads()
    try:
        for n in (1, 2, 0):
            det = YoloxDetector(model, threads=n, backend=backend)
            assert det.engine.runtime_threads() == (n or available_cores()), n
            boxes[n] = det([sample_frames[12][0]])[0]
    finally:
        cv2.setNumThreads(before)
    assert len(boxes[1]) > 0
    np.testing.assert_allclose(boxes[1], boxes[2], atol=1e-3)


def _batchable_copy(src, dst):
    """Megvii's YOLOX export reshapes to [1, 85, -1] inside the graph; 0 (keep the batch) lets it batch."""
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper

    model = onnx.load(str(src))
    for t in model.graph.initializer:
        arr = numpy_helper.to_array(t)
        if arr.dtype == np.int64 and arr.tolist() == [1, 85, -1]:
            t.CopyFrom(numpy_helper.from_array(np.array([0, 85, -1], np.int64), t.name))
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "batch"
    model.graph.output[0].type.tensor_type.shape.dim[0].dim_param = "batch"
    onnx.save(model, str(dst))
    return dst


def test_yolox_on_real_frames_batched_or_not(sample_frames, tmp_path):
    from pipeline.run.config import DetectorConfig
    from pipeline.run.detectors import YoloxDetector, build_detector, model_kind

    raw = shared_path("models", "yolox_nano.onnx")     # Megvii's export: batch 1 fixed inside the graph
    assert model_kind("yolo11n.pt") == "ultralytics" and model_kind(str(raw)) == "yolox"
    det = build_detector(DetectorConfig(model=str(raw), device="cpu", threads=2))
    assert isinstance(det, YoloxDetector)
    recall, _ = _recall_precision(det, sample_frames)
    assert recall >= 0.85, recall
    imgs = [sample_frames[1][0], sample_frames[15][0]]
    both = det(imgs)                                    # falls back to one image per call
    assert det.engine.max_batch == 1
    batched = build_detector(DetectorConfig(model=str(_batchable_copy(raw, tmp_path / "b.onnx")), device="cpu"))
    for img, a, b in zip(imgs, both, batched(imgs)):
        np.testing.assert_allclose(det([img])[0], a, atol=1e-3)
        np.testing.assert_allclose(b, a, atol=1e-3)
    assert batched.engine.max_batch > 1


def test_ssd_fit_limits_the_stretch():
    from pipeline.run.detectors.ssd import PAD_VALUE, fit

    landscape, sx, sy = fit(np.zeros((576, 768, 3), np.uint8), (384, 672), 1.5)   # 1.31x: plain resize
    assert landscape.shape == (384, 672, 3) and (sx, sy) == (672 / 768, 384 / 576)
    portrait, sx, sy = fit(np.zeros((384, 258, 3), np.uint8), (384, 672), 1.5)    # 2.6x: 1.5x, padded
    assert sy == 1.0 and sx == pytest.approx(387 / 258) and (portrait[:, 388:] == PAD_VALUE).all()


def test_cuda_without_cuda_runs_the_network_on_the_cpu(monkeypatch):
    import core.device
    from pipeline.run.config import DetectorConfig
    from pipeline.run.detectors import build_detector

    monkeypatch.setattr(core.device, "cuda_available", lambda: False)
    det = build_detector(DetectorConfig(model="default", device="cuda", threads=1))
    assert det.engine.name == "OpenVINO CPU"
    assert det([np.zeros((64, 48, 3), np.uint8)])[0].shape[1] == 6


def test_stage_key_follows_the_embedded_file(tmp_path, monkeypatch):
    import shutil

    import pipeline.run.detectors as detectors
    from pipeline.config import RunConfig
    from pipeline.run.runner import stage_keys
    from pipeline.run.video import VideoSource

    frames = tmp_path / "frames"
    frames.mkdir()
    cv2.imwrite(str(frames / "0000.png"), np.zeros((32, 32, 3), np.uint8))
    src = VideoSource(frames, "cam")
    copy = tmp_path / "weights" / detectors.DEFAULT_MODEL.name
    copy.parent.mkdir()
    shutil.copy(detectors.DEFAULT_MODEL, copy)
    shutil.copy(detectors.DEFAULT_MODEL.with_suffix(".bin"), copy.with_suffix(".bin"))
    monkeypatch.setattr(detectors, "DEFAULT_MODEL", copy)
    key, _ = stage_keys(src, RunConfig(), None)
    assert RunConfig().detector.model == "default" and stage_keys(src, RunConfig(), None)[0] == key
    copy = copy.with_suffix(".bin")                       # new weights, same network description
    data = bytearray(copy.read_bytes())
    data[-1] ^= 1                                         # same size, same mtime second: new content
    st = copy.stat()
    copy.write_bytes(bytes(data))
    os.utime(copy, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert stage_keys(src, RunConfig(), None)[0] != key


def test_a_failed_download_names_the_offline_default(tmp_path, monkeypatch):
    import socket

    from core.errors import UserError
    from pipeline.run.detectors import YoloDetector

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("YOLO_OFFLINE", "1")

    def no_network(*args, **kwargs):
        raise OSError("network disabled by the test")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    with pytest.raises(UserError, match="--detector default") as err:
        YoloDetector("yolo11n.pt", device="cpu")
    assert "yolo11n.pt" in str(err.value)

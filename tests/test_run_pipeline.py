"""``mcmt run`` / ``mcmt associate`` end to end on small real data.

PETS09-S2L1 ``vtest.avi`` frames 100..278 (every 2nd, 90 frames at 5 fps) are cut into two camera
views with a blind strip between them: ``left`` (x 0..352, written as an MJPG video) and ``right``
(x 416..768, written as a MOTChallenge-style folder of JPEG frames). MOT15 ground truth, cut the same
way, tells who is who. Persons 16 and 17 walk from the right view into the left one.
Offline models only: the int8 TFLite YOLOv8n and the OpenVINO person-reidentification-retail-0286.
"""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import shared_path
from pipeline.cli import main as mcmt

FIRST, STEP, COUNT = 100, 2, 90          # source frames 100, 102, ..., 278
VIEWS = {"left": (0, 352), "right": (416, 768)}
CROSSERS = (16, 17)                      # gt ids seen first in the right view, then in the left one


def _cut_gt(gt: np.ndarray, x0: int, x1: int) -> np.ndarray:
    """MOT15 gt of one view: (N, 10) rows with 1-based frames of the cut, boxes mostly inside it."""
    src = np.arange(FIRST, FIRST + STEP * COUNT, STEP) + 1            # gt frames (1-based)
    rows = gt[np.isin(gt[:, 0], src)].copy()
    cx = rows[:, 2] + rows[:, 4] / 2
    rows = rows[(cx > x0 + 10) & (cx < x1 - 10)]
    rows[:, 0] = (rows[:, 0] - 1 - FIRST) // STEP + 1
    rows[:, 2] -= x0
    return rows


@pytest.fixture(scope="module")
def two_views(tmp_path_factory):
    video = shared_path("data", "pets09-s2l1", "vtest.avi")
    gt = np.loadtxt(shared_path("data", "pets09-s2l1", "gt", "gt.txt"), delimiter=",")
    root = tmp_path_factory.mktemp("views")
    cap = cv2.VideoCapture(str(video))
    frames = []
    for i in range(FIRST + STEP * COUNT):
        ok, img = cap.read()
        assert ok, f"vtest.avi ended at frame {i}"
        if i >= FIRST and (i - FIRST) % STEP == 0:
            frames.append(img)
    cap.release()
    left = cv2.VideoWriter(str(root / "left.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 5.0, (352, 576))
    right_dir = root / "right" / "img1"
    right_dir.mkdir(parents=True)
    (root / "right" / "seqinfo.ini").write_text("[Sequence]\nname=right\nframeRate=5\n")
    for k, img in enumerate(frames):
        left.write(np.ascontiguousarray(img[:, 0:352]))
        cv2.imwrite(str(right_dir / f"{k + 1:06d}.jpg"), img[:, 416:768])
    left.release()
    gts = {name: _cut_gt(gt, *xs) for name, xs in VIEWS.items()}
    return {"left": root / "left.avi", "right": right_dir, "gt": gts, "root": root}


def _models():
    return (shared_path("models", "yolov8n_saved_model", "yolov8n_full_integer_quant.tflite"),
            shared_path("models", "openvino", "person-reidentification-retail-0286", "FP16",
                        "person-reidentification-retail-0286.xml"))


def _run(views, out: Path, *extra: str) -> int:
    det, reid = _models()
    return mcmt(["run", "--videos", str(views["left"]), str(views["right"]), "--out", str(out),
                 "--detector", str(det), "--reid", str(reid), "--device", "cpu", "--no-progress", "-q", *extra])


@pytest.fixture(scope="module")
def run_dir(two_views, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    assert _run(two_views, out) == 0
    return out


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, 4) x (M, 4) xywh -> (N, M) IoU."""
    ax2, ay2, bx2, by2 = a[:, 0] + a[:, 2], a[:, 1] + a[:, 3], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    iw = np.clip(np.minimum(ax2[:, None], bx2[None]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(ay2[:, None], by2[None]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = iw * ih
    return inter / (a[:, 2:].prod(1)[:, None] + b[:, 2:].prod(1)[None] - inter)


def majority_ids(gt: np.ndarray, pred: np.ndarray) -> dict[int, int]:
    """gt id -> the predicted (global) id covering most of its boxes (IoU >= 0.5)."""
    votes: dict[int, dict[int, int]] = {}
    for f in np.unique(gt[:, 0]):
        g, p = gt[gt[:, 0] == f], pred[pred[:, 0] == f]
        if not len(p):
            continue
        iou = _iou(g[:, 2:6], p[:, 2:6])
        for i, j in enumerate(iou.argmax(1)):
            if iou[i, j] >= 0.5:
                d = votes.setdefault(int(g[i, 1]), {})
                d[int(p[j, 1])] = d.get(int(p[j, 1]), 0) + 1
    return {gid: max(v, key=v.get) for gid, v in votes.items() if sum(v.values()) >= 5}


def test_outputs_exist_and_parse(run_dir):
    from pipeline.formats.mot import read_mot
    from pipeline.formats.aicity import read_mtmc

    doc = json.loads((run_dir / "identities.json").read_text())
    assert [c["name"] for c in doc["cameras"]] == ["left", "right"]
    assert [c["fps"] for c in doc["cameras"]] == [5.0, 5.0]
    assert doc["cameras"][1]["frames"] == COUNT
    mot = {c: read_mot(run_dir / "mot" / f"{c}.txt") for c in VIEWS}
    mtmc = read_mtmc(run_dir / "mtmc.txt")
    assert len(mtmc) == sum(len(m) for m in mot.values()) > 100
    for cam_id, cam in enumerate(VIEWS, 1):                     # the same boxes in both formats
        rows = mtmc[mtmc[:, 0] == cam_id]
        assert sorted(map(tuple, rows[:, [2, 1]])) == sorted(map(tuple, mot[cam][:, [0, 1]]))
        assert mot[cam][:, 0].min() >= 1
        assert mot[cam][:, 0].max() <= COUNT
    ids = {i["global_id"]: i for i in doc["identities"]}
    assert set(ids) == set(mtmc[:, 1].astype(int))
    assert sorted(ids) == list(range(1, len(ids) + 1))
    for ident in ids.values():
        assert ident["box_count"] == int((mtmc[:, 1] == ident["global_id"]).sum())
        for cam, files in ident["thumbnails"].items():
            assert cam in ident["cameras"]
            assert all((run_dir / f).is_file() for f in files)
            assert 1 <= len(files) <= 4
    assert doc["summary"]["identities"] == len(ids)
    assert (run_dir / "report.html").is_file()


def test_every_local_track_maps_to_one_global_id(run_dir):
    from pipeline.runfolder.cache import CameraCache, read_boxes
    from pipeline.formats.mot import read_mot

    added = json.loads((run_dir / "identities.json").read_text())["summary"]["interpolated_boxes"]
    written = 0
    for cam in VIEWS:
        local = read_boxes(CameraCache(run_dir, cam))              # frame0, local id, x1, y1, x2, y2, score
        mot = read_mot(run_dir / "mot" / f"{cam}.txt")              # and the short gaps filled (output.interpolate)
        written += len(mot) - len(local)
        key = lambda f, x, y: (int(f), round(float(x), 1), round(float(y), 1))
        gid_of_box = {key(r[0], r[2], r[3]): int(r[1]) for r in mot}
        pairs = {(int(r[1]), gid_of_box[key(r[0] + 1, r[2], r[3])]) for r in local}
        locals_ = [p[0] for p in pairs]
        assert len(locals_) == len(set(locals_)), f"{cam}: a local track got two global ids"
    assert written == added


def test_crossing_person_keeps_one_id_and_different_people_differ(run_dir, two_views):
    from pipeline.formats.mot import read_mot

    maj = {cam: majority_ids(two_views["gt"][cam], read_mot(run_dir / "mot" / f"{cam}.txt")) for cam in VIEWS}
    for pid in CROSSERS:
        assert maj["left"][pid] == maj["right"][pid], f"gt person {pid} got ids {maj['left'][pid]} / {maj['right'][pid]}"
    # gt 13 only in the right view and 17 (right then left) are never in the same place at the same time
    assert maj["right"][13] != maj["left"][17]
    doc = json.loads((run_dir / "identities.json").read_text())
    crosser = next(i for i in doc["identities"] if i["global_id"] == maj["left"][CROSSERS[0]])
    assert crosser["cameras"] == ["left", "right"]
    assert crosser["time_spans"]["right"][0] < crosser["time_spans"]["left"][0]   # right first, then left


def test_rerun_reuses_the_cache_without_detection(run_dir, two_views):
    before = (run_dir / "mot" / "left.txt").read_text()
    assert _run(two_views, run_dir) == 0
    stats = json.loads((run_dir / "run.json").read_text())["stats"]
    assert stats["detected_frames"] == 0
    assert stats["reused_cameras"] == ["left", "right"]
    assert (run_dir / "mot" / "left.txt").read_text() == before


def test_associate_redoes_only_association(run_dir):
    doc = json.loads((run_dir / "identities.json").read_text())
    n_tracklets = doc["summary"]["tracklets"]
    assert mcmt(["associate", "--run", str(run_dir), "--set", "association.enabled=false", "-q"]) == 0
    alone = json.loads((run_dir / "identities.json").read_text())
    assert alone["summary"]["identities"] == n_tracklets                 # every tracklet its own identity
    assert mcmt(["associate", "--run", str(run_dir), "-q"]) == 0        # back to the run's own settings
    assert json.loads((run_dir / "identities.json").read_text())["summary"]["identities"] == \
        doc["summary"]["identities"]


def test_detections_files_and_no_reid(two_views, tmp_path, capfd):
    """--detections (here: the cut ground truth as a detector) with --reid none: ids stay per track."""
    files = []
    for cam in VIEWS:
        g = two_views["gt"][cam]
        det = np.column_stack([g[:, 0], np.full(len(g), -1), g[:, 2:6], np.full(len(g), 1.0), -np.ones((len(g), 3))])
        files.append(tmp_path / f"{cam}_det.txt")
        np.savetxt(files[-1], det, fmt="%.2f", delimiter=",")
    out = tmp_path / "run"
    code = mcmt(["run", "--videos", str(two_views["left"]), str(two_views["right"]), "--out", str(out),
                 "--detections", *map(str, files), "--reid", "none", "--max-frames", "60", "-q"])
    assert code == 0
    assert "step/s" not in capfd.readouterr().err                      # -q: no progress bar either
    from pipeline.formats.mot import read_mot

    left = read_mot(out / "mot" / "left.txt")
    g = two_views["gt"]["left"]
    assert 33 <= left[:, 0].min()
    assert left[:, 0].max() <= 60  # nobody is in the left view before 33
    # perfect detections: after the 1-frame confirmation nearly every gt box of the first 60 frames is output
    assert 0.9 * (g[:, 0] <= 60).sum() <= len(left) <= (g[:, 0] <= 60).sum()


@pytest.mark.parametrize("case, message", [
    ("missing_video", "video not found: "), ("empty_video", "video file is empty"),
    ("det_count", "--detections got 1 files for 2 videos"), ("missing_reid", "ReID model not found"),
    ("bad_set", "unknown key 'video.strid'"), ("missing_detector", "detector model not found"),
])
def test_bad_inputs_give_documented_errors(two_views, tmp_path, capsys, case, message):
    det, reid = _models()
    left, right = str(two_views["left"]), str(two_views["right"])
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    args = {"missing_video": ["--videos", left, str(tmp_path / "nope.mp4")],
            "empty_video": ["--videos", str(empty)],
            "det_count": ["--videos", left, right, "--detections", str(empty)],
            "missing_reid": ["--videos", left, "--reid", str(tmp_path / "reid.xml")],
            "bad_set": ["--videos", left, "--set", "video.strid=2"],
            "missing_detector": ["--videos", left, "--detector", str(tmp_path / "yolo.tflite")]}[case]
    if "--reid" not in args:
        args += ["--reid", str(reid)]
    if "--detector" not in args:
        args += ["--detector", str(det)]
    out = tmp_path / "out"
    assert mcmt(["run", *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1
    assert not out.exists()                               # stopped before any work


def test_default_reid_checkpoint_gives_readable_attributes(two_views, tmp_path, capsys):
    """Without --reid the shipped checkpoint is used; identities carry readable attribute summaries
    (or, if the checkpoint is missing from an installation, the error says what to pass)."""
    det, _ = _models()
    out = tmp_path / "out"
    shipped = (Path(__file__).resolve().parents[1] / "reid" / "weights" / "default.pt").is_file()
    rc = mcmt(["run", "--videos", str(two_views["left"]), "--detector", str(det), "--out", str(out),
               "--no-progress"])
    if not shipped:
        err = capsys.readouterr().err
        assert rc == 2
        assert "default ReID checkpoint" in err
        assert not out.exists()
        return
    assert rc == 0
    from reid.data.schemas import COMMON

    idents = json.loads((out / "identities.json").read_text())
    assert set(idents["attribute_names"]) == set(COMMON.output_names)
    with_attrs = [i for i in idents["identities"] if i["attributes"]]  # identities with embedded crops
    assert with_attrs
    assert all(i["attribute_summary"] for i in with_attrs)
    for ident in with_attrs:
        assert set(ident["attributes"]) <= set(COMMON.output_names)
        assert all(0.0 <= v <= 1.0 for v in ident["attributes"].values())


def test_associate_needs_a_run_folder(tmp_path, capsys):
    assert mcmt(["associate", "--run", str(tmp_path)]) == 2
    assert "not a run folder" in capsys.readouterr().err


def test_interrupted_run_continues_from_the_cache(two_views, tmp_path):
    """Ctrl-C after 6 steps: detections so far stay in the cache, the rerun detects only the rest."""
    from core.config import load_config
    from pipeline.run.detectors import YoloDetector
    from pipeline.config import RunConfig
    from pipeline.run.runner import run_cameras
    from pipeline.run.video import open_sources

    det_path, _ = _models()
    cfg = load_config(RunConfig, None, ["video.max_frames=12", "reid.checkpoint=none"])
    calls = {"n": 0}

    def interrupting_factory():
        real = YoloDetector(str(det_path), device="cpu")

        def detect(frames):
            calls["n"] += 1
            if calls["n"] > 6:
                raise KeyboardInterrupt
            return real(frames)
        return detect

    sources = open_sources([str(two_views["left"]), str(two_views["right"])], max_frames=12)
    with pytest.raises(KeyboardInterrupt):
        run_cameras(sources, cfg, tmp_path, detector_factory=interrupting_factory, progress=False)
    meta = json.loads((tmp_path / "cache" / "left" / "track.json").read_text())
    assert meta["complete"] is False                                   # a clear partial state
    assert json.loads((tmp_path / "cache" / "left" / "detect.json").read_text())["frames_done_upto"] == 5
    stats = run_cameras(sources, cfg, tmp_path, progress=False,
                        detector_factory=lambda: YoloDetector(str(det_path), device="cpu"))
    assert stats.detected_frames == 2 * 6                              # frames 6..11 of both cameras
    assert stats.frames == 24
    assert json.loads((tmp_path / "cache" / "left" / "track.json").read_text())["complete"]


def test_appearance_tracker_in_the_run_equals_a_direct_loop(two_views, tmp_path):
    """botsort in the run is tracked one step late while the ReID worker embeds its detections: the
    boxes and ids must equal a plain frame-by-frame loop over the same detector, masks and encoder."""
    from core.config import load_config
    from pipeline.run.crops import crop
    from pipeline.run.detectors import YoloDetector
    from pipeline.config import RunConfig
    from pipeline.run.runner import build_tracker_for, run_cameras
    from pipeline.run.video import open_sources
    from reid.encoder import ReIDEncoder

    det_path, _ = _models()
    cfg = load_config(RunConfig, None, ["video.max_frames=40", "tracker.name=botsort"])
    # the float IR: int8 kernels give slightly different features for a crop batched with other cameras'
    # crops than alone, and this test compares batch-for-batch different loops exactly
    encoder = ReIDEncoder.from_checkpoint("default", device="cpu", precision="fp32")
    videos = [str(two_views["left"]), str(two_views["right"])]
    stats = run_cameras(open_sources(videos, max_frames=40), cfg, tmp_path, encoder=encoder, progress=False,
                        detector_factory=lambda: YoloDetector(str(det_path), device="cpu"))
    detector = YoloDetector(str(det_path), device="cpu")
    embedded = high = 0
    for src in open_sources(videos, max_frames=40):
        tracker, rows = build_tracker_for(cfg, src.fps / max(1, src.stride)), []   # as the run: its frame rate
        for frame in src:
            d = detector([frame.image])[0]
            mask = tracker.embedding_mask(d)
            emb = np.zeros((len(d), encoder.dim), np.float32)
            if mask.any():
                emb[mask] = encoder.embed([crop(frame.image, d[i]) for i in np.flatnonzero(mask)])[0]
            embedded, high = embedded + int(mask.sum()), high + int((d[:, 4] >= 0.5).sum())
            rows += [(frame.index, *r[[4, 0, 1, 2, 3]]) for r in tracker.update(d, emb)]
        direct = np.array(rows)
        in_run = np.loadtxt(tmp_path / "cache" / src.name / "boxes.csv", delimiter=",")
        assert len(direct) == len(in_run) > 40, src.name
        assert np.array_equal(in_run[:, :2], direct[:, :2])                # same frames, same ids
        assert np.allclose(in_run[:, 2:6], direct[:, 2:6], atol=0.01)
    assert stats.frames == 80
    assert stats.embedded_crops - stats.fallback_crops == embedded < high  # fewer than every box


@pytest.mark.parametrize("every_track", [True, False])
def test_every_confirmed_track_gets_an_appearance(two_views, tmp_path, every_track):
    """No box passes ``reid.min_score=0.99`` (and no lower bar for tracks with few features): with
    ``reid.every_track`` each tracklet is still embedded once, on its best crop (a real feature and
    thumbnail) once confirmed; without it none has a feature."""
    from core.config import load_config
    from pipeline.run.detectors import YoloDetector
    from pipeline.config import RunConfig
    from pipeline.run.runner import run_cameras
    from pipeline.run.video import open_sources
    from pipeline.runfolder.cache import load_tracklets
    from reid.encoder import ReIDEncoder

    det_path, _ = _models()
    cfg = load_config(RunConfig, None, ["video.max_frames=30", "reid.min_score=0.99", "reid.few_features=0",
                                        f"reid.every_track={str(every_track).lower()}"])
    encoder = ReIDEncoder.from_checkpoint("default", device="cpu")
    videos = [str(two_views["left"]), str(two_views["right"])]
    stats = run_cameras(open_sources(videos, max_frames=30), cfg, tmp_path, encoder=encoder, progress=False,
                        detector_factory=lambda: YoloDetector(str(det_path), device="cpu"))
    tracklets = [t for cam in ("left", "right") for t in load_tracklets(tmp_path / "cache" / cam)[0]]
    confirmed = [t for t in tracklets if t.n_boxes >= cfg.reid.min_hits]
    assert len(confirmed) >= 6
    with_feature = [t for t in tracklets if t.has_features]
    if every_track:
        assert len(with_feature) == len(confirmed) == stats.fallback_crops
        assert all(t.fallback for t in confirmed)              # association attaches them, never bridges
        assert all(t.features.shape[0] == 1 and np.isclose(np.linalg.norm(t.features[0]), 1, atol=1e-3)
                   for t in confirmed)
        thumbs = list((tmp_path / "cache").glob("*/thumbs/*.jpg"))
        assert len(thumbs) == len(confirmed)
    else:
        assert not with_feature and stats.fallback_crops == 0

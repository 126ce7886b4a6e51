"""The ``boxes`` + ``labels`` detector format (Intel person-vehicle-bike-detection-2003): parsing by
hand, the kind told from the outputs, and real detections on EPFL terrace frames against the ground truth."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from tests.conftest import shared_path

MODEL = ("models", "openvino", "person-vehicle-bike-detection-2003", "FP16-INT8", "person-vehicle-bike-detection-2003.xml")


def test_parse_keeps_persons_above_conf_in_frame_pixels_best_first():
    from pipeline.run.detectors.boxes import parse_boxes

    boxes = np.array([[100, 50, 900, 350, 0.4],      # person
                      [300, 10, 400, 110, 0.9],      # vehicle
                      [10, 20, 30, 60, 0.8],         # person
                      [0, 0, 5, 5, 0.05]], np.float32)  # person, under conf
    labels = np.array([1, 0, 1, 1])
    out = parse_boxes(boxes, labels, (2.0, 0.5), (600, 400, 3), conf=0.1)
    assert out.shape == (2, 6) and out.dtype == np.float32
    np.testing.assert_allclose(out[0], [5, 40, 15, 120, 0.8, 0])           # best first, x / 2, y / 0.5
    np.testing.assert_allclose(out[1], [50, 100, 400, 600, 0.4, 0])        # clipped to the frame (h 600, w 400)
    assert parse_boxes(np.zeros((0, 5)), np.zeros(0), (1, 1), (10, 10), 0.1).shape == (0, 6)


def test_outputs_recognised_in_either_order():
    from pipeline.run.detectors.boxes import is_boxes_labels, split_outputs

    assert is_boxes_labels([[-1, 5], [-1]]) and is_boxes_labels([[100], [100, 5]])
    assert not is_boxes_labels([[1, 1, 200, 7]]) and not is_boxes_labels([[100, 6], [100]])
    b, lab = split_outputs([np.zeros(3), np.ones((3, 5))])
    assert b.shape == (3, 5) and lab.shape == (3,)


@pytest.fixture(scope="module")
def epfl_frame():
    video = shared_path("data", "epfl-terrace", "terrace_c0.mp4")
    gt = np.loadtxt(shared_path("data", "epfl-terrace", "gt", "terrace_c0", "gt", "gt.txt"), delimiter=",")
    cap = cv2.VideoCapture(str(video))
    for _ in range(300):
        ok, img = cap.read()
    cap.release()
    assert ok
    rows = gt[gt[:, 0] == 300]
    return img, np.column_stack([rows[:, 2:4], rows[:, 2:4] + rows[:, 4:6]])


@pytest.mark.parametrize("input_hw", [None, (384, 672)])
def test_2003_finds_the_annotated_people_on_a_real_frame(epfl_frame, input_hw):
    from core.boxes import iou_matrix
    from pipeline.run.detectors import BoxesDetector, model_kind

    model = str(shared_path(*MODEL))
    assert model_kind(model) == "boxes"
    det = BoxesDetector(model, conf=0.3, threads=1, input_hw=input_hw)
    assert det.input_hw == (input_hw or (480, 864))
    img, gt = epfl_frame
    out = det([img, img[:, ::-1].copy()])
    assert len(out) == 2 and out[0].shape[1] == 6 and (out[0][:, 5] == 0).all()
    assert len(gt) and iou_matrix(gt, out[0][:, :4]).max(1).min() >= 0.5          # every person found
    mirrored = out[1][:, [2, 1, 0, 3]] * [-1, 1, -1, 1] + [img.shape[1], 0, img.shape[1], 0]
    assert iou_matrix(out[0][:, :4], mirrored).max(1).min() >= 0.5                 # and in the mirror image


def test_build_detector_picks_the_boxes_backend(epfl_frame):
    from pipeline.run.config import DetectorConfig
    from pipeline.run.detectors import BoxesDetector, build_detector

    det = build_detector(DetectorConfig(model=str(shared_path(*MODEL)), device="cpu", threads=1, conf=0.2))
    assert isinstance(det, BoxesDetector) and det.conf == 0.2
    assert all(len(d) for d in det([epfl_frame[0]]))

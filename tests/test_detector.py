"""The YOLO detector wrapper on real frames: the LiteRT thread count reaches the interpreter and
does not change the boxes."""
from __future__ import annotations

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
    from pipeline.detector import YoloDetector

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

    from pipeline.detector import YoloDetector

    model = str(shared_path("models", "yolov8n_saved_model", "yolov8n_full_integer_quant.tflite"))
    assert YoloDetector(model, device="cpu").threads == (os.cpu_count() or 1)


def test_negative_threads_is_a_config_error():
    from pipeline.run_config import DetectorConfig

    with pytest.raises(ValueError, match="detector.threads"):
        DetectorConfig(threads=-1)

"""Ultralytics YOLO models (``.pt``, ``.tflite``, ultralytics' ONNX / OpenVINO / TensorRT exports, or a
released name such as ``yolo11n.pt`` that ultralytics downloads on first use), restricted to persons.

Returns, per frame, a float32 array (N, 6): x1, y1, x2, y2, score, cls (cls 0 = person).
"""
from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from core.device import resolve_device
from core.errors import UserError

log = logging.getLogger(__name__)

EMPTY = np.zeros((0, 6), np.float32)


def released_name(model: str) -> bool:
    """A model name ultralytics downloads from its GitHub releases (``yolo11n.pt``), not a local path."""
    try:
        from ultralytics.utils.downloads import GITHUB_ASSETS_NAMES
    except ImportError:
        return False
    return Path(model).name == model and model in GITHUB_ASSETS_NAMES


def _load_error(model: str, exc: Exception) -> UserError:
    """The error of a model ultralytics could not load; a failed download says what works offline."""
    text = str(exc).strip()
    if released_name(model) and not Path(model).exists() and (
            isinstance(exc, (ConnectionError, OSError, TimeoutError)) or "download" in text.lower()):
        return UserError(f"cannot load detector model {model!r}: ultralytics could not download it ({text}). "
                         "Without internet use the embedded detector: --detector default (or "
                         "detector.model: default), or put the downloaded file in the working folder")
    return UserError(f"cannot load detector model {model!r}: {text}")


@contextlib.contextmanager
def litert_threads(n: Optional[int]):
    """Ultralytics builds its LiteRT interpreter with ``NUM_THREADS`` (CPU cores - 1, which leaves one of
    two cores idle while our decoding and ReID threads need little); use ``n`` threads meanwhile."""
    try:
        import ultralytics.nn.backends.litert as mod
    except ImportError:  # other ultralytics layouts: keep their default
        mod = None
    if not n or not hasattr(mod, "NUM_THREADS"):
        yield
        return
    old, mod.NUM_THREADS = mod.NUM_THREADS, int(n)
    try:
        yield
    finally:
        mod.NUM_THREADS = old


class YoloDetector:
    """Ultralytics YOLO restricted to persons; one ``predict`` call per batch of frames."""

    def __init__(self, model: str = "yolo11n.pt", *, conf: float = 0.1, iou: float = 0.7, imgsz: int = 640,
                 device: str = "auto", batch: int = 8, classes: Sequence[int] = (0,), threads: int = 0):
        from pipeline.run.detectors import check_model_path
        check_model_path(model)
        from ultralytics import YOLO

        task = "detect" if Path(model).suffix.lower() in (".tflite", ".onnx", ".xml", ".engine") \
            or Path(model).is_dir() else None
        try:
            self.model = YOLO(model, task=task) if task else YOLO(model)
        except Exception as exc:  # ultralytics raises many kinds; say which model failed
            raise _load_error(model, exc) from None
        self.name = str(model)
        self.conf, self.iou, self.imgsz = conf, iou, imgsz
        self.batch = max(1, int(batch))
        self.classes = list(classes)
        self.device = resolve_device(device)
        if Path(model).suffix.lower() == ".tflite" and self.device != "cpu":
            self.device = "cpu"   # LiteRT runs on the CPU only
        self.half = self.device.startswith("cuda")
        self.threads = (threads or os.cpu_count() or 1) if Path(model).suffix.lower() == ".tflite" else None
        log.info("detector %s on %s%s", self.name, self.device,
                 f", {self.threads} threads" if self.threads else "")

    def __call__(self, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Detect persons in BGR frames (any sizes); list of (N, 6) float32 arrays, one per frame."""
        out: list[np.ndarray] = []
        for start in range(0, len(frames), self.batch):
            chunk = list(frames[start:start + self.batch])
            extra = {"half": True} if self.half else {}
            with litert_threads(self.threads):   # the interpreter is built on the first call
                results = self.model.predict(chunk, conf=self.conf, iou=self.iou, imgsz=self.imgsz,
                                             classes=self.classes, device=self.device, verbose=False, **extra)
            for r in results:
                data = r.boxes.data.cpu().numpy().astype(np.float32) if r.boxes is not None else EMPTY
                out.append(data[:, :6] if data.shape[0] else EMPTY)   # (N, 6) xyxy, score, cls
        return out

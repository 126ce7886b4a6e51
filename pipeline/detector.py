"""Person detection: ultralytics YOLO on frames of all cameras at once, or MOTChallenge det files.

Both detectors return, per frame, a float32 array (N, 6): x1, y1, x2, y2, score, cls (cls 0 = person).
"""
from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from pipeline.errors import UserError

log = logging.getLogger(__name__)

EMPTY = np.zeros((0, 6), np.float32)


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda:0`` when CUDA is available, else ``cpu``; other values pass through."""
    if device != "auto":
        return device
    try:
        import torch
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    except ImportError:  # pragma: no cover
        return "cpu"


def check_model_path(model: str) -> None:
    path = Path(model)
    looks_local = path.suffix.lower() in (".tflite", ".onnx", ".engine", ".xml", ".mlpackage") \
        or "/" in model or path.is_dir()
    if looks_local and not path.exists():
        raise UserError(f"detector model not found: {model} (set --detector or detector.model to a "
                        "file ultralytics can load, e.g. yolo11n.pt)")


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
        check_model_path(model)
        from ultralytics import YOLO

        task = "detect" if Path(model).suffix.lower() in (".tflite", ".onnx", ".xml", ".engine") \
            or Path(model).is_dir() else None
        try:
            self.model = YOLO(model, task=task) if task else YOLO(model)
        except Exception as exc:  # ultralytics raises many kinds; say which model failed
            raise UserError(f"cannot load detector model {model!r}: {exc}") from None
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


def _read_det_file(path: Path) -> np.ndarray:
    """MOTChallenge det file -> (N, 7) frame(1-based), x, y, w, h, conf, cls (cls 0)."""
    from pipeline.mot_io import read_mot

    try:
        rows = read_mot(path)
    except Exception as exc:
        raise UserError(f"{path}: not a MOTChallenge detection file ({exc})") from None
    rows = np.asarray(rows, np.float64)
    if rows.size and rows.shape[1] < 7:
        raise UserError(f"{path}: expected rows 'frame,id,x,y,w,h,conf,...', got {rows.shape[1]} columns")
    out = np.zeros((len(rows), 7), np.float64)
    if len(rows):
        out[:, :6] = rows[:, [0, 2, 3, 4, 5, 6]]
    return out


class FileDetections:
    """Detections read from per-camera MOTChallenge det files (``--detections``).

    ``score_scale``: detection confidences are divided by it (MOT15's ACF scores are not in 0..1;
    ``auto`` divides by the largest score when it is above 1).
    """

    def __init__(self, files: dict[str, str | Path], score_scale: Optional[float] = None):
        self.name = "detections:" + ",".join(str(p) for p in files.values())
        self._by_cam: dict[str, dict[int, np.ndarray]] = {}
        for cam, p in files.items():
            path = Path(p)
            if not path.is_file():
                raise UserError(f"detection file not found for camera '{cam}': {path}")
            rows = _read_det_file(path)
            scale = score_scale or (float(rows[:, 5].max()) if len(rows) and rows[:, 5].max() > 1 else 1.0)
            boxes = np.zeros((len(rows), 6), np.float32)
            boxes[:, 0:2] = rows[:, 1:3]
            boxes[:, 2:4] = rows[:, 1:3] + rows[:, 3:5]
            boxes[:, 4] = np.clip(rows[:, 5] / scale, 0.0, 1.0)
            frames = rows[:, 0].astype(np.int64) - 1          # 0-based video frame index
            self._by_cam[cam] = {int(f): boxes[frames == f] for f in np.unique(frames)}

    def for_frame(self, camera: str, index: int) -> np.ndarray:
        return self._by_cam.get(camera, {}).get(index, EMPTY)


def detection_files(paths: Sequence[str], cameras: Sequence[str]) -> dict[str, Path]:
    """Map ``--detections`` entries to cameras: one file per camera, in ``--videos`` order."""
    if len(paths) != len(cameras):
        raise UserError(f"--detections got {len(paths)} files for {len(cameras)} videos; give one per video")
    return {cam: Path(p) for cam, p in zip(cameras, paths)}

"""Detections read from per-camera MOTChallenge det files (``mcmt run --detections``) instead of a detector."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from core.errors import UserError
from core.frames import group_by_frame

EMPTY = np.zeros((0, 6), np.float32)


def _read_det_file(path: Path) -> np.ndarray:
    """MOTChallenge det file -> (N, 7) frame(1-based), x, y, w, h, conf, cls (cls 0)."""
    from pipeline.formats.mot import read_mot

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
            self._by_cam[cam] = group_by_frame(rows[:, 0] - 1, boxes)   # 0-based video frame index

    def for_frame(self, camera: str, index: int) -> np.ndarray:
        return self._by_cam.get(camera, {}).get(index, EMPTY)


def detection_files(paths: Sequence[str], cameras: Sequence[str]) -> dict[str, Path]:
    """Map ``--detections`` entries to cameras: one file per camera, in ``--videos`` order."""
    if len(paths) != len(cameras):
        raise UserError(f"--detections got {len(paths)} files for {len(cameras)} videos; give one per video")
    return {cam: Path(p) for cam, p in zip(cameras, paths)}

"""AI City multi-camera tracking files (``mtmc.txt``).

One row per box, all cameras in one file:
``camera_id obj_id frame_id xmin ymin width height xworld yworld`` (space separated; readers
also accept commas). ``camera_id`` and ``frame_id`` are 1-based, ``obj_id`` is the GLOBAL
identity; ``xworld yworld`` are -1 when unknown.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from core.atomic import atomic_write_text
from pipeline.formats.mot import read_numeric_rows

MTMC_COLUMNS = ("camera_id", "obj_id", "frame_id", "xmin", "ymin", "width", "height", "xworld", "yworld")
_SPLIT = re.compile(r"[,\s]+")


def read_mtmc(path: str | Path) -> np.ndarray:
    """Read an AI City file; (N, 9) float64. Missing world columns are filled with -1.

    Blank lines and lines starting with ``#`` are skipped; an empty file gives (0, 9).
    """
    values = read_numeric_rows(path, 7, 9, "multi-camera", " ".join(MTMC_COLUMNS))
    rows = [v + [-1.0] * (9 - len(v)) for v in values]
    if not rows:
        return np.zeros((0, 9), np.float64)
    return np.asarray(rows, np.float64)  # (N, 9)


def format_mtmc(rows: np.ndarray) -> str:
    """Text of an AI City file: integer ids/frames/boxes rounded to 2 decimals, world coords 4."""
    rows = np.asarray(rows, np.float64).reshape(-1, 9)
    lines = [
        f"{int(r[0])} {int(r[1])} {int(r[2])} {r[3]:.2f} {r[4]:.2f} {r[5]:.2f} {r[6]:.2f} "
        f"{r[7]:.4f} {r[8]:.4f}"
        for r in rows
    ]
    return "\n".join(lines) + ("\n" if lines else "")


def write_mtmc(path: str | Path, rows: np.ndarray) -> Path:
    """Write (N, 9) rows atomically (tmp file then rename), sorted by camera, frame, id."""
    path = Path(path)
    rows = np.asarray(rows, np.float64)
    if rows.size and (rows.ndim != 2 or rows.shape[1] != 9):
        raise ValueError(f"write_mtmc expects (N, 9) rows ({' '.join(MTMC_COLUMNS)}), got {rows.shape}")
    rows = rows.reshape(-1, 9)
    order = np.lexsort((rows[:, 1], rows[:, 2], rows[:, 0]))
    return atomic_write_text(path, format_mtmc(rows[order]))


def mot_to_mtmc(per_camera: Mapping[str, np.ndarray], camera_order: Sequence[str]) -> np.ndarray:
    """Join per-camera MOTChallenge rows (N, 10) into AI City rows (M, 9).

    ``camera_id`` is the 1-based index of the camera in ``camera_order``; MOT columns 7-8
    (world x, y in MOT15 ground truth, else -1) become ``xworld yworld``.
    """
    out = []
    for cam_idx, name in enumerate(camera_order, 1):
        mot = np.asarray(per_camera.get(name, np.zeros((0, 10))), np.float64).reshape(-1, 10)
        cam = np.full((len(mot), 1), float(cam_idx))
        out.append(np.hstack([cam, mot[:, [1, 0]], mot[:, 2:6], mot[:, 7:9]]))  # (n, 9)
    return np.vstack(out) if out else np.zeros((0, 9))


def mtmc_to_mot(rows: np.ndarray, camera_order: Sequence[str]) -> dict[str, np.ndarray]:
    """Split AI City rows (N, 9) into per-camera MOTChallenge rows (n, 10) keyed by camera name."""
    rows = np.asarray(rows, np.float64).reshape(-1, 9)
    out = {}
    for cam_idx, name in enumerate(camera_order, 1):
        r = rows[rows[:, 0] == cam_idx]
        mot = np.full((len(r), 10), -1.0)
        mot[:, 0], mot[:, 1] = r[:, 2], r[:, 1]
        mot[:, 2:6] = r[:, 3:7]
        mot[:, 6] = 1.0
        mot[:, 7:9] = r[:, 7:9]
        out[name] = mot
    return out

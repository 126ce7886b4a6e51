"""Grouping rows by frame in one pass (never one scan of all rows per frame)."""
from __future__ import annotations

import numpy as np


def frame_slices(frames: np.ndarray) -> dict[int, slice]:
    """Frame numbers sorted ascending (N,) -> {frame: slice of its rows}."""
    frames = np.asarray(frames).astype(np.int64).reshape(-1)
    if len(frames) == 0:
        return {}
    uniq, starts = np.unique(frames, return_index=True)
    ends = np.r_[starts[1:], len(frames)]
    return {int(f): slice(int(s), int(e)) for f, s, e in zip(uniq, starts, ends)}


def group_by_frame(frames: np.ndarray, rows: np.ndarray) -> dict[int, np.ndarray]:
    """Rows (N, ...) with frame numbers (N,) in any order -> {frame: its rows, in input order}."""
    frames = np.asarray(frames).astype(np.int64).reshape(-1)
    order = np.argsort(frames, kind="stable")
    rows = np.asarray(rows)[order]
    return {f: rows[s] for f, s in frame_slices(frames[order]).items()}

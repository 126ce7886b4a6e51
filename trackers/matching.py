"""Pure, vectorised matching functions shared by all trackers.

Costs are distances (lower is better); ``linear_assignment`` solves the assignment with
``lap.lapjv`` and rejects pairs whose cost exceeds ``thresh``.
"""
from __future__ import annotations

import lap
import numpy as np

from core.boxes import iou_matrix

_EMPTY_INDEX = np.zeros(0, dtype=np.int64)




def iou_distance(a: np.ndarray, b: np.ndarray, buffer: float = 0.0) -> np.ndarray:
    """1 - :func:`buffered_iou` of boxes a (N, 4) and b (M, 4) -> (N, M) in [0, 1]."""
    return 1.0 - buffered_iou(a, b, buffer)


def buffered_iou(a: np.ndarray, b: np.ndarray, buffer: float = 0.0) -> np.ndarray:
    """IoU of boxes a (N, 4) and b (M, 4) -> (N, M). With ``buffer`` > 0 each box is first widened by that
    fraction of its own width and height on every side (buffered IoU, as C-BIoU): two boxes of one person a
    box width or so apart still overlap when frames lie far apart in time."""
    if buffer > 0:
        a, b = expand_boxes(a, buffer), expand_boxes(b, buffer)
    return iou_matrix(a, b)


def expand_boxes(boxes: np.ndarray, buffer: float) -> np.ndarray:
    """(N, 4) x1, y1, x2, y2 -> the same boxes widened by ``buffer`` x their width / height per side."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    pad = (boxes[:, 2:] - boxes[:, :2]) * buffer
    return np.concatenate([boxes[:, :2] - pad, boxes[:, 2:] + pad], axis=1)


def embedding_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine distance between features a (N, D) and b (M, D) -> (N, M) in [0, 2].

    Rows are L2-normalised here, so callers may pass raw features; an all-zero feature is at
    distance 1 from everything.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.size == 0 or b.size == 0:
        return np.zeros((len(a), len(b)))
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return np.clip(1.0 - a @ b.T, 0.0, 2.0)


def fuse_score(cost: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Weight an IoU cost (N, M) by detection scores (M,): 1 - (1 - cost) * score."""
    return 1.0 - (1.0 - cost) * np.asarray(scores, dtype=np.float64)[None, :]


def gate(cost: np.ndarray, gating_dist: np.ndarray, thresh: float, value: float = np.inf) -> np.ndarray:
    """Copy of cost (N, M) with entries whose gating distance (N, M) exceeds thresh set to value."""
    return np.where(gating_dist > thresh, value, cost)


def linear_assignment(cost: np.ndarray, thresh: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minimum-cost assignment with pairs costing more than thresh left unmatched (``lap.lapjv``).

    Returns matches (K, 2) int64 of (row, col), unmatched rows (N - K,), unmatched cols (M - K,).
    """
    n, m = cost.shape
    rows, cols = assignment_pairs(cost, thresh)
    matches = np.empty((len(rows), 2), dtype=np.int64)
    matches[:, 0], matches[:, 1] = rows, cols
    row_free, col_free = np.ones(n, dtype=bool), np.ones(m, dtype=bool)
    row_free[rows] = False
    col_free[cols] = False
    return matches, row_free.nonzero()[0], col_free.nonzero()[0]


def assignment_pairs(cost: np.ndarray, thresh: float) -> tuple[np.ndarray, np.ndarray]:
    """The matched (rows (K,), cols (K,)) of :func:`linear_assignment`, without the unmatched lists.

    Fast path: when the cheapest column of every row (among rows with a cost below thresh) is
    different, matching each such row to it is optimal (each row attains its own minimum), so
    lapjv is skipped; this is the common case in tracking.
    """
    n, m = cost.shape
    if n == 0 or m == 0:
        return _EMPTY_INDEX, _EMPTY_INDEX
    best = cost.argmin(1)                                          # (N,)
    rows = (cost[np.arange(n), best] < thresh).nonzero()[0]
    cols = best[rows]
    if len(rows) > 1 and np.bincount(cols, minlength=m).max() > 1:  # rows compete: solve properly
        cost = np.where(np.isfinite(cost), cost, thresh + 1e6)     # lapjv rejects inf/nan
        _, x, _ = lap.lapjv(cost, extend_cost=True, cost_limit=thresh)
        rows = (x >= 0).nonzero()[0]
        cols = x[rows].astype(np.int64)
    return rows, cols

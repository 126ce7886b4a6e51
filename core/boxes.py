"""Box geometry, one implementation each: IoU matrices (xyxy and xywh), row-aligned IoU, IoA.

Boxes are float arrays with 4 columns; empty or degenerate boxes give 0, never NaN.
"""
from __future__ import annotations

import numpy as np


def xywh_to_xyxy(b: np.ndarray) -> np.ndarray:
    """(N, 4) x, y, w, h -> (N, 4) x1, y1, x2, y2 (float64)."""
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], axis=1)


def _area(b: np.ndarray) -> np.ndarray:
    """(N, 4) xyxy -> (N,) area, 0 for boxes with negative extent."""
    return np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)


def intersection(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection areas of boxes a (N, 4) and b (M, 4) in xyxy -> (N, M)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    wh = np.minimum(a[:, None, 2:], b[None, :, 2:]) - np.maximum(a[:, None, :2], b[None, :, :2])  # (N, M, 2)
    np.maximum(wh, 0.0, out=wh)
    return wh[..., 0] * wh[..., 1]


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes a (N, 4) and b (M, 4) in x1, y1, x2, y2 -> (N, M); 0 where the union is empty."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    inter = intersection(a, b)                                    # (N, M)
    union = _area(a)[:, None] + _area(b)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def iou_matrix_xywh(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes a (N, 4) and b (M, 4) given as x, y, w, h -> (N, M)."""
    return iou_matrix(xywh_to_xyxy(a), xywh_to_xyxy(b))


def iou_pairs_xywh(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of row-aligned boxes: a, b (P, 4) xywh -> (P,)."""
    return iou_pairs(xywh_to_xyxy(a), xywh_to_xyxy(b))


def iou_pairs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of row-aligned boxes: a, b (P, 4) x1, y1, x2, y2 -> (P,)."""
    wh = np.clip(np.minimum(a[:, 2:], b[:, 2:]) - np.maximum(a[:, :2], b[:, :2]), 0, None)   # (P, 2)
    inter = wh[:, 0] * wh[:, 1]
    union = _area(a) + _area(b) - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def ioa_matrix(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) xyxy -> (N, N) intersection over the area of the ROW box; diagonal 0."""
    b = np.asarray(boxes, dtype=np.float64)[:, :4]
    out = intersection(b, b) / np.maximum(_area(b)[:, None], 1e-9)
    np.fill_diagonal(out, 0.0)
    return out

"""Boxes of the frames a stride skipped: ``mcmt run --stride K`` analyses every K-th frame, and the output
files still give a track a box on every frame between two of its analysed boxes (``output.interpolate``).

Only the gaps the stride makes are filled (two boxes of one track at most K frames apart): a track the
tracker lost for longer (an occlusion) keeps its gap, as it does without a stride. Each filled box lies on
the straight line between its two neighbours (corners interpolated linearly in the frame number) and gets
the lower of their two scores.
"""
from __future__ import annotations

import numpy as np


def fill_stride(boxes: np.ndarray, stride: int) -> tuple[np.ndarray, int]:
    """``boxes`` (N, >=7: frame, local id, x1, y1, x2, y2, score, ...) of one camera -> (the boxes with the
    skipped frames filled, sorted by track and frame; how many were added). Columns past the score are
    copied from the earlier neighbour. ``stride`` <= 1: nothing to fill."""
    if stride <= 1 or len(boxes) < 2:
        return boxes, 0
    b = boxes[np.lexsort((boxes[:, 0], boxes[:, 1]))]
    gap = np.diff(b[:, 0])
    fill = np.flatnonzero((b[1:, 1] == b[:-1, 1]) & (gap > 1) & (gap <= stride))
    if not len(fill):
        return b, 0
    missing = (gap[fill] - 1).astype(np.int64)                         # frames to add after row fill[k]
    src = np.repeat(fill, missing)                                     # the earlier neighbour of each new box
    step = np.arange(len(src)) - np.repeat(np.cumsum(missing) - missing, missing) + 1    # 1 .. missing
    w = (step / gap[src])[:, None]                                     # position between the two neighbours
    new = b[src].copy()
    new[:, 0] = b[src, 0] + step
    new[:, 2:6] = (1.0 - w) * b[src, 2:6] + w * b[src + 1, 2:6]
    new[:, 6] = np.minimum(b[src, 6], b[src + 1, 6])
    out = np.concatenate([b, new])
    return out[np.lexsort((out[:, 0], out[:, 1]))], int(len(new))

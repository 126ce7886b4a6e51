"""A finished per-camera track summarised for cross-camera association.

This is the contract between the per-camera stage (which fills tracklets) and the
association stage (which reads them). Association needs no frames or boxes: only the
camera, the time span, the appearance gallery and the attribute means, plus the first and last
box (for the motion limit on joining two tracklets of one camera) and, where known, a few foot
points over time (``footprints``: where two views overlap, where a person stands in both).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Tracklet:
    camera: str                      # camera name (video file stem unless named)
    track_id: int                    # local id from that camera's tracker
    start_frame: int                 # first frame index (0-based, in the camera's own video)
    end_frame: int                   # last frame index (inclusive)
    start_time: float                # seconds, camera time offset already applied
    end_time: float
    n_boxes: int = 0                 # boxes the tracker reported for this track
    features: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))  # (K, D) L2-normalised
    weights: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32))      # (K,) quality
    attributes: np.ndarray | None = None       # (A,) mean attribute probabilities, None if the model has none
    attribute_names: tuple[str, ...] = ()
    flagged: bool = False            # short / low quality / fallback feature (see association.short_tracklets)
    fallback: bool = False           # its one feature is from its best crop, none of which passed the embedding
    #                                  policy (overlapped, low score): attached to an identity, never a bridge
    first_box: np.ndarray | None = None        # (4,) x1, y1, x2, y2 at start_frame (pixels); None if unknown
    last_box: np.ndarray | None = None         # (4,) x1, y1, x2, y2 at end_frame
    footprints: np.ndarray | None = None       # (K, 4) time (s), foot x, foot y, box height (pixels); None if unknown

    @property
    def key(self) -> tuple[str, int]:
        return (self.camera, self.track_id)

    @property
    def has_features(self) -> bool:
        return self.features.ndim == 2 and self.features.shape[0] > 0

    def mean_feature(self) -> np.ndarray:
        """Quality-weighted mean of the gallery, L2-normalised; (D,)."""
        if not self.has_features:
            raise ValueError(f"tracklet {self.key} has no appearance features")
        w = self.weights if self.weights.shape[0] == self.features.shape[0] else np.ones(len(self.features))
        w = np.maximum(w.astype(np.float64), 1e-6)
        f = (self.features.astype(np.float64) * w[:, None]).sum(0) / w.sum()
        n = np.linalg.norm(f)
        return (f / n if n > 0 else f).astype(np.float32)

    def overlaps_in_time(self, other: "Tracklet") -> bool:
        return self.start_time <= other.end_time and other.start_time <= self.end_time


FOOTPRINTS = 64                      # foot points kept per tracklet (evenly over its boxes)


def attach_footprints(tracklets: list[Tracklet], boxes: np.ndarray, most: int = FOOTPRINTS) -> None:
    """Set ``footprints`` of one camera's tracklets from its boxes (N, >=6: frame, local id, x1, y1, x2,
    y2, ...): at most ``most`` per tracklet, evenly spread, with frame -> time mapped linearly from the
    tracklet's own frame and time span (so camera offsets and strides carry over)."""
    if not len(boxes):
        return
    boxes = boxes[np.lexsort((boxes[:, 0], boxes[:, 1]))]
    ids, first = np.unique(boxes[:, 1].astype(np.int64), return_index=True)
    parts = dict(zip(ids.tolist(), np.split(boxes, first[1:])))
    for t in tracklets:
        b = parts.get(int(t.track_id))
        if b is None or not len(b):
            continue
        if len(b) > most:
            b = b[np.linspace(0, len(b) - 1, most).round().astype(np.int64)]
        span = max(t.end_frame - t.start_frame, 1)
        time = t.start_time + (b[:, 0] - t.start_frame) * (t.end_time - t.start_time) / span
        t.footprints = np.column_stack([time, (b[:, 2] + b[:, 4]) / 2, b[:, 5], b[:, 5] - b[:, 3]]).astype(np.float32)

"""A finished per-camera track summarised for cross-camera association.

This is the contract between the per-camera stage (which fills tracklets) and the
association stage (which reads them). Association needs no frames or boxes: only the
camera, the time span, the appearance gallery and the attribute means, plus the first and last
box (for the motion limit on joining two tracklets of one camera).
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
    flagged: bool = False            # short / low quality (see association.short_tracklets)
    first_box: np.ndarray | None = None        # (4,) x1, y1, x2, y2 at start_frame (pixels); None if unknown
    last_box: np.ndarray | None = None         # (4,) x1, y1, x2, y2 at end_frame

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

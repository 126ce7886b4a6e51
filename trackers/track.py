"""Track state as a structure of arrays (one row per track), so every step is vectorised.

:class:`TrackSet` holds all live tracks of one tracker; every array is created in
``__init__`` and all share the first dimension T.
"""
from __future__ import annotations

from enum import IntEnum

import numpy as np



class TrackState(IntEnum):
    TRACKED = 1   # matched in the latest frame
    LOST = 2      # not matched recently, kept for ``max_lost`` frames to be re-found
    REMOVED = 3   # finished: dropped at the end of the frame


_ROW_ARRAYS = ("ids", "means", "covs", "state", "score", "cls", "det_idx", "start", "last", "hits",
               "features", "has_feat", "obs_z", "obs_means", "obs_covs", "gallery", "gallery_n",
               "drift_n", "drift_sum", "drift_ref")


class TrackSet:
    """All live tracks of one tracker: row i of every array describes track i.

    ``ids`` is 0 until a track is confirmed (matched in a second frame, or born in the first
    frame), so the ids handed out are consecutive and never belong to one-frame flickers.
    """

    def __init__(self, gallery_size: int = 0) -> None:
        self.ids = np.zeros(0, dtype=np.int64)          # (T,) track id, 0 = unconfirmed
        self.means = np.zeros((0, 8))                   # (T, 8) Kalman x, y, a, h, vx, vy, va, vh
        self.covs = np.zeros((0, 8, 8))                 # (T, 8, 8)
        self.state = np.zeros(0, dtype=np.int64)        # (T,) TrackState
        self.score = np.zeros(0)                        # (T,) score of the last matched detection
        self.cls = np.zeros(0)                          # (T,) class of the last matched detection
        self.det_idx = np.zeros(0, dtype=np.int64)      # (T,) row of that detection in its frame's input
        self.start = np.zeros(0, dtype=np.int64)        # (T,) frame of the first detection
        self.last = np.zeros(0, dtype=np.int64)         # (T,) frame of the last matched detection
        self.hits = np.zeros(0, dtype=np.int64)         # (T,) number of matched detections
        self.features = np.zeros((0, 0), dtype=np.float32)  # (T, D) smoothed L2-normalised embeddings
        self.has_feat = np.zeros(0, dtype=bool)         # (T,) whether features[i] is set
        self.obs_z = np.zeros((0, 4))                   # (T, 4) last observed box x, y, a, h
        self.obs_means = np.zeros((0, 8))               # (T, 8) Kalman state right after that observation
        self.obs_covs = np.zeros((0, 8, 8))             # (T, 8, 8)
        self.gallery = np.zeros((0, gallery_size, 0), dtype=np.float32)  # (T, G, D) recent features (ring)
        self.gallery_n = np.zeros(0, dtype=np.int64)    # (T,) features written to the ring so far
        self.drift_n = np.zeros(0, dtype=np.int64)      # (T,) consecutive embedded matches unlike drift_ref
        self.drift_sum = np.zeros((0, 0), dtype=np.float32)  # (T, D) sum of those embeddings (identity switch)
        self.drift_ref = np.zeros((0, 0), dtype=np.float32)  # (T, D) the feature when the first of them came

    def __len__(self) -> int:
        return len(self.ids)

    def keep(self, mask: np.ndarray) -> None:
        """Keep only the rows where mask (T,) is True."""
        for name in _ROW_ARRAYS:
            setattr(self, name, getattr(self, name)[mask])

    def extend(self, other: "TrackSet") -> None:
        """Append the rows of ``other`` (its feature width may be 0 when it has no features)."""
        if other.features.shape[1] != self.features.shape[1]:
            dim = max(other.features.shape[1], self.features.shape[1])
            self.ensure_feature_dim(dim)
            other.ensure_feature_dim(dim)
        for name in _ROW_ARRAYS:
            setattr(self, name, np.concatenate([getattr(self, name), getattr(other, name)]))

    def ensure_feature_dim(self, dim: int) -> None:
        """Give ``features`` width ``dim`` (zeros, unset) if it has none; a different width is an error."""
        have = self.features.shape[1]
        if have == dim:
            return
        if have and self.has_feat.any():
            raise ValueError(f"embedding size changed from {have} to {dim}: use one ReID model per tracker")
        self.features = np.zeros((len(self), dim), dtype=np.float32)
        self.drift_sum = np.zeros((len(self), dim), dtype=np.float32)
        self.drift_ref = np.zeros((len(self), dim), dtype=np.float32)
        self.gallery = np.zeros((len(self), self.gallery.shape[1], dim), dtype=np.float32)

    def new_rows(self, n: int) -> "TrackSet":
        """An empty TrackSet of n rows shaped like this one (same gallery size and feature width)."""
        out = TrackSet(self.gallery.shape[1])
        for name in _ROW_ARRAYS:
            a = getattr(self, name)
            setattr(out, name, np.zeros((n, *a.shape[1:]), dtype=a.dtype))
        return out

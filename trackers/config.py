"""Tracker settings: one frozen dataclass shared by all registered trackers.

Owned by trackers/; the pipeline passes ``dataclasses.asdict(cfg)`` minus ``name`` to
``build_tracker(cfg.name, **params)``.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrackerConfig:
    name: str = "bytetrack"            # registry name (see trackers.TRACKERS)
    track_high_thresh: float = 0.5     # first-stage detection score threshold
    track_low_thresh: float = 0.1      # detections below are dropped entirely
    new_track_thresh: float = 0.6      # min score to start a new track
    match_thresh: float = 0.8          # max (1 - IoU) cost accepted in the first stage
    track_buffer: int = 30             # frames a lost track is kept (scaled by frame_rate / 30)
    frame_rate: float = 30.0
    fuse_score: bool = True            # multiply IoU similarity by detection score
    min_box_area: float = 10.0
    # appearance-aware (BoT-SORT style) tracker only
    appearance_thresh: float = 0.25    # max cosine distance for an appearance match
    proximity_thresh: float = 0.5      # min IoU for the appearance term to be considered
    ema_alpha: float = 0.9             # feature EMA momentum
    gmc: str = "none"                  # camera-motion compensation: none | sparse

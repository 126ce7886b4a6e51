"""Tracker settings: one frozen dataclass shared by all registered trackers.

Owned by trackers/; the pipeline passes ``dataclasses.asdict(cfg)`` minus ``name`` to
``build_tracker(cfg.name, **params)``. Fields a tracker does not use (e.g. the appearance
settings for ``bytetrack``) are accepted by ``build_tracker`` and ignored for that tracker.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrackerConfig:
    name: str = "botsort"              # registry name (see trackers.TRACKERS): bytetrack | botsort
    track_high_thresh: float = 0.4     # first-stage detection score threshold (bench/mtmc.py, 6 Dec)
    track_low_thresh: float = 0.1      # detections at or below are dropped entirely
    new_track_thresh: float = 0.5      # min score to start a new track
    match_thresh: float = 0.8          # max cost accepted in the first (high-score) stage
    low_match_thresh: float = 0.5      # max 1 - IoU accepted in the second (low-score) stage
    unconfirmed_match_thresh: float = 0.7  # max cost for a one-frame-old track to match again
    track_buffer: int = 108            # frames a lost track is kept (scaled by frame_rate / 30: 3.6 s)
    frame_rate: float = 0.0            # 0: the video's analysed frame rate (mcmt run; trackers need > 0)
    motion_buffer: float = 2.0         # low frame rates (or --stride): the high-score stages' IoU on boxes widened per
                                       # side by this x their size x the seconds between two analysed frames beyond
                                       # motion_buffer_from (buffered IoU: people move further between two frames than
                                       # the Kalman prediction holds; bench/mtmc.py --footages low-fps, 7 Dec: mean of
                                       # 10 77.3 -> 82.5, none lower by more than 0.4); 0: plain IoU
    motion_buffer_from: float = 0.15   # ... seconds: at 1 / this frames/s (6.7) and above, plain IoU in any case
    fuse_score: bool = True            # multiply IoU similarity by detection score
    min_box_area: float = 10.0         # smaller detections are ignored (pixels^2)
    duplicate_iou: float = 0.85        # a tracked and a lost track overlapping more are duplicates
    score_reference: float = 0.6       # thresholds scaled by min(1, q95 of the camera's scores / this) so a
                                       # camera whose detector scores sit low (blur, low resolution) still
                                       # starts tracks (trackers.score_scale; bench/mtmc.py, 6 Dec); 0: off
    # appearance-aware (BoT-SORT style) tracker only
    appearance_thresh: float = 0.25    # max cosine distance / 2 for an appearance match
    proximity_thresh: float = 0.5      # min IoU for the appearance term to be considered
    appearance_veto: float = 0.1       # a track is never matched to a detection that another track looks closer
                                       # to by more than this (cosine distance / 2; people crossing; bench/mtmc.py,
                                       # 6 Dec: EPFL 70.9 -> 84.1, no footage lower); 0: off
    switch_thresh: float = 0.25        # identity-switch split: a track whose ``switch_count`` embedded matches in
                                       # a row all lie farther than this (cosine distance / 2) from its feature
                                       # before them is following someone else: it goes on under a new id
                                       # (bench/mtmc.py, 7 Dec: EPFL jitter a 68.3 -> 83.4, none below -0.2); 0: off
    switch_count: int = 5              # ... that many embedded matches in a row (one per appearance_every frames at
                                       # least: 5 is at most 0.6 s at 25 frames/s)
    switch_scale: float = 3.0          # ... and farther than this x the camera's median match distance (noisy
                                       # cameras: compression, blur)
    reacquire_thresh: float = 0.2      # max cosine distance / 2 to re-find a lost track by appearance
                                       # alone (Kalman-gated); 0 disables that stage
    ema_alpha: float = 0.9             # feature EMA momentum
    appearance_every: int = 3          # embed all high-score detections every k frames, in between only
                                       # those whose match motion does not force (1: every frame)
    gmc: str = "none"                  # camera-motion compensation: none | sparse (see trackers.gmc)
    gallery_size: int = 0              # botsort: recent features kept per track to re-find it after an
                                       # occlusion (closest of them); 0: the feature EMA
    # occlusion rules of both trackers (trackers.occlusion)
    observation_update: bool = False   # OC-SORT: re-run a re-found track's Kalman filter along the gap
    recover_thresh: float = 0.0        # OC-SORT recovery: max 1 - IoU of a track's last observed box
                                       # and a detection left over; 0: off
    birth_iou: float = 1.0             # no new track on a detection overlapping a matched track's box
                                       # by this IoU or more; 1: off

    def __post_init__(self):
        unit = ("track_high_thresh", "track_low_thresh", "new_track_thresh", "match_thresh", "low_match_thresh",
                "unconfirmed_match_thresh", "duplicate_iou", "appearance_thresh", "proximity_thresh", "appearance_veto",
                "switch_thresh",
                "reacquire_thresh", "ema_alpha", "recover_thresh", "birth_iou", "score_reference")
        for name in unit:
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"tracker.{name} must be in [0, 1], got {getattr(self, name)}")
        for name, low in (("track_buffer", 0), ("min_box_area", 0), ("gallery_size", 0), ("appearance_every", 1),
                          ("switch_count", 1), ("switch_scale", 0), ("motion_buffer", 0), ("motion_buffer_from", 0)):
            if not getattr(self, name) >= low:
                raise ValueError(f"tracker.{name} must be >= {low}, got {getattr(self, name)}")
        if not self.frame_rate >= 0:
            raise ValueError(f"tracker.frame_rate must be >= 0 (0: the video's), got {self.frame_rate}")

"""Per-camera multi-object trackers: numpy detections in, numpy tracks out.

    from trackers import build_tracker
    tracker = build_tracker("bytetrack", frame_rate=25)      # one instance per camera
    tracks = tracker.update(dets, embeds)   # (M, 8) x1, y1, x2, y2, track_id, score, cls, det_idx
    finished = tracker.pop_finished()       # ids of tracks that ended since the last call
"""
from __future__ import annotations

import inspect
import logging
from dataclasses import fields

from trackers.appearance_tracker import AppearanceTracker
from trackers.byte_tracker import ByteTracker
from trackers.config import TrackerConfig

log = logging.getLogger(__name__)

TRACKERS = {
    "bytetrack": ByteTracker,
    "botsort": AppearanceTracker,
}

__all__ = ["TRACKERS", "build_tracker", "ByteTracker", "AppearanceTracker", "TrackerConfig"]


def build_tracker(name: str, **params):
    """A new tracker instance ``name`` with ``params``: its own arguments or any TrackerConfig field.

    TrackerConfig fields that this tracker does not use are ignored (logged at debug level);
    anything else is an error naming the valid keys. ``frame_rate`` 0 (TrackerConfig's "the video's rate",
    which ``mcmt run`` replaces by the camera's) counts as 30 here.
    """
    if name not in TRACKERS:
        raise ValueError(f"unknown tracker {name!r}; valid trackers: {', '.join(sorted(TRACKERS))}")
    cls = TRACKERS[name]
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
    config_keys = {f.name for f in fields(TrackerConfig)} - {"name"}
    unknown = sorted(set(params) - accepted - config_keys)
    if unknown:
        raise ValueError(f"tracker {name!r}: unknown parameter {unknown[0]!r}; valid: "
                         f"{', '.join(sorted(accepted | config_keys))}")
    if params.get("frame_rate", 30.0) == 0:
        params = {**params, "frame_rate": 30.0}
    unused = sorted(set(params) - accepted)
    if unused:
        log.debug("tracker %s ignores %s", name, ", ".join(unused))
    if "gmc" in unused and params["gmc"] != "none":
        log.warning("tracker %r has no camera-motion compensation: gmc=%r is ignored (use botsort)",
                    name, params["gmc"])
    return cls(**{k: v for k, v in params.items() if k in accepted})

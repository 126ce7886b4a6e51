"""Hard constraints of cross-camera association: who can never be the same person.

- Two tracklets of one camera that overlap in time (always).
- Two tracklets of one camera where the person would have had to move faster than
  ``max_speed`` box heights per second (plus ``slack`` heights) from the end of the earlier one to
  the start of the later one (:func:`motion_cannot_link`; needs the tracklets' boxes).
- With a camera topology (pipeline/topology.py):
  - two tracklets of cameras whose views do not overlap, at the same time;
  - a tracklet that starts in camera b sooner after one in camera a ended than the shortest
    possible route a -> ... -> b allows (or b cannot be reached from a at all).
  These are pairwise (a cannot-link matrix). The direct-transition windows [min, max] are
  checked per merge by ``topology_validator``: in the merged cluster, every tracklet's
  predecessor (the tracklet seen last before it starts, or one visible at the same time as
  that one, for overlapping views) must be in the same camera, an overlapping view, or a
  camera with an allowed move whose travel time window contains the gap.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from pipeline.topology import CameraTopology
from pipeline.tracklet import Tracklet


def tracklet_times(tracklets: Sequence[Tracklet], topology: CameraTopology | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(T,) camera index, start and end time in seconds (topology time offsets applied).

    The camera index is into ``topology.cameras`` when a topology is given, else into the
    sorted set of camera names.
    """
    names = [t.camera for t in tracklets]
    start = np.array([t.start_time for t in tracklets], np.float64)
    end = np.array([t.end_time for t in tracklets], np.float64)
    if topology is None:
        _, cam = np.unique(np.array(names, dtype=object), return_inverse=True)
        return cam.astype(np.int64).reshape(-1), start, end
    cam = topology.index(names)
    off = np.array([topology.offset(c) for c in topology.cameras])[cam]
    return cam, start + off, end + off


def cannot_link_matrix(cam: np.ndarray, start: np.ndarray, end: np.ndarray,
                       mats: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """(T, T) bool: True where two tracklets can never be one person (diagonal False).

    ``mats`` is ``CameraTopology.matrices()`` (indexed by ``cam``) or None for no topology.
    """
    overlap_t = (start[:, None] <= end[None, :]) & (start[None, :] <= end[:, None])   # (T, T)
    same_cam = cam[:, None] == cam[None, :]
    cannot = same_cam & overlap_t
    if mats is not None:
        cannot |= overlap_t & ~mats["overlap"][np.ix_(cam, cam)]
        gap = start[None, :] - end[:, None]                      # (T, T) from i's end to j's start
        too_soon = (gap > 0) & (gap < mats["reach"][np.ix_(cam, cam)])   # i then j impossible
        cannot |= too_soon | too_soon.T
    np.fill_diagonal(cannot, False)
    return cannot


def topology_validator(cam: np.ndarray, start: np.ndarray, end: np.ndarray, mats: dict[str, np.ndarray]):
    """A ``validate(members_a, members_b) -> bool`` for the clustering (see module docstring)."""
    overlap, allowed, tmin, tmax = mats["overlap"], mats["allowed"], mats["tmin"], mats["tmax"]

    def validate(a: np.ndarray, b: np.ndarray) -> bool:
        m = np.concatenate([a, b])
        s, e, c = start[m], end[m], cam[m]                      # (m,)
        before = e[None, :] < s[:, None]                         # (m, m) [x, p]: p ended before x
        has_pred = before.any(1)
        if not has_pred.any():
            return True
        latest = np.where(before, e[None, :], -np.inf).argmax(1)   # (m,) last one seen before x
        cand = before & (e[None, :] >= s[latest][:, None])       # p visible when `latest` was
        gap = s[:, None] - e[None, :]                             # (m, m) travel time p -> x
        cx, cp = c[:, None], c[None, :]
        ok = (cx == cp) | overlap[cp, cx] | (allowed[cp, cx] & (gap >= tmin[cp, cx]) & (gap <= tmax[cp, cx]))
        return bool(np.all(~has_pred | (cand & ok).any(1)))

    return validate


def motion_cannot_link(tracklets: Sequence[Tracklet], cam: np.ndarray, start: np.ndarray, end: np.ndarray,
                       max_speed: float, slack: float = 1.0) -> np.ndarray:
    """(T, T) bool: same-camera pairs whose gap would need a speed above ``max_speed``.

    The move is measured between the foot points (bottom centre) of the earlier tracklet's last
    box and the later one's first box, in units of the mean of the two box heights (a scale that
    follows the person's distance to the camera); allowed is ``slack + max_speed * gap_seconds``.
    Pairs involving a tracklet without boxes are never blocked.
    """
    n = len(tracklets)
    known = np.array([t.first_box is not None and t.last_box is not None for t in tracklets], bool)
    if n < 2 or not known.any():
        return np.zeros((n, n), bool)
    nan4 = np.full(4, np.nan, np.float32)
    first = np.stack([t.first_box if k else nan4 for t, k in zip(tracklets, known)]).astype(np.float64)  # (T, 4)
    last = np.stack([t.last_box if k else nan4 for t, k in zip(tracklets, known)]).astype(np.float64)
    foot_first = np.column_stack([(first[:, 0] + first[:, 2]) / 2, first[:, 3]])     # (T, 2)
    foot_last = np.column_stack([(last[:, 0] + last[:, 2]) / 2, last[:, 3]])
    h_first, h_last = first[:, 3] - first[:, 1], last[:, 3] - last[:, 1]              # (T,)
    # [i, j]: i ends, then j starts
    move = np.linalg.norm(foot_first[None, :, :] - foot_last[:, None, :], axis=2)     # (T, T) pixels
    scale = np.maximum((h_last[:, None] + h_first[None, :]) / 2, 1.0)
    gap = start[None, :] - end[:, None]                                               # (T, T) seconds
    later = (cam[:, None] == cam[None, :]) & (gap > 0) & known[:, None] & known[None, :]
    too_fast = later & (move / scale > slack + max_speed * gap)
    out = too_fast | too_fast.T
    np.fill_diagonal(out, False)
    return out

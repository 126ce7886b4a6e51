"""Hard constraints of cross-camera association: who can never be the same person.

- Two tracklets of one camera that overlap in time (always; a handover in one frame, where a track starts on
  part of the person whose track ends there, does not count as an overlap: :func:`handover_starts`).
- Two tracklets of one camera where the person would have had to move faster than
  ``max_speed`` box heights per second (plus ``slack`` heights) from the end of the earlier one to
  the start of the later one (:func:`motion_blocked_pairs`; needs the tracklets' boxes). Only pairs
  within the time a move across the whole view takes can be blocked, so they are found by a sweep
  over start times (memory grows with those pairs, not with T^2).
- With a camera topology (pipeline/association/topology.py):
  - two tracklets of cameras whose views do not overlap, at the same time;
  - a tracklet that starts in camera b sooner after one in camera a ended than the shortest
    possible route a -> ... -> b allows (or b cannot be reached from a at all).
  These are pairwise (a cannot-link matrix, built in row blocks). The direct-transition windows [min, max] are
  checked per merge by ``topology_validator``: in the merged cluster, every tracklet's
  predecessor (the tracklet seen last before it starts, or one visible at the same time as
  that one, for overlapping views) must be in the same camera, an overlapping view, or a
  camera with an allowed move whose travel time window contains the gap.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from pipeline.association.topology import CameraTopology
from pipeline.tracklet import Tracklet


HANDOVER_NESTING = 0.9     # share of the smaller box inside the larger one for a handover (see handover_starts)
HANDOVER_GAP = 1e-6        # seconds: the gap a handover's later tracklet is given after the earlier one


def tracklet_times(tracklets: Sequence[Tracklet], topology: CameraTopology | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(T,) camera index, start and end time in seconds (topology time offsets applied).

    The camera index is into ``topology.cameras`` when a topology is given, else into the
    sorted set of camera names. A tracklet that took over from another in the frame where that one
    ended (:func:`handover_starts`) starts just after it, so the two are not "seen at the same time".
    """
    names = [t.camera for t in tracklets]
    start = handover_starts(tracklets)
    end = np.array([t.end_time for t in tracklets], np.float64)
    if topology is None:
        _, cam = np.unique(np.array(names, dtype=object), return_inverse=True)
        return cam.astype(np.int64).reshape(-1), start, end
    cam = topology.index(names)
    off = np.array([topology.offset(c) for c in topology.cameras])[cam]
    return cam, start + off, end + off


def handover_starts(tracklets: Sequence[Tracklet]) -> np.ndarray:
    """(T,) start times, those of handovers moved to just after the tracklet they took over from.

    A handover: tracklet b of one camera starts in the very frame where tracklet a of that camera ends (a
    began earlier, b goes on later), and one of their boxes in that frame lies inside the other
    (``HANDOVER_NESTING``). The tracker started a track on part of a person (their legs under an
    occluder, a blurred half) while the person's own track took a weak box there for the last time:
    one person, two boxes for one frame. Counted as overlapping in time, the two tracklets would be
    two different people (a cannot-link, and a "known negative" for the calibration); moved, b is a
    candidate to link after a like any track the tracker broke (PETS09 blurred: one such pair in the 38
    footages of bench/mtmc.py, its 85 and 198 boxes one person). Tracklets without boxes keep their times.
    """
    start = np.array([t.start_time for t in tracklets], np.float64)
    ending: dict[tuple[str, int], list[int]] = {}
    for k, t in enumerate(tracklets):
        if t.last_box is not None:
            ending.setdefault((t.camera, t.end_frame), []).append(k)
    for b, t in enumerate(tracklets):
        if t.first_box is None or t.end_frame <= t.start_frame:
            continue
        for a in ending.get((t.camera, t.start_frame), ()):
            prev = tracklets[a]
            if prev.start_frame < t.start_frame and _nesting(prev.last_box, t.first_box) >= HANDOVER_NESTING:
                start[b] = prev.end_time + HANDOVER_GAP
                break
    return start


def _nesting(a: np.ndarray, b: np.ndarray) -> float:
    """Share of the smaller of two boxes (x1, y1, x2, y2) that lies inside the other."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return float(max(w, 0.0) * max(h, 0.0) / smaller) if smaller > 0 else 0.0


def cannot_link_matrix(cam: np.ndarray, start: np.ndarray, end: np.ndarray,
                       mats: dict[str, np.ndarray] | None = None, block: int = 1024) -> np.ndarray:
    """(T, T) bool: True where two tracklets can never be one person (diagonal False).

    ``mats`` is ``CameraTopology.matrices()`` (indexed by ``cam``) or None for no topology.
    Temporaries are (block, T).
    """
    t = len(cam)
    cannot = np.zeros((t, t), bool)
    for r0 in range(0, t, block):
        r = slice(r0, min(t, r0 + block))
        overlap_t = (start[r, None] <= end[None, :]) & (start[None, :] <= end[r, None])   # (b, T)
        row = (cam[r, None] == cam[None, :]) & overlap_t
        if mats is not None:
            row |= overlap_t & ~mats["overlap"][np.ix_(cam[r], cam)]
            after = start[None, :] - end[r, None]                 # (b, T) from my end to their start
            before = start[r, None] - end[None, :]                # (b, T) from their end to my start
            row |= (after > 0) & (after < mats["reach"][np.ix_(cam[r], cam)])
            row |= (before > 0) & (before < mats["reach"][np.ix_(cam, cam[r])].T)
        cannot[r] = row
    np.fill_diagonal(cannot, False)
    return cannot


def overlapping_pairs(cam: np.ndarray, start: np.ndarray, end: np.ndarray,
                      cross: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(i, j) index pairs (i < j) that overlap in time, same camera only unless ``cross`` (C, C) bool
    marks camera pairs whose overlapping tracklets are also different people. Sorted sweep, no (T, T)."""
    groups = [np.arange(len(cam))] if cross is not None else [np.flatnonzero(cam == c) for c in np.unique(cam)]
    out_i, out_j = [], []
    for idx in groups:
        order = idx[np.argsort(start[idx], kind="stable")]
        s, e = start[order], end[order]
        hi = np.searchsorted(s, e, side="right")              # past the last start before my end
        cnt = np.maximum(hi - np.arange(len(s)) - 1, 0)
        a = np.repeat(np.arange(len(s)), cnt)
        b = a + 1 + (np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt))
        i, j = order[a], order[b]
        keep = (cam[i] == cam[j]) | (cross[cam[i], cam[j]] if cross is not None else False)
        out_i.append(np.minimum(i, j)[keep])
        out_j.append(np.maximum(i, j)[keep])
    if not out_i:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(out_i), np.concatenate(out_j)


def gap_pairs(cam: np.ndarray, start: np.ndarray, end: np.ndarray, window: float,
              same_camera: bool | None = None, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(i, j) pairs where j starts after i ends, within ``window`` seconds (0 < gap <= window);
    ``same_camera`` True / False keeps only pairs of one camera / of two cameras; ``rows`` limits i.
    Sorted sweep: memory grows with the pairs found, never with T^2."""
    rows = np.arange(len(start)) if rows is None else np.asarray(rows, np.int64)
    if window <= 0 or len(start) < 2 or not len(rows):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    order = np.argsort(start, kind="stable")
    s = start[order]
    lo = np.searchsorted(s, end[rows], side="right")            # first start after my end
    hi = np.searchsorted(s, end[rows] + window, side="right")
    cnt = np.maximum(hi - lo, 0)
    i = np.repeat(rows, cnt)
    j = order[np.repeat(lo, cnt) + (np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt))]
    if same_camera is not None:
        keep = (cam[i] == cam[j]) == same_camera
        i, j = i[keep], j[keep]
    return i, j


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


def box_ends(tracklets: Sequence[Tracklet]) -> tuple[np.ndarray, np.ndarray]:
    """(T, 4) first and last box of each tracklet (x1, y1, x2, y2; NaN rows where unknown)."""
    nan4 = np.full(4, np.nan)
    first = np.stack([nan4 if t.first_box is None else np.asarray(t.first_box, np.float64).reshape(4)
                      for t in tracklets]) if len(tracklets) else np.zeros((0, 4))
    last = np.stack([nan4 if t.last_box is None else np.asarray(t.last_box, np.float64).reshape(4)
                     for t in tracklets]) if len(tracklets) else np.zeros((0, 4))
    return first, last


def too_fast(first: np.ndarray, last: np.ndarray, start: np.ndarray, end: np.ndarray, i: np.ndarray,
             j: np.ndarray, max_speed: float, slack: float = 1.0) -> np.ndarray:
    """(P,) bool for pairs (i ends, then j starts): the foot point (bottom centre) of i's last box to
    that of j's first box is farther than ``slack + max_speed * gap`` mean box heights. Pairs with an
    unknown box are never too fast."""
    a, b = last[i], first[j]                                    # (P, 4)
    move = np.hypot((b[:, 0] + b[:, 2] - a[:, 0] - a[:, 2]) / 2, b[:, 3] - a[:, 3])   # (P,) pixels
    scale = np.maximum((a[:, 3] - a[:, 1] + b[:, 3] - b[:, 1]) / 2, 1.0)
    gap = start[j] - end[i]
    with np.errstate(invalid="ignore"):
        return (gap > 0) & (move / scale > slack + max_speed * gap)


def motion_blocked_pairs(tracklets: Sequence[Tracklet], cam: np.ndarray, start: np.ndarray, end: np.ndarray,
                         max_speed: float, slack: float = 1.0, chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """(i, j) same-camera pairs (i ends before j starts) whose gap would need a speed above ``max_speed``.

    The move is measured between the foot points of the earlier tracklet's last box and the later
    one's first box, in units of the mean of the two box heights (a scale that follows the person's
    distance to the camera). Only pairs closer in time than a move across the largest view at the
    smallest box can be too fast, so the search is limited to that window.
    """
    first, last = box_ends(tracklets)
    known = np.isfinite(first).all(1) & np.isfinite(last).all(1)
    if len(tracklets) < 2 or not known.any() or max_speed is None:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    boxes = np.concatenate([first[known], last[known]])
    extent = np.hypot(np.ptp(boxes[:, [0, 2]]), np.ptp(boxes[:, [1, 3]])) + 1.0
    min_h = max(float(np.min(boxes[:, 3] - boxes[:, 1])), 1.0)
    window = (extent / min_h - slack) / max_speed if max_speed > 0 else np.inf
    window = min(window, float(end.max() - start.min()) + 1.0)
    out_i, out_j = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    t = len(tracklets)
    for r0 in range(0, t, chunk):                               # bounded temporaries
        rows = np.arange(r0, min(t, r0 + chunk))
        i, j = gap_pairs(cam, start, end, window, same_camera=True, rows=rows)
        fast = too_fast(first, last, start, end, i, j, max_speed, slack)
        out_i.append(i[fast])
        out_j.append(j[fast])
    return np.concatenate(out_i), np.concatenate(out_j)


def motion_cannot_link(tracklets: Sequence[Tracklet], cam: np.ndarray, start: np.ndarray, end: np.ndarray,
                       max_speed: float, slack: float = 1.0) -> np.ndarray:
    """(T, T) bool, symmetric: :func:`motion_blocked_pairs` as a matrix."""
    out = np.zeros((len(tracklets), len(tracklets)), bool)
    i, j = motion_blocked_pairs(tracklets, cam, start, end, max_speed, slack)
    out[i, j] = out[j, i] = True
    return out

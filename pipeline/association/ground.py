"""The ground plane of calibrated cameras (``--calibration``): where people stand decides.

Each calibrated tracklet's foot points (``Tracklet.footprints``) are mapped to the ground by its
camera's homography (pipeline/formats/calibration.py). Distances are compared in "ground box
heights": a box's height in pixels times the ground units per pixel at its foot point, so no
threshold depends on the units of the calibration (metres, centimetres, map pixels):

1. **Same time, two cameras**: a pair of tracklets of two calibrated cameras seen at the same times
   (>= ``MIN_SHARED`` foot points of one within the other's span, the other's interpolated) is one
   person when its median ground distance is within ``AGREE`` (of the two heights combined) and the
   two are matched to each other at ``MATCHED`` of the times both are seen, when everyone the two
   cameras see at that time is matched one-to-one (every ``GRID_SECONDS``, appearance as a tie-break):
   two people walking side by side take the match from each other, one person seen twice keeps it.
   Pairs are joined longest matched time first. A median above ``DISAGREE``: two people (cannot-link).
   On EPFL terrace's ground truth one person seen twice has a median of 0.09, 90 % of them below
   0.15; different people 0.51, 5 % below 0.19 (a tracker's identity switch inside a tracklet mixes
   the two, hence the loose ``DISAGREE``).
2. **Transit time**: a person cannot be at two places faster than people walk. The walking speed is
   learned from the run (``SPEED_QUANTILE`` of the tracklets' own median ground speeds, times
   ``SPEED_FACTOR``, at least ``MIN_SPEED`` box heights per second); two calibrated tracklets one after
   the other whose exit -> entry distance (less the localisation slack) needs a faster move are
   cannot-link, within one camera or between views that do not overlap.

:func:`apply_ground` is the hook the association calls before its other geometry; with a
calibration, the run-learned homography of overlap.py is not used for calibrated camera pairs
(:func:`skip_calibrated`).
"""
from __future__ import annotations

import logging
from typing import Optional, Sequence

import numpy as np

from pipeline.formats.calibration import GroundCalibration
from pipeline.tracklet import Tracklet

log = logging.getLogger(__name__)

MIN_SHARED = 4            # foot points (and grid times) seen at the same times
AGREE = 0.2               # median ground distance / combined ground box height of one person ...
MATCHED = 0.5             # ... matched one-to-one at this share of the times both are seen
GATE = 0.4                # a one-to-one match farther than this (normalised ground distance) is no vote
APPEARANCE_WEIGHT = 0.5   # cost of one unit of appearance distance in the one-to-one matching (tie-break)
GRID_SECONDS = 0.5        # the common time grid of the one-to-one matching
GRID_BLOCK = 600          # grid times held in memory at once
DISAGREE = 1.0            # above this: two people (loose: a tracker's identity switch mixes two people)
SPEED_QUANTILE = 0.9      # of the tracklets' median ground speeds
SPEED_FACTOR = 1.5        # the fastest plausible move = this x that quantile
MIN_SPEED = 1.0           # ... and at least this many ground box heights per second
MIN_SPEED_SECONDS = 2.0   # tracklets shorter than this do not teach the speed

GroundTrack = np.ndarray  # (K, 4) time (s), X, Y, ground box height (ground units)


def ground_tracks(tracklets: Sequence[Tracklet], ground: GroundCalibration) -> list[Optional[GroundTrack]]:
    """Each tracklet's foot points on the ground; None for cameras without calibration or footprints."""
    out: list[Optional[GroundTrack]] = []
    for t in tracklets:
        fp = t.footprints
        if t.camera not in ground or fp is None or not len(fp):
            out.append(None)
            continue
        cal = ground.cameras[t.camera]
        uv = fp[:, 1:3].astype(np.float64)
        xy, size = cal.to_ground(uv), fp[:, 3] * cal.scale(uv)
        ok = np.all(np.isfinite(xy), axis=1) & np.isfinite(size)
        out.append(np.column_stack([fp[ok, 0], xy[ok], size[ok]]) if ok.sum() else None)
    return out


def shared_distance(ga: GroundTrack, gb: GroundTrack) -> np.ndarray:
    """(K,) ground distance / combined ground box height at a's times within b's span (b interpolated)."""
    inside = (ga[:, 0] >= gb[0, 0]) & (ga[:, 0] <= gb[-1, 0])
    t = ga[inside, 0]
    b = np.column_stack([np.interp(t, gb[:, 0], gb[:, k]) for k in (1, 2, 3)]).reshape(-1, 3)
    a = ga[inside]
    return np.hypot(a[:, 1] - b[:, 0], a[:, 2] - b[:, 1]) / np.maximum(np.hypot(a[:, 3], b[:, 2]), 1e-9)


def simultaneous_pairs(tracks: Sequence[Optional[GroundTrack]], cam: np.ndarray, start: np.ndarray,
                       end: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i, j, median normalised distance) of calibrated tracklets of two cameras (cam[i] < cam[j]) seen at
    the same times."""
    from pipeline.association.constraints import overlapping_pairs

    has = np.array([g is not None for g in tracks], bool)
    n_cam = int(cam.max(initial=-1)) + 1
    i, j = overlapping_pairs(cam, start, end, np.ones((n_cam, n_cam), bool))
    keep = (cam[i] != cam[j]) & has[i] & has[j]
    i, j = i[keep], j[keep]
    i, j = np.where(cam[i] < cam[j], i, j), np.where(cam[i] < cam[j], j, i)    # the lower camera first
    med = np.full(len(i), np.inf)
    for p, (a, b) in enumerate(zip(i.tolist(), j.tolist())):
        d = shared_distance(tracks[a], tracks[b])
        if len(d) < MIN_SHARED:
            d = shared_distance(tracks[b], tracks[a])
        if len(d) >= MIN_SHARED:
            med[p] = float(np.median(d))
    ok = np.isfinite(med)
    return i[ok], j[ok], med[ok]


def positions_at(tracks: Sequence[Optional[GroundTrack]], idx: np.ndarray, times: np.ndarray) -> np.ndarray:
    """(len(idx), G, 3) X, Y, ground box height of the tracklets ``idx`` at ``times`` (interpolated within
    each one's own span; NaN outside it)."""
    out = np.full((len(idx), len(times), 3), np.nan)
    for r, k in enumerate(idx.tolist()):
        g = tracks[k]
        inside = (times >= g[0, 0]) & (times <= g[-1, 0])
        if inside.any():
            out[r, inside] = np.column_stack([np.interp(times[inside], g[:, 0], g[:, c]) for c in (1, 2, 3)])
    return out


def matched_share(tracks: Sequence[Optional[GroundTrack]], i: np.ndarray, j: np.ndarray, appearance: np.ndarray,
                  block: int = GRID_BLOCK) -> tuple[np.ndarray, np.ndarray]:
    """(share, seen) per pair (i[p], j[p] of two cameras, each camera pair in one order): of the ``seen``
    grid times (every ``GRID_SECONDS``) both are on the ground, the share at which the two are matched
    to each other when everyone the two cameras see then is matched one-to-one (Hungarian on normalised
    ground distance plus ``APPEARANCE_WEIGHT`` x appearance distance as a tie-break; a match farther than
    ``GATE`` is no vote): people side by side take the match from each other, one person seen twice keeps
    it. ``appearance`` (T, T) distances (inf: unknown). Memory: ``block`` grid times at a time."""
    from scipy.optimize import linear_sum_assignment

    if not len(i):
        return np.zeros(0), np.zeros(0)
    ua, ia = np.unique(i, return_inverse=True)
    ub, ib = np.unique(j, return_inverse=True)
    allowed = np.zeros((len(ua), len(ub)), bool)
    allowed[ia, ib] = True
    app = np.nan_to_num(appearance[np.ix_(ua, ub)].astype(np.float64), nan=2.0, posinf=2.0)
    span = lambda u: np.array([(tracks[k][0, 0], tracks[k][-1, 0]) for k in u.tolist()])   # noqa: E731
    sa, sb = span(ua), span(ub)
    lo, hi = max(sa[:, 0].min(), sb[:, 0].min()), min(sa[:, 1].max(), sb[:, 1].max())
    times = np.arange(np.ceil(lo / GRID_SECONDS), np.floor(hi / GRID_SECONDS) + 1) * GRID_SECONDS
    votes, seen = np.zeros(allowed.shape), np.zeros(allowed.shape)
    for b0 in range(0, len(times), block):
        t = times[b0:b0 + block]
        ra = np.flatnonzero((sa[:, 0] <= t[-1]) & (sa[:, 1] >= t[0]))       # active in this block
        rb = np.flatnonzero((sb[:, 0] <= t[-1]) & (sb[:, 1] >= t[0]))
        pa, pb = positions_at(tracks, ua[ra], t), positions_at(tracks, ub[rb], t)
        here_a, here_b = np.isfinite(pa[:, :, 0]), np.isfinite(pb[:, :, 0])
        seen[np.ix_(ra, rb)] += (here_a.astype(np.float64) @ here_b.T.astype(np.float64)) * allowed[np.ix_(ra, rb)]
        for g in np.flatnonzero(here_a.any(0) & here_b.any(0)).tolist():
            xa, xb = np.flatnonzero(here_a[:, g]), np.flatnonzero(here_b[:, g])
            qa, qb = pa[xa, g], pb[xb, g]
            d = np.hypot(qa[:, None, 0] - qb[None, :, 0], qa[:, None, 1] - qb[None, :, 1])
            d = d / np.maximum(np.hypot(qa[:, None, 2], qb[None, :, 2]), 1e-9)
            ok = allowed[np.ix_(ra[xa], rb[xb])]
            r, c = linear_sum_assignment(np.where(ok, d, 1e6) + APPEARANCE_WEIGHT * app[np.ix_(ra[xa], rb[xb])])
            hit = ok[r, c] & (d[r, c] <= GATE)
            votes[ra[xa[r[hit]]], rb[xb[c[hit]]]] += 1
    s = seen[ia, ib]
    return np.where(s > 0, votes[ia, ib] / np.maximum(s, 1), 0.0), s


def walking_speeds(tracks: Sequence[Optional[GroundTrack]]) -> Optional[tuple[float, float]]:
    """(typical, fastest plausible) move in ground units / s learned from the tracklets' own median speeds
    (their median, and ``SPEED_FACTOR`` x their ``SPEED_QUANTILE``, at least ``MIN_SPEED`` box heights /
    s); None when no calibrated tracklet lasts ``MIN_SPEED_SECONDS``."""
    speeds, heights = [], []
    for g in tracks:
        if g is None or len(g) < 3 or g[-1, 0] - g[0, 0] < MIN_SPEED_SECONDS:
            continue
        step = max(1, int(np.ceil(len(g) / max((g[-1, 0] - g[0, 0]), 1e-9))))   # about 1 s apart
        s = g[::step]
        dt = np.diff(s[:, 0])
        ok = dt > 0
        if ok.sum():
            speeds.append(float(np.median(np.hypot(*np.diff(s[:, 1:3], axis=0).T)[ok] / dt[ok])))
            heights.append(float(np.median(g[:, 3])))
    if not speeds:
        return None
    fastest = max(SPEED_FACTOR * float(np.quantile(speeds, SPEED_QUANTILE)), MIN_SPEED * float(np.median(heights)))
    return float(np.median(speeds)), fastest


def transit_blocked(tracks: Sequence[Optional[GroundTrack]], cam: np.ndarray, start: np.ndarray, end: np.ndarray,
                    speed: float) -> tuple[np.ndarray, np.ndarray]:
    """(i, j) calibrated tracklets, j starting after i ends, whose exit -> entry ground distance, less
    ``DISAGREE`` combined box heights of slack, needs a move faster than ``speed``."""
    from pipeline.association.constraints import gap_pairs

    has = np.flatnonzero([g is not None for g in tracks])
    if len(has) < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    pts = np.concatenate([tracks[k][:, 1:3] for k in has])
    window = float(np.hypot(*np.ptp(pts, axis=0))) / speed                 # farther apart in time: any move fits
    i, j = gap_pairs(cam, start, end, window, rows=has)
    ok = np.array([tracks[b] is not None for b in j.tolist()], bool)
    i, j = i[ok], j[ok]
    if not len(i):
        return i, j
    exit_ = np.stack([tracks[a][-1] for a in i.tolist()])                  # (P, 4)
    entry = np.stack([tracks[b][0] for b in j.tolist()])
    dist = np.hypot(exit_[:, 1] - entry[:, 1], exit_[:, 2] - entry[:, 2])
    slack = DISAGREE * np.hypot(exit_[:, 3], entry[:, 3])
    gap = np.maximum(entry[:, 0] - exit_[:, 0], 0.0)
    bad = dist - slack > speed * gap
    return i[bad], j[bad]


def apply_ground(ground: GroundCalibration, tracklets: Sequence[Tracklet], cam: np.ndarray, start: np.ndarray,
                 end: np.ndarray, dist: np.ndarray, cannot: np.ndarray, stats: dict) -> tuple[np.ndarray, np.ndarray]:
    """The association hook: pairs that disagree on the ground, or would need a move faster than people
    walk, become cannot-link; simultaneous pairs that agree get distance 0 (``dist`` and ``cannot``
    changed in place) and are returned (i, j), best first, to be joined before the clustering."""
    tracks = ground_tracks(tracklets, ground)
    i, j, err = simultaneous_pairs(tracks, cam, start, end)
    share, seen = np.zeros(len(i)), np.zeros(len(i))
    for ca, cb in {(int(x), int(y)) for x, y in zip(cam[i].tolist(), cam[j].tolist())}:   # per camera pair
        sel = np.flatnonzero((cam[i] == ca) & (cam[j] == cb))
        share[sel], seen[sel] = matched_share(tracks, i[sel], j[sel], dist)
    agree = (err <= AGREE) & (share >= MATCHED) & (seen >= MIN_SHARED)
    order = np.argsort(-(share * seen)[agree], kind="stable")              # longest matched time first
    si, sj = i[agree][order], j[agree][order]
    di, dj = i[err > DISAGREE], j[err > DISAGREE]
    cannot[di, dj] = cannot[dj, di] = True
    speeds = walking_speeds(tracks)
    ti, tj = transit_blocked(tracks, cam, start, end, speeds[1]) if speeds else (np.zeros(0, np.int64),) * 2
    newly = int((~cannot[ti, tj]).sum())
    cannot[ti, tj] = cannot[tj, ti] = True
    dist[si, sj] = dist[sj, si] = 0.0
    speed = None if speeds is None else speeds[1]
    stats.update(ground_cameras=sorted(ground.cameras), ground_tracklets=int(sum(g is not None for g in tracks)),
                 ground_pairs=int(len(i)), ground_same=int(agree.sum()), ground_different=int(len(di)),
                 ground_speed=None if speeds is None else [round(v, 4) for v in speeds],
                 ground_transit_blocked=newly)
    log.info("ground plane: %d simultaneous pairs, %d same, %d different; fastest walk %s, %d moves too fast",
             len(i), int(agree.sum()), len(di),
             "-" if speed is None else f"{speed:.2f}", newly)
    return si, sj


def skip_calibrated(ground: Optional[GroundCalibration], tracklets: Sequence[Tracklet], si: np.ndarray,
                    sj: np.ndarray, diff: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The run-learned overlap evidence without the pairs whose two cameras are calibrated (the ground
    plane decides those); unchanged without a calibration."""
    if ground is None:
        return si, sj, diff
    calibrated = np.array([t.camera in ground for t in tracklets], bool)
    keep = ~(calibrated[si] & calibrated[sj])
    keep_d = ~(calibrated[diff[:, 0]] & calibrated[diff[:, 1]]) if len(diff) else np.zeros(0, bool)
    return si[keep], sj[keep], diff[keep_d].reshape(-1, 2)

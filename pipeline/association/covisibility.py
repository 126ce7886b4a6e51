"""Who is who at the same time in two overlapping views: one-to-one matching on a common time grid.

Under a floor homography from camera a to camera b (overlap.py), a person seen by both stands at the
same place in b's image. People walk side by side, so "close enough" is not enough: at every grid time
(``GRID_SECONDS``) everyone both cameras see is matched one-to-one (Hungarian) on the distance in box
heights of b, with appearance as a small tie-break (``APPEARANCE_WEIGHT``); a pair gets a vote when its
match is within ``GATE`` heights. One person seen twice keeps the match over their shared time, two
people side by side take it from each other (neither holds it most of the time).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from pipeline.formats.calibration import apply_homography
from pipeline.tracklet import Tracklet

GRID_SECONDS = 0.5        # the common time grid
GATE = 0.4                # a one-to-one match farther than this (box heights of b) is no vote
APPEARANCE_WEIGHT = 0.5   # box heights of cost per unit of appearance distance (tie-break)


def grid_positions(tracklets: Sequence[Tracklet], idx: np.ndarray, times: np.ndarray,
                   h: np.ndarray | None = None) -> np.ndarray:
    """(len(idx), G, 3) foot x, y (mapped by ``h`` when given) and box height of each tracklet at the grid
    ``times`` (interpolated within its footprints' span; NaN outside it)."""
    out = np.full((len(idx), len(times), 3), np.nan)
    for r, k in enumerate(idx.tolist()):
        fp = tracklets[k].footprints.astype(np.float64)
        inside = (times >= fp[0, 0]) & (times <= fp[-1, 0])
        vals = np.column_stack([np.interp(times[inside], fp[:, 0], fp[:, c]) for c in (1, 2, 3)]).reshape(-1, 3)
        if h is not None:
            vals[:, :2] = apply_homography(h, vals[:, :2])
        out[r, inside] = vals
    return out


def matched_share(tracklets: Sequence[Tracklet], i: np.ndarray, j: np.ndarray, h: np.ndarray,
                  appearance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(share, seen) per pair (i[p] of camera a, j[p] of camera b): the share of the grid times both are
    seen at which they are matched to each other (module docstring), and the number of those times.
    ``appearance`` (T, T) distances (inf / NaN: none)."""
    ua, ia = np.unique(i, return_inverse=True)
    ub, ib = np.unique(j, return_inverse=True)
    lo = min(float(tracklets[k].footprints[0, 0]) for k in np.concatenate([ua, ub]).tolist())
    hi = max(float(tracklets[k].footprints[-1, 0]) for k in np.concatenate([ua, ub]).tolist())
    times = np.arange(np.floor(lo / GRID_SECONDS), np.ceil(hi / GRID_SECONDS) + 1) * GRID_SECONDS
    pa, pb = grid_positions(tracklets, ua, times, h), grid_positions(tracklets, ub, times)
    app = np.nan_to_num(appearance[np.ix_(ua, ub)].astype(np.float64), nan=2.0, posinf=2.0)
    allowed = np.zeros((len(ua), len(ub)), bool)
    allowed[ia, ib] = True
    here_a, here_b = np.isfinite(pa[:, :, 0]), np.isfinite(pb[:, :, 0])
    seen = here_a.astype(np.float64) @ here_b.T.astype(np.float64)
    votes = np.zeros_like(seen)
    for t in np.flatnonzero(here_a.any(0) & here_b.any(0)).tolist():
        ra, rb = np.flatnonzero(here_a[:, t]), np.flatnonzero(here_b[:, t])
        geo = np.hypot(*(pa[ra, t, None, :2] - pb[None, rb, t, :2]).transpose(2, 0, 1))
        geo = geo / np.maximum(pb[None, rb, t, 2], 1.0)
        geo = np.where(np.isfinite(geo) & allowed[np.ix_(ra, rb)], geo, 1e6)
        r, c = linear_sum_assignment(geo + APPEARANCE_WEIGHT * app[np.ix_(ra, rb)])
        ok = geo[r, c] <= GATE
        votes[ra[r[ok]], rb[c[ok]]] += 1
    s = seen[ia, ib]
    return np.where(s > 0, votes[ia, ib] / np.maximum(s, 1), 0.0), s

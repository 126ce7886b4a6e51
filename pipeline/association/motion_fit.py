"""A floor homography between two overlapping views from co-visibility and motion alone.

Real cameras of one floor often differ too much in colour and light for appearance to pair anyone
across them (EPFL terrace: no pair within the link threshold), but people still walk the same paths in
both views at the same time. Two simultaneous pairs (two walks) fix a plane homography, so hypotheses
are drawn two pairs at a time, likely pairs more often (their appearance *rank*, which survives a
colour gap, not their distance), all solved at once (batched DLT). Each is scored by how many
synchronised foot points of how many pairs it maps within ``RANSAC_TOL`` box heights (on at most
``SCORE_PAIRS`` pairs, so the cost does not grow with the footage). The best few are refitted on every
pair they explain (overlap.fit_homography) and the first that explains a ``MOTION_SHARE`` of the
simultaneous presence on both sides, with ``MOTION_MIN_PAIRS`` distinct tracklets on each, is the model.
Views that do not overlap have pairs that agree by chance, never most of them: no model.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from pipeline.association.overlap import (MIN_SHARED, RANSAC_TOL, Geometry, _errors, _spread, fit_homography,
                                          geometry)
from pipeline.tracklet import Tracklet

MOTION_HYPOTHESES = 1000  # homographies tried
MOTION_DRAW = 2           # simultaneous pairs per hypothesis (two walks fix a plane homography)
DRAW_POINTS = 8           # foot points per pair in a hypothesis
SCORE_PAIRS = 400         # pairs (drawn by appearance rank) that score the hypotheses
MOTION_TOP = 5            # best hypotheses refitted and checked, in order
MOTION_MIN_PAIRS = 4      # pairs that agree under the model, with distinct tracklets on each side
MOTION_SHARE = 0.3        # ... explaining this share of the tracklet-time seen at once in both views
AGREE_SHARE = 0.6         # a pair agrees when this share of its points is within the tolerance

Points = tuple            # (pair index (N,), src (N, 2), dst (N, 2), height (N,), points per pair (P,))


def pair_ranks(i: np.ndarray, j: np.ndarray, d: np.ndarray) -> np.ndarray:
    """(P,) rank of each pair's distance among the pairs of its i plus among those of its j (0 = best
    for both): a scale-free appearance score that works whatever the cameras' colour gap."""
    ranks = np.zeros(len(i))
    for side in (i, j):
        order = np.lexsort((d, side))                             # by tracklet, then distance
        grp = side[order]
        first = np.searchsorted(grp, grp, side="left")
        r = np.empty(len(i))
        r[order] = np.arange(len(i)) - first
        ranks += r
    return ranks


def flatten(geo: Sequence[Geometry], most: int = 16) -> Points:
    """At most ``most`` evenly spread points of each pair, concatenated (pair index ascending)."""
    few = [_spread(len(g[0]), most) for g in geo]
    n = np.array([len(f) for f in few], np.int64)
    pid = np.repeat(np.arange(len(geo)), n)
    cat = [np.concatenate([g[k][f] for g, f in zip(geo, few)]) if len(geo) else np.zeros((0, 2)) for k in range(3)]
    return pid, cat[0].astype(np.float64), cat[1].astype(np.float64), cat[2].astype(np.float64), n


def agreement(h: np.ndarray, pts: Points, tol: float = RANSAC_TOL) -> np.ndarray:
    """(P,) share of each pair's points that ``h`` maps within ``tol`` box heights."""
    pid, src, dst, height, n = pts
    ok = _errors(h, src, dst, height) <= tol
    return np.bincount(pid, weights=ok, minlength=len(n)) / np.maximum(n, 1)


def _normaliser(p: np.ndarray) -> np.ndarray:
    """(B, 3, 3) Hartley normalisation of point sets (B, N, 2): centroid to 0, mean distance sqrt(2)."""
    c = p.mean(1)
    scale = np.sqrt(2.0) / np.maximum(np.linalg.norm(p - c[:, None], axis=2).mean(1), 1e-9)
    t = np.zeros((len(p), 3, 3))
    t[:, 0, 0] = t[:, 1, 1] = scale
    t[:, :2, 2] = -scale[:, None] * c
    t[:, 2, 2] = 1.0
    return t


def dlt_batch(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """(B, 3, 3) least-squares homographies src -> dst of B point sets (B, N, 2), N >= 4 (normalised DLT)."""
    ts, td = _normaliser(src), _normaliser(dst)
    s = np.einsum("bij,bnj->bni", ts[:, :2, :2], src) + ts[:, None, :2, 2]
    d = np.einsum("bij,bnj->bni", td[:, :2, :2], dst) + td[:, None, :2, 2]
    x, y, u, v = s[..., 0], s[..., 1], d[..., 0], d[..., 1]
    z, o = np.zeros_like(x), np.ones_like(x)
    a = np.concatenate([np.stack([x, y, o, z, z, z, -u * x, -u * y, -u], -1),
                        np.stack([z, z, z, x, y, o, -v * x, -v * y, -v], -1)], axis=1)       # (B, 2N, 9)
    hn = np.linalg.eigh(a.transpose(0, 2, 1) @ a)[1][:, :, 0].reshape(-1, 3, 3)     # least singular vector
    h = np.linalg.inv(td) @ hn @ ts
    with np.errstate(divide="ignore", invalid="ignore"):
        return h / h[:, 2:3, 2:3]


def _scores(hs: np.ndarray, pts: Points) -> np.ndarray:
    """(B,) points of the pairs each homography explains (>= ``AGREE_SHARE`` of a pair's points within
    the tolerance); pts' pair indices must be contiguous."""
    pid, src, dst, height, n = pts
    p = np.matmul(np.column_stack([src, np.ones(len(src))])[None], hs.transpose(0, 2, 1))   # (B, N, 3)
    with np.errstate(divide="ignore", invalid="ignore"):
        err = np.hypot(*(p[..., :2] / p[..., 2:3] - dst).transpose(2, 0, 1)) / np.maximum(height, 1.0)
    ok = np.where(np.isfinite(err), err <= RANSAC_TOL, False).astype(np.float64)        # (B, N)
    starts = np.concatenate([[0], np.cumsum(n)[:-1]])
    share = np.add.reduceat(ok, starts, axis=1) / np.maximum(n, 1)                      # (B, P)
    return (share >= AGREE_SHARE) @ n.astype(np.float64)


def _hypotheses(geo: Sequence[Geometry], i: np.ndarray, j: np.ndarray, w: np.ndarray,
                rng: np.random.Generator) -> np.ndarray:
    """(B, 3, 3) orientation-keeping homographies, each from two simultaneous pairs of distinct people."""
    draws = rng.choice(len(geo), (MOTION_HYPOTHESES, MOTION_DRAW), p=w)          # (B, 2) pair indices
    distinct = (i[draws[:, 0]] != i[draws[:, 1]]) & (j[draws[:, 0]] != j[draws[:, 1]])    # two people
    draws = np.unique(draws[distinct], axis=0)
    if not len(draws):
        return np.zeros((0, 3, 3))
    few = {int(k): np.linspace(0, len(geo[k][0]) - 1, DRAW_POINTS).round().astype(np.int64) for k in np.unique(draws)}
    src = np.stack([np.concatenate([geo[k][0][few[k]] for k in row]) for row in draws.tolist()])
    dst = np.stack([np.concatenate([geo[k][1][few[k]] for k in row]) for row in draws.tolist()])
    hs = dlt_batch(src.astype(np.float64), dst.astype(np.float64))
    w3 = np.einsum("bj,bnj->bn", hs[:, 2], np.concatenate([src, np.ones(src.shape[:2] + (1,))], axis=2))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        det = np.linalg.det(np.nan_to_num(hs))[:, None] / w3 ** 3     # Jacobian sign: no mirror of the floor
    keep = np.all(np.isfinite(hs.reshape(len(hs), -1)), axis=1) & np.all(np.isfinite(det) & (det > 0), axis=1)
    return hs[keep]


def fit_by_motion(tracklets: Sequence[Tracklet], i: np.ndarray, j: np.ndarray, d: np.ndarray,
                  seed: int = 0) -> np.ndarray | None:
    """The floor homography of one camera pair from its simultaneous pairs (i, j) of tracklets (foot
    points) and their appearance distances ``d`` (module docstring), or None. Only ``SCORE_PAIRS``
    pairs, drawn by appearance rank, are looked at, so the cost does not grow with the footage."""
    if len(i) < MOTION_MIN_PAIRS:
        return None
    rng = np.random.default_rng(seed)
    w = 1.0 / (1.0 + pair_ranks(i, j, np.nan_to_num(d, nan=9.0, posinf=9.0))) ** 2
    few = np.sort(rng.choice(len(i), min(SCORE_PAIRS, len(i)), replace=False, p=w / w.sum()))
    geo = geometry(tracklets, i[few], j[few])
    ok = np.array([len(g[0]) >= MIN_SHARED for g in geo], bool)
    if ok.sum() < MOTION_MIN_PAIRS:
        return None
    i, j, w, geo = i[few][ok], j[few][ok], w[few][ok], [g for g, k in zip(geo, ok) if k]
    hs = _hypotheses(geo, i, j, w / w.sum(), rng)
    if not len(hs):
        return None
    scores = _scores(hs, flatten(geo, DRAW_POINTS))
    pts = flatten(geo)
    for b in np.argsort(-scores, kind="stable")[:MOTION_TOP]:    # a near tie can be wrong
        refit = fit_homography(geo, np.flatnonzero(agreement(hs[b], pts) >= AGREE_SHARE).tolist())
        if refit is not None and explains(refit, i, j, pts):
            return refit
    return None


def explains(h: np.ndarray, i: np.ndarray, j: np.ndarray, pts: Points) -> bool:
    """The model is one of overlapping views: >= ``MOTION_MIN_PAIRS`` agreeing pairs of distinct
    tracklets on both sides, covering ``MOTION_SHARE`` of the points seen at once on each side."""
    agree = agreement(h, pts) >= AGREE_SHARE
    if len(np.unique(i[agree])) < MOTION_MIN_PAIRS or len(np.unique(j[agree])) < MOTION_MIN_PAIRS:
        return False
    n = pts[4].astype(np.float64)
    for side in (i, j):                                           # per tracklet: its best-explained pair
        seen = np.zeros(int(side.max()) + 1)
        expl = np.zeros_like(seen)
        np.maximum.at(seen, side, n)
        np.maximum.at(expl, side, np.where(agree, n, 0.0))
        if expl.sum() < MOTION_SHARE * seen.sum():
            return False
    return True

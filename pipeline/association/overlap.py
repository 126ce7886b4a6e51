"""Overlapping views: where two cameras see one floor, a person's foot points agree between them.

The foot point (bottom centre of the box) of a person on the ground maps from one view to another
by a fixed plane homography. No calibration is needed: it is learned per camera pair from the run,
and then decides what appearance cannot when one view has other colours or light:

1. simultaneous pairs: tracklets of two cameras seen at the same times (>= ``MIN_SHARED`` foot
   points of one within the other's span, the other's foot point interpolated in time);
2. seeds: simultaneous pairs that are each other's nearest in appearance and within the link
   threshold; their synchronised foot points feed a RANSAC homography (tolerance ``RANSAC_TOL``
   box heights). It is kept when >= ``MIN_SEEDS`` seeds, and >= ``FIT_SHARE`` of them, have most
   of their points within the tolerance, and it keeps the orientation of the floor (no mirror).
   Cameras that do not overlap have only look-alikes as seeds, which no single homography fits
   (a few do by chance, never half of them), so they get no model and nothing changes. Two refits
   with every pair that agrees. Real cameras of one floor often differ too much in colour and
   light for appearance seeds (EPFL terrace: none within the link threshold); then the model is
   sought from co-visibility and motion alone (motion_fit.py): hypotheses from a few
   simultaneous pairs at a time (drawn by their appearance rank), each scored by how many pairs'
   trajectories it maps onto each other; the best is kept only when it explains a
   share of the simultaneous presence on both sides (views that do not overlap have
   pairs that agree by chance, but never most of them);
3. under a model, a simultaneous pair is one person when its median foot-point error is within
   ``AGREE_LOOSE`` box heights and the two are matched to each other at ``MATCHED`` of the times both
   are seen, when everyone both cameras see at a time is matched one-to-one (covisibility.py:
   people side by side take the match from each other, appearance breaks the tie); pairs are joined
   longest matched time first (a track that switched people agrees with both, the longer wins). With
   ``one_to_one`` off: a median error within ``AGREE`` that beats every rival seen at the same time by
   a factor 1 / ``RATIO``. A pair whose error is above ``DISAGREE`` heights is two people (cannot-link).

Cost: the appearance seeds come from a sweep over start times and one vectorised pass; foot points
are compared only for the seeds, and for every simultaneous pair only of camera pairs with a model.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from pipeline.association.covisibility import matched_share
from pipeline.tracklet import Tracklet

MIN_SHARED = 4            # foot points seen at the same times
MIN_SEEDS = 3             # seeds within the RANSAC tolerance for a model
FIT_SHARE = 0.5           # ... and at least this share of the seeds
RANSAC_TOL = 0.3          # box heights
AGREE = 0.2               # median foot-point error (box heights) of one person seen twice
RATIO = 0.5               # a pair agrees only with every rival's error above its own / RATIO
DISAGREE = 1.5            # above this: two people
AGREE_LOOSE = 0.4         # one-to-one (default): median error of one person seen twice, at most ...
MATCHED = 0.5             # ... and matched to each other at this share of the times both are seen
SOLID = 0.8               # a pair matched at this share of those times is "solid": no switch of people in it

Geometry = tuple[np.ndarray, np.ndarray, np.ndarray]     # src (K, 2), dst (K, 2), dst box height (K,)


def shared_points(fa: np.ndarray, fb: np.ndarray) -> Geometry:
    """(src, dst, height) of two footprint arrays: a's foot points within b's span, b's foot points
    and box heights interpolated at those times."""
    inside = (fa[:, 0] >= fb[0, 0]) & (fa[:, 0] <= fb[-1, 0])
    t = fa[inside, 0]
    dst = np.column_stack([np.interp(t, fb[:, 0], fb[:, k]) for k in (1, 2, 3)]).reshape(-1, 3)
    return fa[inside, 1:3].astype(np.float64), dst[:, :2].astype(np.float64), dst[:, 2].astype(np.float64)


def candidate_pairs(tracklets: Sequence[Tracklet], cam: np.ndarray, start: np.ndarray, end: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(i, j) tracklets of two cameras (cam[i] < cam[j]) that overlap in time, both with footprints."""
    from pipeline.association.constraints import overlapping_pairs

    has = np.array([t.footprints is not None and len(t.footprints) > 0 for t in tracklets], bool)
    n_cam = int(cam.max(initial=-1)) + 1
    i, j = overlapping_pairs(cam, start, end, np.ones((n_cam, n_cam), bool))
    keep = (cam[i] != cam[j]) & has[i] & has[j]
    i, j = i[keep], j[keep]
    lower = cam[i] < cam[j]
    return np.where(lower, i, j), np.where(lower, j, i)


def geometry(tracklets: Sequence[Tracklet], i: np.ndarray, j: np.ndarray) -> list[Geometry]:
    """:func:`shared_points` from i to j for each pair."""
    return [shared_points(tracklets[a].footprints, tracklets[b].footprints) for a, b in zip(i.tolist(), j.tolist())]


def _errors(h: np.ndarray, src: np.ndarray, dst: np.ndarray, height: np.ndarray) -> np.ndarray:
    """(K,) distance of H(src) to dst in box heights."""
    p = np.column_stack([src, np.ones(len(src))]) @ h.T
    with np.errstate(divide="ignore", invalid="ignore"):
        proj = p[:, :2] / p[:, 2:3]
        err = np.hypot(*(proj - dst).T) / np.maximum(height, 1.0)
    return np.where(np.isfinite(err), err, np.inf)


def _keeps_orientation(h: np.ndarray, pts: np.ndarray) -> bool:
    """The homography is not a mirror at these points (positive Jacobian determinant, finite)."""
    w = h[2, 0] * pts[:, 0] + h[2, 1] * pts[:, 1] + h[2, 2]
    det = np.linalg.det(h) / w ** 3                        # Jacobian determinant of a plane homography
    return bool(np.all(np.isfinite(det)) and np.all(det > 0))


def _spread(n: int, most: int = 16) -> np.ndarray:
    """Indices of at most ``most`` of n points, evenly spread."""
    return np.arange(n) if n <= most else np.linspace(0, n - 1, most).round().astype(np.int64)


def fit_homography(geo: Sequence[Geometry], seeds: Sequence[int]) -> np.ndarray | None:
    """A plane homography from the seeds' synchronised foot points (RANSAC), or None when fewer than
    ``MIN_SEEDS`` seeds (or ``FIT_SHARE`` of them) fit it, or it mirrors the floor."""
    import cv2

    seeds = [k for k in seeds if len(geo[k][0]) >= MIN_SHARED]
    if len(seeds) < MIN_SEEDS:
        return None
    few = [_spread(len(geo[k][0])) for k in seeds]                 # RANSAC cost grows with the points
    src = np.concatenate([geo[k][0][f] for k, f in zip(seeds, few)]).astype(np.float32)
    dst = np.concatenate([geo[k][1][f] for k, f in zip(seeds, few)]).astype(np.float32)
    tol = float(RANSAC_TOL * np.median(np.concatenate([geo[k][2][f] for k, f in zip(seeds, few)])))
    cv2.setRNGSeed(0)
    h, _ = cv2.findHomography(src, dst, cv2.RANSAC, max(tol, 1.0), maxIters=500, confidence=0.995)
    if h is None:
        return None
    fit = sum(np.mean(_errors(h, *geo[k]) <= RANSAC_TOL) >= 0.6 for k in seeds)
    if fit < max(MIN_SEEDS, FIT_SHARE * len(seeds)) or not _keeps_orientation(h, src):
        return None
    return h


def _mutual_best(i: np.ndarray, j: np.ndarray, score: np.ndarray) -> np.ndarray:
    """(P,) bool: pair p has the lowest (finite) score among i[p]'s pairs and among j[p]'s pairs."""
    if not len(i):
        return np.zeros(0, bool)
    n = int(max(i.max(), j.max())) + 1
    best_i, best_j = np.full(n, np.inf), np.full(n, np.inf)
    np.minimum.at(best_i, i, score)
    np.minimum.at(best_j, j, score)
    return np.isfinite(score) & (score <= best_i[i]) & (score <= best_j[j])


def _unambiguous(i: np.ndarray, j: np.ndarray, err: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """(P,) bool: pair p agrees (error <= ``AGREE``) and clearly beats every rival: another pair of i
    (or of j) whose other tracklet is seen at the same time as j (or i) must have an error above
    ``err[p] / RATIO``. Pieces of one person seen one after the other are no rivals: they all agree."""
    ok = err <= AGREE
    idx = np.arange(len(i))
    for p in np.flatnonzero(ok):
        for mine, other in ((i, j), (j, i)):
            rivals = np.flatnonzero((mine == mine[p]) & (idx != p) & (err * RATIO <= err[p]))
            o = other[rivals]
            if np.any((start[o] <= end[other[p]]) & (start[other[p]] <= end[o])):
                ok[p] = False
    return ok


def _agreeing(tracklets, i, j, err, h, dist, start, end, one_to_one: bool = True
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(P,) bool: pair p is one person seen twice (module docstring, step 3), (P,) the strength of that
    evidence (higher first: the longest time matched) and (P,) the share of the times both are seen that
    they are matched to each other."""
    share, seen = matched_share(tracklets, i, j, h, dist)
    if not one_to_one:
        return _unambiguous(i, j, err, start, end), -err, share
    return (err <= AGREE_LOOSE) & (share >= MATCHED) & (seen >= MIN_SHARED), share * seen, share


def overlap_evidence(tracklets: Sequence[Tracklet], cam: np.ndarray, start: np.ndarray, end: np.ndarray,
                     dist: np.ndarray, link_threshold: float, motion: bool = True, one_to_one: bool = True
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
    """(same_i, same_j) pairs that are one person (best first), (same,) bool: those matched at ``SOLID`` of
    their shared times, (K, 2) pairs that are two people, and statistics (module docstring). ``dist``
    (T, T) appearance distances, ``link_threshold`` for the seeds; ``motion``: without appearance seeds,
    seek the model from co-visibility and motion."""
    i, j = candidate_pairs(tracklets, cam, start, end)
    stats = {"overlap_pairs": int(len(i)), "overlap_models": 0, "overlap_motion_models": 0, "overlap_same": 0,
             "overlap_different": 0}
    same, different = [], []
    d = dist[i, j]
    d = np.where(d <= link_threshold, d, np.inf)
    for a, b in np.unique(np.column_stack([cam[i], cam[j]]), axis=0).tolist():
        sel = np.flatnonzero((cam[i] == a) & (cam[j] == b))
        seeds = sel[_mutual_best(i[sel], j[sel], d[sel])]
        seed_geo = geometry(tracklets, i[seeds], j[seeds])
        h = fit_homography(seed_geo, range(len(seed_geo)))
        if h is None and motion:
            from pipeline.association.motion_fit import fit_by_motion

            h = fit_by_motion(tracklets, i[sel], j[sel], dist[i[sel], j[sel]])
            stats["overlap_motion_models"] += int(h is not None)
        if h is None:
            continue
        si, sj, sgeo = i[sel], j[sel], geometry(tracklets, i[sel], j[sel])
        enough = np.array([len(g[0]) >= MIN_SHARED for g in sgeo], bool)
        si, sj, sgeo = si[enough], sj[enough], [g for g, k in zip(sgeo, enough) if k]
        for _ in range(2):                                        # refit with every pair that agrees
            err = np.array([np.median(_errors(h, *g)) for g in sgeo])
            agree = _agreeing(tracklets, si, sj, err, h, dist, start, end, one_to_one)[0]
            refit = fit_homography(sgeo, np.flatnonzero(agree).tolist())
            if refit is None:
                break
            h = refit
        err = np.array([np.median(_errors(h, *g)) for g in sgeo])
        agree, strength, share = _agreeing(tracklets, si, sj, err, h, dist, start, end, one_to_one)
        stats["overlap_models"] += 1
        same += list(zip((-strength[agree]).tolist(), si[agree].tolist(), sj[agree].tolist(),
                         (share[agree] >= SOLID).tolist()))
        different += list(zip(si[err > DISAGREE].tolist(), sj[err > DISAGREE].tolist()))
    stats["overlap_same"], stats["overlap_different"] = len(same), len(different)
    same.sort()
    same_arr = np.array([(a, b) for _, a, b, _ in same], np.int64).reshape(-1, 2)
    solid = np.array([ok for *_, ok in same], bool)
    return same_arr[:, 0], same_arr[:, 1], solid, np.array(different, np.int64).reshape(-1, 2), stats

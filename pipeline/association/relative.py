"""Relative evidence per camera pair: matches that hold whatever the distance between two cameras.

Two real cameras differ in optics, light and colour response, so one person seen by both is farther
apart in appearance than two views of one person inside one camera, by an amount that depends on the
pair. One absolute threshold learnt inside a camera then joins almost nothing across cameras. What does
transfer is the ranking: among the candidates of camera b, the right one is the nearest to a tracklet of
camera a, and clearly nearer than a rival known to be someone else.

For each pair of cameras (a, b), a tracklet i of a and its nearest candidate j of b (no cannot-link) are
matched when

1. they are each other's nearest (mutual nearest neighbours over the cameras' core tracklets),
2. both beat their rivals by a margin: d(i, j) <= ``RATIO`` x the distance from i to the nearest
   tracklet of b that is known to be another person than j (cannot-link with j: seen at the same time
   in b, or placed elsewhere by the floor geometry), and the same from j's side. Fragments of one
   person are no rivals (they are not known to differ), so a person seen in several pieces still
   matches,
3. d(i, j) is within the pair's own threshold: the ``PAIR_QUANTILE`` quantile of the pair's known
   different-people distances (cannot-link pairs across a and b) when it has ``MIN_PAIR_NEGATIVES`` of
   them, else ``fallback`` (the run's middle between its positive and negative medians).

The matches are joined before the clustering, like links (pipeline/association/associate.py).
"""
from __future__ import annotations

import numpy as np

RATIO = 0.8                # a match must beat every known rival by this factor
PAIR_QUANTILE = 0.10       # the pair's threshold: this quantile of its known different-people distances
MIN_PAIR_NEGATIVES = 20    # fewer known negatives: the fallback threshold


def pair_threshold(sub: np.ndarray, sub_cannot: np.ndarray, fallback: float) -> tuple[float, int]:
    """(threshold, negatives used) of one camera pair from its cannot-link distances."""
    neg = sub[sub_cannot & np.isfinite(sub)]
    if len(neg) < MIN_PAIR_NEGATIVES:
        return fallback, int(len(neg))
    return float(np.quantile(neg, PAIR_QUANTILE)), int(len(neg))


def _margins(s: np.ndarray, rivals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(best column per row, distance of its nearest known rival) of a distance block ``s`` (A, B) whose
    columns' cannot-links are ``rivals`` (B, B); rows with no finite distance get -1."""
    best = np.argmin(s, axis=1)
    ok = np.isfinite(s[np.arange(len(s)), best])
    rival = np.where(rivals[best], s, np.inf).min(axis=1)
    return np.where(ok, best, -1), rival


def mutual_matches(sub: np.ndarray, cannot_a: np.ndarray, cannot_b: np.ndarray, thr: float,
                   ratio: float = RATIO) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) of ``sub`` (A, B; inf = impossible) matched by the module's rules, given the
    cannot-links inside camera a (A, A) and inside camera b (B, B)."""
    if sub.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    col, rival_r = _margins(sub, cannot_b)
    row, rival_c = _margins(sub.T, cannot_a)
    r = np.flatnonzero(col >= 0)
    c = col[r]
    d = sub[r, c]
    keep = (row[c] == r) & (d <= thr) & (d <= ratio * rival_r[r]) & (d <= ratio * rival_c[c])
    order = np.argsort(d[keep], kind="stable")
    return r[keep][order], c[keep][order]


def relative_matches(dist: np.ndarray, cannot: np.ndarray, cam: np.ndarray, core: np.ndarray,
                     fallback: float) -> tuple[np.ndarray, np.ndarray, dict]:
    """(i, j) cross-camera matches of the core tracklets, best first, and statistics per camera pair."""
    out_i, out_j, dists, stats = [], [], [], {}
    cams = np.unique(cam[core])
    for x, a in enumerate(cams):
        for b in cams[x + 1:]:
            ia, ib = np.flatnonzero(core & (cam == a)), np.flatnonzero(core & (cam == b))
            sub = dist[np.ix_(ia, ib)].astype(np.float64)
            sub_cannot = cannot[np.ix_(ia, ib)]
            thr, n_neg = pair_threshold(sub, sub_cannot, fallback)
            sub = np.where(sub_cannot, np.inf, sub)
            r, c = mutual_matches(sub, cannot[np.ix_(ia, ia)], cannot[np.ix_(ib, ib)], thr)
            out_i.append(ia[r])
            out_j.append(ib[c])
            dists.append(sub[r, c])
            stats[f"{int(a)}-{int(b)}"] = {"threshold": round(thr, 4), "negatives": n_neg, "matches": int(len(r))}
    if not out_i:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), stats
    i, j, d = np.concatenate(out_i), np.concatenate(out_j), np.concatenate(dists)
    order = np.argsort(d, kind="stable")
    return i[order], j[order], stats

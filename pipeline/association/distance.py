"""Distances between tracklets for cross-camera association: appearance, attributes, fusion.

All functions are pure and vectorised; matrices are (T, T) float32 over T tracklets.
"""
from __future__ import annotations

import logging
from typing import Sequence

import numpy as np

from pipeline.tracklet import Tracklet
from reid.schema import AttributeSchema

log = logging.getLogger(__name__)


def stack_galleries(tracklets: Sequence[Tracklet]) -> tuple[np.ndarray, np.ndarray]:
    """Zero-padded galleries (T, K, D) float32 and weights (T, K) float32 (0 = padding).

    Every tracklet must have features of the same dimension D.
    """
    dims = {t.features.shape[1] for t in tracklets if t.has_features}
    if len(dims) > 1:
        raise ValueError(f"tracklets have features of different sizes {sorted(dims)}; "
                         "embed all cameras with the same ReID model")
    d = dims.pop() if dims else 0
    k = max((t.features.shape[0] for t in tracklets if t.has_features), default=0)
    feats = np.zeros((len(tracklets), k, d), np.float32)
    weights = np.zeros((len(tracklets), k), np.float32)
    for i, t in enumerate(tracklets):
        if not t.has_features:
            continue
        n = t.features.shape[0]
        feats[i, :n] = t.features
        w = t.weights if t.weights.shape[0] == n else np.ones(n, np.float32)
        weights[i, :n] = np.maximum(w, 1e-6)
    return feats, weights


def _l2n(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(n, 1e-12)


def _cosine_distance(mean: np.ndarray) -> np.ndarray:
    """1 - mean @ mean.T clipped to [0, 2], built in one (T, T) float32 array (no temporaries)."""
    mean = mean.astype(np.float32, copy=False)
    d = mean @ mean.T
    np.subtract(np.float32(1.0), d, out=d)
    return np.clip(d, 0.0, 2.0, out=d)


def gallery_means(tracklets: Sequence[Tracklet], normalise_each: bool = False, quality: bool = True
                  ) -> np.ndarray:
    """(T, D) float32 mean feature of each gallery, one tracklet at a time (no (T, K, D) array):
    weighted by crop quality (``quality``) and L2-normalised; with ``normalise_each`` the features
    are normalised first and the mean is not (then <m_i, m_j> is the mean pairwise cosine)."""
    dims = {t.features.shape[1] for t in tracklets}
    if len(dims) > 1:
        raise ValueError(f"tracklets have features of different sizes {sorted(dims)}; "
                         "embed all cameras with the same ReID model")
    out = np.zeros((len(tracklets), dims.pop() if dims else 0), np.float32)
    for i, t in enumerate(tracklets):
        f = t.features.astype(np.float32)
        w = t.weights if quality and t.weights.shape[0] == len(f) else np.ones(len(f), np.float32)
        w = np.maximum(w.astype(np.float32), 1e-6)
        if normalise_each:
            out[i] = (_l2n(f) * w[:, None]).sum(0) / w.sum()
        else:
            out[i] = _l2n((f * w[:, None]).sum(0))
    return out


def mean_feature_distance(feats: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Cosine distance between the L2-normalised weighted mean features; (T, K, D), (T, K) -> (T, T)."""
    return _cosine_distance(_l2n(np.einsum("tkd,tk->td", feats, weights)))          # mean (T, D)


def pairwise_mean_distance(feats: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """1 - weighted mean cosine similarity over all gallery pairs; (T, K, D), (T, K) -> (T, T).

    mean_ab w_a w_b <f_a, f_b> / (sum w_a sum w_b) = <m_i, m_j> with m the (unnormalised)
    weighted mean of the L2-normalised features, so this costs one (T, D) x (D, T) product.
    """
    f = _l2n(feats)
    mean = np.einsum("tkd,tk->td", f, weights) / np.maximum(weights.sum(1, keepdims=True), 1e-12)
    return _cosine_distance(mean)


def topk_distance(feats: np.ndarray, weights: np.ndarray, k: int, chunk: int = 64) -> np.ndarray:
    """1 - mean of the k highest cosine similarities between two galleries; -> (T, T).

    Cost O(T^2 K^2 D): fine for hundreds of tracklets, slower for thousands (use ``mean``).
    """
    t, kk, _ = feats.shape
    f = _l2n(feats)
    valid = weights > 0                                          # (T, K)
    flat = f.reshape(t * kk, -1)                                 # (T*K, D)
    out = np.empty((t, t), np.float32)
    k = max(1, min(k, kk * kk))
    for s in range(0, t, chunk):
        c = f[s:s + chunk]
        sim = (c.reshape(-1, f.shape[2]) @ flat.T).reshape(len(c), kk, t, kk).transpose(0, 2, 1, 3)  # (c, T, K, K)
        mask = valid[s:s + chunk, None, :, None] & valid[None, :, None, :]
        sim = np.where(mask, sim, -np.inf).reshape(sim.shape[0], t, kk * kk)
        top = -np.partition(-sim, k - 1, axis=-1)[..., :k]     # the k largest, unsorted
        finite = np.isfinite(top)
        n = finite.sum(-1)                                       # (c, T) pairs that exist
        best = np.where(finite, top, 0.0).sum(-1) / np.maximum(n, 1)
        out[s:s + chunk] = np.where(n > 0, 1.0 - best, 2.0)
    return np.clip(out, 0.0, 2.0)


APPEARANCE = {"mean": mean_feature_distance, "pairwise_mean": pairwise_mean_distance}


def appearance_distance(feats: np.ndarray, weights: np.ndarray, mode: str = "mean",
                        topk: int = 3) -> np.ndarray:
    """Cosine appearance distance (T, T) between tracklet galleries, by ``mode``."""
    if mode == "topk":
        return topk_distance(feats, weights, topk)
    if mode not in APPEARANCE:
        raise ValueError(f"unknown appearance mode {mode!r}; valid: {', '.join([*APPEARANCE, 'topk'])}")
    return APPEARANCE[mode](feats, weights)


def rerank_distance(dist: np.ndarray, k1: int = 20, k2: int = 6, lambda_value: float = 0.3) -> np.ndarray:
    """k-reciprocal re-ranking (Zhong et al. 2017) of a symmetric (T, T) distance, all vs all."""
    from reid.rerank import k_reciprocal_rerank

    t = dist.shape[0]
    if t < 3:
        return dist
    k1 = min(k1, t - 1)
    k2 = max(1, min(k2, k1))
    d = dist.astype(np.float32) + np.float32(1e-6) * (1 - np.eye(t, dtype=np.float32))  # no all-zero rows
    out = np.asarray(k_reciprocal_rerank(d, d, d, k1=k1, k2=k2, lambda_value=lambda_value), np.float32)
    return (out + out.T) / 2.0


def attribute_groups(names: Sequence[str]) -> list[np.ndarray]:
    """Column indices of each attribute group (see ``AttributeSchema.from_output_names``)."""
    slices = AttributeSchema.from_output_names(names).group_slices()
    return [np.arange(s.start, s.stop, dtype=np.int64) for s in slices]


def attribute_disagreement(probs: np.ndarray, names: Sequence[str], group_weights: np.ndarray | None = None,
                           rows: np.ndarray | None = None) -> np.ndarray:
    """Mean over attribute groups of P(the two tracklets' values differ); (T, A) -> (T, T) in [0, 1]
    (or (len(rows), T) for the given rows). ``group_weights`` (G,) makes it a weighted mean.

    Binary column p: p_i (1 - p_j) + (1 - p_i) p_j. Multi-class group q: 1 - <q_i, q_j>.
    """
    p = np.clip(np.asarray(probs, np.float32), 0.0, 1.0)
    a = p if rows is None else p[rows]
    groups = attribute_groups(names)
    out = np.zeros((a.shape[0], p.shape[0]), np.float32)
    if not groups:
        return out
    w = np.ones(len(groups), np.float32) if group_weights is None else np.asarray(group_weights, np.float32)
    single = [k for k, g in enumerate(groups) if len(g) == 1]
    if single:                                                    # all binary groups in two products
        cols = np.array([groups[k][0] for k in single])
        wb = w[single]
        ab, pb = a[:, cols], p[:, cols]
        out += (ab * wb) @ (1 - pb).T
        out += ((1 - ab) * wb) @ pb.T
    for g, wg in zip(groups, w):
        if len(g) > 1 and wg != 0:
            out += wg * group_disagreement(a[:, g], p[:, g])
    out /= max(float(w.sum()), 1e-12)
    return out


def group_disagreement(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """P(values differ) of one attribute group between rows of a (N, C) and b (M, C) -> (N, M)."""
    if a.shape[1] == 1:
        return a @ (1 - b).T + (1 - a) @ b.T
    qa = a / np.maximum(a.sum(1, keepdims=True), 1e-12)
    qb = b / np.maximum(b.sum(1, keepdims=True), 1e-12)
    return 1.0 - qa @ qb.T


def pair_disagreement(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """P(values differ) of one attribute group between aligned rows a (P, C) and b (P, C) -> (P,)."""
    if a.shape[1] == 1:
        return (a * (1 - b) + (1 - a) * b)[:, 0]
    qa = a / np.maximum(a.sum(1, keepdims=True), 1e-12)
    qb = b / np.maximum(b.sum(1, keepdims=True), 1e-12)
    return 1.0 - (qa * qb).sum(1)


def attribute_reliability(probs: np.ndarray, names: Sequence[str], i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """(G,) weight of each attribute group: its mean disagreement over known different-people pairs
    (i, j), relative to the mean over groups. A group on which different people agree (everyone
    "wears trousers", or a head that always answers the same) says little about identity."""
    p = np.clip(np.asarray(probs, np.float32), 0.0, 1.0)
    groups = attribute_groups(names)
    if not len(i) or not groups:
        return np.ones(len(groups), np.float32)
    dis = np.array([pair_disagreement(p[i][:, g], p[j][:, g]).mean() for g in groups], np.float32)
    return dis / max(float(dis.mean()), 1e-12)


CENTRE_PRIOR = 5          # tracklets: a camera with n of them moves its mean n / (n + CENTRE_PRIOR) of the way


def camera_centre(mean: np.ndarray, cam: np.ndarray) -> np.ndarray:
    """(S, D) tracklet features with each camera's bias removed: a camera's mean feature is moved to the
    mean over all cameras (shrunk for cameras with few tracklets, whose mean is mostly their people),
    then every row is L2-normalised again. A colour cast, another white balance or lens moves every
    feature of one camera the same way; this moves them back, before any distance."""
    mean = _l2n(mean.astype(np.float32))
    if len(np.unique(cam)) < 2:
        return mean
    overall = mean.mean(0)
    out = mean.copy()
    for c in np.unique(cam):
        rows = cam == c
        n = int(rows.sum())
        out[rows] -= (n / (n + CENTRE_PRIOR)) * (mean[rows].mean(0) - overall)
    return _l2n(out)


def camera_normalise(dist: np.ndarray, cam: np.ndarray) -> np.ndarray:
    """Remove each camera pair's bias in place: every (camera a, camera b) block of finite distances is
    shifted so that its median equals the median of all finite distances (most pairs are different
    people, so the median is the level of "two different people" for that pair of views)."""
    t = len(cam)
    off = ~np.eye(t, dtype=bool)
    fin = np.isfinite(dist) & off
    if fin.sum() < 2:
        return dist
    overall = float(np.median(dist[fin]))
    cams = [np.flatnonzero(cam == c) for c in np.unique(cam)]
    for a in cams:
        for b in cams:
            block = dist[np.ix_(a, b)]
            ok = np.isfinite(block) & off[np.ix_(a, b)]
            if ok.sum() >= 10:
                block[ok] = np.maximum(block[ok] - float(np.median(block[ok])) + overall, 0.0)
                dist[np.ix_(a, b)] = block
    return dist


def tracklet_attributes(tracklets: Sequence[Tracklet]) -> tuple[np.ndarray | None, np.ndarray, tuple[str, ...]]:
    """(T, A) attribute probabilities (rows of tracklets without them are 0), (T,) has-attributes
    mask and the attribute names; (None, all False, ()) when no tracklet has attributes."""
    has = np.array([t.attributes is not None and np.size(t.attributes) > 0 for t in tracklets], bool)
    if not has.any():
        return None, has, ()
    names_set = {tuple(t.attribute_names) for t, h in zip(tracklets, has) if h}
    if len(names_set) > 1:
        raise ValueError("tracklets carry different attribute names; embed all cameras with the same model")
    names = names_set.pop()
    a = next(np.size(t.attributes) for t, h in zip(tracklets, has) if h)
    if names and len(names) != a:
        raise ValueError(f"tracklet attributes have {a} values but {len(names)} attribute names")
    if not names:
        names = tuple(f"attr{i}" for i in range(a))
    probs = np.zeros((len(tracklets), a), np.float32)
    for i, (t, h) in enumerate(zip(tracklets, has)):
        if h:
            if np.size(t.attributes) != a:
                raise ValueError(f"tracklet {t.key} has {np.size(t.attributes)} attributes, expected {a}")
            probs[i] = np.asarray(t.attributes, np.float32).reshape(-1)
    return probs, has, names


PAIR_SCALE_POWER = 2.5   # camera_pair_scale: a block above the negatives' level by r is divided by r ** this
PAIR_SCALE_MAX = 1.2     # ... r counted up to this (bench: 1.11 at most; further is another population, not a view)
PAIR_SCALE_Z = 2.0       # ... only where r lies this many standard errors above 1 (the two medians' sampling error)


def median_rse(x: np.ndarray) -> tuple[float, float]:
    """The median of ``x`` and its relative standard error (normal approximation: 1.2533 sigma / sqrt(n),
    sigma from the interquartile range), from one percentile pass."""
    q1, med, q3 = np.percentile(x, [25, 50, 75])
    return float(med), float(1.2533 * (q3 - q1) / 1.349 / np.sqrt(len(x)) / max(med, 1e-12))


def camera_pair_scale(dist: np.ndarray, cam: np.ndarray, negatives: np.ndarray) -> None:
    """Bring each pair of cameras to the distance scale of the run's known different people, in place.

    A camera that blurs, compresses or shrinks its crops moves everyone's features towards a blander
    look: two different people *within* it come closer, one person seen by it and by a sharp camera
    further apart (the two-camera sample at low resolution: one person across the cameras, median 0.37
    against 0.20 unaltered). Thresholds calibrated on within-camera negatives then miss every handoff.
    Most pairs of tracklets across two cameras are different people, so the median of their block is
    that pair's level of "different people"; a block whose median lies above the median of the free
    negatives (``negatives``: their distances) by a ratio r is divided by r ** PAIR_SCALE_POWER. A power
    above 1, because a degraded camera moves one person's two views much further than it moves the level
    of different people (low resolution: r = 1.11, one person's median x 1.9; horizontal motion blur: r =
    1.14, x 2.7); over the 16 footages of bench/mtmc.py the power 1 / 1.5 / 2 gave a mean of +0.6 / +1.0 /
    +1.4, every footage within -0.3; 2.5 then added blur strong +2.2 and motion blur +4.0 with no footage
    of the bench or its check sets lower (30 footages), while 3 cost EPFL with motion blur 1.3 and 3.5
    EPFL with JPEG 5.
    Blocks at or below the level are left as they are, within-camera blocks too, and so are blocks whose r
    lies within ``PAIR_SCALE_Z`` standard errors of 1 (the sampling error of the two medians, from their
    interquartile ranges and sizes): two real cameras of a scene differ a little anyway, and a rescale
    that only follows noise tips decisions the geometry had right (EPFL terrace, r = 1.03 from 165 pairs
    against 81 negatives: 87.3 unscaled, 84.1 scaled; the sample's degraded cameras reach r = 1.07-1.23
    over 500 pairs, 3-5 standard errors). r counts up to
    ``PAIR_SCALE_MAX`` (the bench's camera pairs reach 1.11: a pair much further apart than that is more
    likely to hold other people than a degraded view of the same ones). Needs 10 finite pairs in a block
    and 10 negatives."""
    neg = negatives[np.isfinite(negatives)]
    if len(neg) < 10:
        return
    level, level_rse = median_rse(neg)
    if level <= 0:
        return
    cams = [np.flatnonzero(cam == c) for c in np.unique(cam)]
    for x, a in enumerate(cams):
        for b in cams[x + 1:]:
            block = dist[np.ix_(a, b)]
            fin = np.isfinite(block)
            if fin.sum() < 10:
                continue
            med, rse = median_rse(block[fin])
            ratio = med / level
            if ratio > 1.0 + PAIR_SCALE_Z * float(np.hypot(level_rse, rse)):
                block /= min(ratio, PAIR_SCALE_MAX) ** PAIR_SCALE_POWER
                dist[np.ix_(a, b)] = block
                dist[np.ix_(b, a)] = block.T


def fused_distance(tracklets: Sequence[Tracklet], cfg, cam: np.ndarray | None = None,
                   negatives: tuple[np.ndarray, np.ndarray] | None = None, block: int = 1024) -> np.ndarray:
    """(T, T) float32 appearance distance fused with attribute disagreement per ``cfg``
    (AssociationConfig); rows and columns of tracklets without features are inf.

    ``cam`` (T,) camera index (for ``camera_normalise``), ``negatives`` (i, j) free negative pairs (for
    ``attribute_reliability``). One (T, T) array is built; the rest is done in place or in row blocks.
    """
    has = np.array([t.has_features for t in tracklets], bool)
    idx = np.flatnonzero(has)
    sub = [tracklets[i] for i in idx]
    if cfg.appearance == "topk":
        feats, weights = stack_galleries(sub)                  # (S, K, D): only topk needs every feature
        if not cfg.quality_weights:
            weights = (weights > 0).astype(np.float32)
        d = topk_distance(feats, weights, cfg.topk)
        del feats
    else:
        mean = gallery_means(sub, cfg.appearance == "pairwise_mean", cfg.quality_weights)
        if cfg.camera_centre and cam is not None:
            mean = camera_centre(mean, np.asarray(cam)[idx])
        d = _cosine_distance(mean)
    if cfg.rerank:
        d = rerank_distance(d, cfg.rerank_k1, cfg.rerank_k2, cfg.rerank_lambda)
    probs, has_attr, names = tracklet_attributes(sub)
    if probs is not None and cfg.attribute_weight > 0:
        gw = None
        if cfg.attribute_reliability and negatives is not None:
            i, j = _sub_pairs(negatives, idx, len(tracklets))
            ok = has_attr[i] & has_attr[j]
            gw = attribute_reliability(probs, names, i[ok], j[ok])
        _fuse_attributes(d, probs, names, has_attr, cfg.attribute_weight, gw, block)
    if cfg.camera_normalise and cam is not None:
        camera_normalise(d, np.asarray(cam)[idx])
    if cfg.camera_pair_scale and cam is not None and negatives is not None:
        i, j = _sub_pairs(negatives, idx, len(tracklets))
        camera_pair_scale(d, np.asarray(cam)[idx], d[i, j])
    if len(idx) == len(tracklets):
        return d
    out = np.full((len(tracklets), len(tracklets)), np.inf, np.float32)
    out[np.ix_(idx, idx)] = d
    return out


def _sub_pairs(pairs: tuple[np.ndarray, np.ndarray], idx: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (i, j) of the ``n`` tracklets as positions in ``idx`` (the tracklets with features); pairs with
    a member outside ``idx`` are left out."""
    pos = np.full(n, -1, np.int64)
    pos[idx] = np.arange(len(idx))
    i, j = pos[pairs[0]], pos[pairs[1]]
    ok = (i >= 0) & (j >= 0)
    return i[ok], j[ok]


def _fuse_attributes(d: np.ndarray, probs: np.ndarray, names, has_attr: np.ndarray, weight: float,
                     group_weights: np.ndarray | None, block: int) -> None:
    """d <- (1 - w) d + w * attribute disagreement where both tracklets have attributes (in place)."""
    for r0 in range(0, len(d), block):
        rows = np.arange(r0, min(len(d), r0 + block))
        attr = attribute_disagreement(probs, names, group_weights, rows)          # (b, S)
        both = has_attr[rows, None] & has_attr[None, :]
        d[rows] = np.where(both, (1.0 - weight) * d[rows] + weight * attr, d[rows])

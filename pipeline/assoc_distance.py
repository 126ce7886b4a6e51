"""Distances between tracklets for cross-camera association: appearance, attributes, fusion.

All functions are pure and vectorised; matrices are (T, T) float32 over T tracklets.
"""
from __future__ import annotations

import logging
from typing import Sequence

import numpy as np

from pipeline.tracklet import Tracklet

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


def mean_feature_distance(feats: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Cosine distance between the L2-normalised weighted mean features; (T, K, D), (T, K) -> (T, T)."""
    mean = _l2n(np.einsum("tkd,tk->td", feats, weights))          # (T, D)
    return np.clip(1.0 - mean @ mean.T, 0.0, 2.0).astype(np.float32)


def pairwise_mean_distance(feats: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """1 - weighted mean cosine similarity over all gallery pairs; (T, K, D), (T, K) -> (T, T).

    mean_ab w_a w_b <f_a, f_b> / (sum w_a sum w_b) = <m_i, m_j> with m the (unnormalised)
    weighted mean of the L2-normalised features, so this costs one (T, D) x (D, T) product.
    """
    f = _l2n(feats)
    mean = np.einsum("tkd,tk->td", f, weights) / np.maximum(weights.sum(1, keepdims=True), 1e-12)
    return np.clip(1.0 - mean @ mean.T, 0.0, 2.0).astype(np.float32)


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
    """Column indices of each attribute group: a binary name is its own group; names
    ``group:class`` sharing a prefix form one multi-class group (softmax columns)."""
    groups: dict[str, list[int]] = {}
    for i, n in enumerate(names):
        key = n.split(":", 1)[0] + ":" if ":" in n else n
        groups.setdefault(key, []).append(i)
    return [np.array(v, np.int64) for v in groups.values()]


def attribute_disagreement(probs: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """Mean over attribute groups of P(the two tracklets' values differ); (T, A) -> (T, T) in [0, 1].

    Binary column p: p_i (1 - p_j) + (1 - p_i) p_j. Multi-class group q: 1 - <q_i, q_j>.
    """
    p = np.clip(probs.astype(np.float64), 0.0, 1.0)
    groups = attribute_groups(names)
    if not groups:
        return np.zeros((p.shape[0], p.shape[0]), np.float32)
    binary = np.concatenate([g for g in groups if len(g) == 1]) if any(len(g) == 1 for g in groups) \
        else np.zeros(0, np.int64)
    pb = p[:, binary]                                             # (T, B)
    total = pb @ (1 - pb).T + (1 - pb) @ pb.T                     # (T, T) summed over binary groups
    for g in groups:
        if len(g) > 1:
            q = p[:, g]
            q = q / np.maximum(q.sum(1, keepdims=True), 1e-12)    # (T, C) a distribution
            total += 1.0 - q @ q.T
    return (total / len(groups)).astype(np.float32)


def fuse(app: np.ndarray, attr: np.ndarray | None, has_attr: np.ndarray | None, weight: float) -> np.ndarray:
    """(1 - w) * appearance + w * attributes where both tracklets have attributes, else appearance."""
    if attr is None or weight <= 0:
        return app.astype(np.float32)
    both = has_attr[:, None] & has_attr[None, :]                 # (T, T)
    return np.where(both, (1.0 - weight) * app + weight * attr, app).astype(np.float32)


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

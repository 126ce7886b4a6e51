"""ReID evaluation metrics: CMC / mAP (Market-1501 protocol) and attribute accuracy.

Pure NumPy functions, vectorised over a chunk of queries so that memory stays bounded:

- ``evaluate_rank``: for every query, gallery images of the query's identity taken by the
  query's camera are dropped (the Market-1501 / DukeMTMC protocol), junk gallery images
  (pid -1) are ignored; distractors (pid 0) stay in the gallery as negatives. Queries whose
  identity is absent from the remaining gallery are skipped (as in the official code).
- ``attribute_accuracy``: per-attribute classification accuracy on labelled samples
  (targets -1 are unlabelled and ignored), binary attributes thresholded at 0.5, multi-class
  groups by arg-max within the group's columns; beside it the label-based mean accuracy **mA**
  of the pedestrian-attribute literature (Deng et al., PETA): per attribute the mean of the
  recalls of its classes (binary: (positive recall + negative recall) / 2; multi-class: the mean
  per-class recall, i.e. balanced accuracy), over the classes present in the labels. A constant
  answer scores 0.5 on a binary attribute (1/K on a group with K classes present), whatever the
  class imbalance, while its plain accuracy is the majority share. An attribute whose labels hold
  a single class has no mA (a constant answer would score 0 or 1 there): it is left out of
  ``per_attribute_ma`` and of the mean ``ma``.

All results are fractions in [0, 1]; callers that report percent multiply by 100.
"""
from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger(__name__)

JUNK_PID = -1


def evaluate_rank(distmat: np.ndarray, q_pids, g_pids, q_camids, g_camids, max_rank: int = 50,
                  chunk_size: int = 512) -> tuple[np.ndarray, float]:
    """CMC curve (max_rank,) and mAP of a (Q, G) distance matrix (smaller = more similar).

    Raises ValueError when no query has a valid match in the gallery.
    """
    distmat = np.asarray(distmat, dtype=np.float64)
    q_pids, g_pids = np.asarray(q_pids).ravel(), np.asarray(g_pids).ravel()
    q_camids, g_camids = np.asarray(q_camids).ravel(), np.asarray(g_camids).ravel()
    num_q, num_g = distmat.shape if distmat.ndim == 2 else (-1, -1)
    if distmat.ndim != 2 or len(q_pids) != num_q or len(q_camids) != num_q \
            or len(g_pids) != num_g or len(g_camids) != num_g:
        raise ValueError(f"evaluate_rank: distmat {distmat.shape} does not match "
                         f"{len(q_pids)} query / {len(g_pids)} gallery labels")
    if max_rank < 1:
        raise ValueError(f"evaluate_rank: max_rank must be >= 1, got {max_rank}")
    cmc_sum = np.zeros(max_rank, dtype=np.float64)
    ap_sum, num_valid = 0.0, 0
    for start in range(0, num_q, chunk_size):
        sl = slice(start, start + chunk_size)
        cmc_c, ap_c = _rank_chunk(distmat[sl], q_pids[sl], g_pids, q_camids[sl], g_camids, max_rank)
        cmc_sum += cmc_c.sum(axis=0)
        ap_sum += float(ap_c.sum())
        num_valid += len(ap_c)
    if num_valid == 0:
        raise ValueError("evaluate_rank: no query identity appears in the gallery (from another camera); "
                         "check that query and gallery come from the same data set split")
    if num_valid < num_q:
        log.debug("evaluate_rank: %d of %d queries have no valid gallery match and are skipped",
                  num_q - num_valid, num_q)
    return (cmc_sum / num_valid).astype(np.float32), ap_sum / num_valid


def kept_gallery(q_pid: int, q_camid: int, g_pids: np.ndarray, g_camids: np.ndarray) -> np.ndarray:
    """(G,) bool: gallery images that count for this query (not same id+camera, not junk)."""
    return ~((g_pids == q_pid) & (g_camids == q_camid)) & (g_pids != JUNK_PID)


def _sorted_matches(dist: np.ndarray, q_pids: np.ndarray, g_pids: np.ndarray, q_camids: np.ndarray,
                    g_camids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gallery sorted by distance per query (ties: gallery order): (keep, match), both (q, G) bool."""
    order = np.argsort(dist, axis=1, kind="stable")                       # (q, G)
    gp, gc = g_pids[order], g_camids[order]                                # (q, G) sorted labels
    same_id = gp == q_pids[:, None]                                         # (q, G)
    keep = ~(same_id & (gc == q_camids[:, None])) & (gp != JUNK_PID)        # (q, G)
    return keep, same_id & keep


def first_match_ranks(distmat: np.ndarray, q_pids, g_pids, q_camids, g_camids,
                      chunk_size: int = 256) -> np.ndarray:
    """(Q,) int64 1-based rank of each query's first true match among kept gallery images; 0 when
    the query has no valid match (same ranking rules as ``evaluate_rank``)."""
    distmat = np.asarray(distmat)
    q_pids, g_pids = np.asarray(q_pids).ravel(), np.asarray(g_pids).ravel()
    q_camids, g_camids = np.asarray(q_camids).ravel(), np.asarray(g_camids).ravel()
    out = np.zeros(len(q_pids), np.int64)
    for start in range(0, len(q_pids), chunk_size):
        sl = slice(start, start + chunk_size)
        keep, match = _sorted_matches(distmat[sl], q_pids[sl], g_pids, q_camids[sl], g_camids)
        kept_rank = np.cumsum(keep, axis=1)                                    # (q, G) 1-based
        first = np.where(match.any(axis=1),
                         np.where(match, kept_rank, np.iinfo(np.int64).max).min(axis=1), 0)
        out[sl] = np.where(q_pids[sl] != JUNK_PID, first, 0)
    return out


def _rank_chunk(dist: np.ndarray, q_pids: np.ndarray, g_pids: np.ndarray, q_camids: np.ndarray,
                g_camids: np.ndarray, max_rank: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-query CMC rows (V, max_rank) and APs (V,) for the V valid queries of a chunk."""
    keep, match = _sorted_matches(dist, q_pids, g_pids, q_camids, g_camids)
    valid = match.any(axis=1) & (q_pids != JUNK_PID)                        # (q,)
    keep, match = keep[valid], match[valid]
    if not len(match):
        return np.zeros((0, max_rank)), np.zeros(0)
    kept_rank = np.cumsum(keep, axis=1) - 1                                 # (V, G) rank among kept
    first = np.where(match, kept_rank, np.iinfo(np.int64).max).min(axis=1)  # (V,) rank of 1st hit
    cmc = (first[:, None] <= np.arange(max_rank)[None, :]).astype(np.float64)  # (V, max_rank)
    hits_so_far = np.cumsum(match, axis=1)                                  # (V, G)
    precision = hits_so_far / np.maximum(kept_rank + 1, 1)                  # (V, G)
    ap = (precision * match).sum(axis=1) / match.sum(axis=1)                # (V,)
    return cmc, ap


def balanced_accuracy(pred: np.ndarray, target: np.ndarray) -> float:
    """Mean over the classes present in ``target`` (n,) of the recall of ``pred`` (n,); nan when
    fewer than two classes are present."""
    pred, target = np.asarray(pred), np.asarray(target)
    classes = np.unique(target)
    if len(classes) < 2:
        return float("nan")
    return float(np.mean([np.mean(pred[target == k] == k) for k in classes]))


def attribute_accuracy(probs: np.ndarray, targets: np.ndarray, schema) -> dict:
    """Accuracy and mA of attribute predictions on labelled samples.

    probs (N, num_outputs) probabilities; targets (N, G) int, -1 = unlabelled (ignored).
    Returns {"per_attribute": {name: acc}, "per_attribute_ma": {name: mA}, "counts": {name: n
    labelled}, "mean": mean acc over attributes with at least one label (the paper's overall
    accuracy), "ma": mean mA over the attributes with at least two classes labelled (nan when
    none), "num_samples": N}; all fractions.
    """
    probs = np.asarray(probs)
    targets = np.asarray(targets, dtype=np.int64)
    if probs.shape != (len(targets), schema.num_outputs) or targets.shape[1:] != (schema.num_groups,):
        raise ValueError(f"attribute_accuracy: probs {probs.shape} / targets {targets.shape} do not fit "
                         f"schema {schema.name!r} ({schema.num_outputs} outputs, {schema.num_groups} groups)")
    pred = schema.decode(probs)                                             # (N, G)
    labelled = targets >= 0                                                 # (N, G)
    correct = (pred == targets) & labelled                                  # (N, G)
    counts = labelled.sum(axis=0)                                           # (G,)
    per, per_ma, cnt = {}, {}, {}
    for j, g in enumerate(schema.groups):
        cnt[g.name] = int(counts[j])
        if counts[j]:
            per[g.name] = float(correct[:, j].sum() / counts[j])
            rows = labelled[:, j]
            ma = balanced_accuracy(pred[rows, j], targets[rows, j])
            if not np.isnan(ma):
                per_ma[g.name] = ma
    mean = float(np.mean(list(per.values()))) if per else float("nan")
    ma = float(np.mean(list(per_ma.values()))) if per_ma else float("nan")
    return {"per_attribute": per, "per_attribute_ma": per_ma, "counts": cnt, "mean": mean, "ma": ma,
            "num_samples": int(len(targets))}

"""ReID evaluation metrics: CMC / mAP (Market-1501 protocol) and attribute accuracy.

Pure NumPy functions, vectorised over a chunk of queries so that memory stays bounded:

- ``evaluate_rank``: for every query, gallery images of the query's identity taken by the
  query's camera are dropped (the Market-1501 / DukeMTMC protocol), junk gallery images
  (pid -1) are ignored; distractors (pid 0) stay in the gallery as negatives. Queries whose
  identity is absent from the remaining gallery are skipped (as in the official code).
- ``attribute_accuracy``: per-attribute classification accuracy on labelled samples
  (targets -1 are unlabelled and ignored), binary attributes thresholded at 0.5, multi-class
  groups by arg-max within the group's columns.

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


def _rank_chunk(dist: np.ndarray, q_pids: np.ndarray, g_pids: np.ndarray, q_camids: np.ndarray,
                g_camids: np.ndarray, max_rank: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-query CMC rows (V, max_rank) and APs (V,) for the V valid queries of a chunk."""
    order = np.argsort(dist, axis=1, kind="stable")                       # (q, G)
    gp, gc = g_pids[order], g_camids[order]                                # (q, G) sorted labels
    same_id = gp == q_pids[:, None]                                         # (q, G)
    keep = ~(same_id & (gc == q_camids[:, None])) & (gp != JUNK_PID)        # (q, G)
    match = same_id & keep                                                  # (q, G)
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


def group_columns(schema) -> list[np.ndarray]:
    """Output column indices of each attribute group, found through ``schema.output_names``."""
    names = list(schema.output_names)
    index = {n: i for i, n in enumerate(names)}
    cols = []
    for g in schema.groups:
        wanted = [g.name] if not g.classes else [f"{g.name}:{c}" for c in g.classes]
        missing = [w for w in wanted if w not in index]
        if missing:
            raise ValueError(f"attribute schema {schema.name!r}: output column(s) {missing} not found")
        cols.append(np.array([index[w] for w in wanted], dtype=np.int64))
    return cols


def predict_attributes(probs: np.ndarray, schema) -> np.ndarray:
    """Predicted label per group (N, G): binary prob >= 0.5 -> 1, multi-class -> arg-max class."""
    probs = np.asarray(probs, dtype=np.float64)
    out = np.zeros((len(probs), schema.num_groups), dtype=np.int64)
    for j, (g, cols) in enumerate(zip(schema.groups, group_columns(schema))):
        if g.classes:
            out[:, j] = probs[:, cols].argmax(axis=1)
        else:
            out[:, j] = probs[:, cols[0]] >= 0.5
    return out


def attribute_accuracy(probs: np.ndarray, targets: np.ndarray, schema) -> dict:
    """Accuracy of attribute predictions on labelled samples.

    probs (N, num_outputs) probabilities; targets (N, G) int, -1 = unlabelled (ignored).
    Returns {"per_attribute": {name: acc}, "counts": {name: n labelled}, "mean": mean acc over
    attributes with at least one label (the paper's overall accuracy), "num_samples": N}.
    """
    probs = np.asarray(probs)
    targets = np.asarray(targets, dtype=np.int64)
    if probs.shape != (len(targets), schema.num_outputs) or targets.shape[1:] != (schema.num_groups,):
        raise ValueError(f"attribute_accuracy: probs {probs.shape} / targets {targets.shape} do not fit "
                         f"schema {schema.name!r} ({schema.num_outputs} outputs, {schema.num_groups} groups)")
    pred = predict_attributes(probs, schema)                                # (N, G)
    labelled = targets >= 0                                                 # (N, G)
    correct = (pred == targets) & labelled                                  # (N, G)
    counts = labelled.sum(axis=0)                                           # (G,)
    per, cnt = {}, {}
    for j, g in enumerate(schema.groups):
        cnt[g.name] = int(counts[j])
        if counts[j]:
            per[g.name] = float(correct[:, j].sum() / counts[j])
    mean = float(np.mean(list(per.values()))) if per else float("nan")
    return {"per_attribute": per, "counts": cnt, "mean": mean, "num_samples": int(len(targets))}

"""Single-camera MOT metrics: CLEAR-MOT and identity metrics through motmetrics 1.4.0, HOTA here.

``evaluate_mot(gt, pred)`` takes two MOTChallenge arrays (N, 10) (see ``pipeline.formats.mot``) and
returns a flat dict: HOTA, DetA, AssA, DetRe, DetPr, AssRe, AssPr, LocA, MOTA, MOTP, IDF1, IDP,
IDR, Recall, Precision (percent) and counts (num_switches, num_false_positives, num_misses,
num_fragmentations, mostly_tracked, partially_tracked, mostly_lost, num_unique_objects, ...).

motmetrics 1.4.0 has no HOTA, so :func:`hota` implements Luiten et al. (IJCV 2021) as TrackEval
does: per frame a Hungarian matching on IoU weighted by the global alignment score, 19 alpha
thresholds 0.05..0.95, scores averaged over alpha. motmetrics 1.4.0 calls ``np.asfarray``
(removed in NumPy 2): :func:`_motmetrics` installs a shim visible to motmetrics only.
"""
from __future__ import annotations

import types
from typing import Iterator, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from core.boxes import iou_matrix_xywh
from core.frames import frame_slices

ALPHAS = np.arange(0.05, 0.99, 0.05)  # (19,) HOTA localisation thresholds
DISTRACTOR_CLASSES = (2, 7, 8, 12)    # MOT16/17: person on vehicle, static person, distractor, reflection
PEDESTRIAN = 1
_EPS = np.finfo(np.float64).eps
_MM_METRICS = ("idf1", "idp", "idr", "recall", "precision", "num_unique_objects", "mostly_tracked",
               "partially_tracked", "mostly_lost", "num_false_positives", "num_misses", "num_switches",
               "num_fragmentations", "mota", "motp", "num_frames")
_PERCENT = {"idf1": "IDF1", "idp": "IDP", "idr": "IDR", "recall": "Recall", "precision": "Precision",
            "mota": "MOTA"}


def _motmetrics():
    """Import motmetrics with ``np.asfarray`` restored for its modules only (NumPy 2 removed it)."""
    import motmetrics as mm

    if not hasattr(np, "asfarray") and not hasattr(mm.distances.np, "asfarray"):
        shim = types.ModuleType("numpy_asfarray_shim")
        shim.__getattr__ = lambda name: getattr(np, name)  # module-level __getattr__ (PEP 562)
        shim.asfarray = lambda a, dtype=np.float64: np.asarray(a, dtype=dtype)
        mm.distances.np = shim
    return mm






def _sorted(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float64).reshape(-1, np.shape(rows)[-1] if np.size(rows) else 10)
    return rows[np.argsort(rows[:, 0], kind="stable")]


def is_mot16_gt(gt: np.ndarray) -> bool:
    """True when column 8 holds MOT16/17 class ids (1..12) and column 9 visibilities in [0, 1]."""
    if len(gt) == 0 or gt.shape[1] < 9:
        return False
    cls, vis = gt[:, 7], gt[:, 8]
    return bool(np.all(cls == np.round(cls)) and np.all((cls >= 1) & (cls <= 12))
                and np.all((vis >= 0) & (vis <= 1)))


def preprocess(gt: np.ndarray, pred: np.ndarray, iou: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """MOTChallenge rules (as TrackEval): drop predictions matched to MOT16/17 distractor classes,
    then keep only ground truth with conf != 0 (and class pedestrian for MOT16/17) -> (gt, pred)."""
    gt, pred = _sorted(gt), _sorted(pred)
    if not is_mot16_gt(gt):
        return gt[gt[:, 6] != 0], pred
    keep_pred = np.ones(len(pred), dtype=bool)
    pslices = frame_slices(pred[:, 0])
    for frame, gs in frame_slices(gt[:, 0]).items():
        ps = pslices.get(frame)
        if ps is None:
            continue
        sim = iou_matrix_xywh(gt[gs, 2:6], pred[ps, 2:6])                      # (g, p)
        rows, cols = linear_sum_assignment(-np.where(sim >= iou - _EPS, sim, 0))
        ok = sim[rows, cols] >= iou - _EPS
        distractor = np.isin(gt[gs, 7][rows[ok]], DISTRACTOR_CLASSES)
        keep_pred[np.arange(ps.start, ps.stop)[cols[ok][distractor]]] = False
    gt_keep = (gt[:, 6] != 0) & (gt[:, 7] == PEDESTRIAN)
    return gt[gt_keep], pred[keep_pred]


def iter_frames(gt: np.ndarray, pred: np.ndarray) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """Yield (frame, gt_ids (g,), pred_ids (p,), IoU (g, p)) for every frame of gt or pred, in order."""
    gslices, pslices = frame_slices(gt[:, 0]), frame_slices(pred[:, 0])
    empty = slice(0, 0)
    for frame in sorted(set(gslices) | set(pslices)):
        g, p = gt[gslices.get(frame, empty)], pred[pslices.get(frame, empty)]
        yield frame, g[:, 1].astype(np.int64), p[:, 1].astype(np.int64), iou_matrix_xywh(g[:, 2:6], p[:, 2:6])


def hota(frames: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> dict:
    """HOTA (Luiten et al. 2021) from per-frame (gt_ids (g,), pred_ids (p,), similarity (g, p)).

    Returns fractions in [0, 1]: HOTA, DetA, AssA, DetRe, DetPr, AssRe, AssPr, LocA (means over
    the 19 alphas) and HOTA(0), LocA(0); plus arrays per alpha under key "per_alpha".
    """
    gt_uni = np.unique(np.concatenate([f[0] for f in frames] + [np.zeros(0, np.int64)]))
    pr_uni = np.unique(np.concatenate([f[1] for f in frames] + [np.zeros(0, np.int64)]))
    frames = [(np.searchsorted(gt_uni, g), np.searchsorted(pr_uni, p), np.asarray(s, np.float64))
              for g, p, s in frames]
    n_g, n_p, n_a = len(gt_uni), len(pr_uni), len(ALPHAS)
    potential = np.zeros((n_g, n_p))
    gt_count, pr_count = np.zeros((n_g, 1)), np.zeros((1, n_p))
    for g, p, sim in frames:  # soft co-occurrence of ids, weighted by per-frame IoU-of-similarity
        denom = sim.sum(0, keepdims=True) + sim.sum(1, keepdims=True) - sim
        sim_iou = np.where(denom > _EPS, sim / np.where(denom > _EPS, denom, 1.0), 0.0)
        potential[g[:, None], p[None, :]] += sim_iou
        gt_count[g, 0] += 1
        pr_count[0, p] += 1
    global_score = potential / np.maximum(gt_count + pr_count - potential, _EPS)  # (G, P)
    tp, fn, fp, loc = np.zeros(n_a), np.zeros(n_a), np.zeros(n_a), np.zeros(n_a)
    matches = np.zeros((n_a, n_g, n_p))
    for g, p, sim in frames:
        if len(g) == 0 or len(p) == 0:
            fn += len(g)
            fp += len(p)
            continue
        rows, cols = linear_sum_assignment(-(global_score[g[:, None], p[None, :]] * sim))
        msim = sim[rows, cols]                                            # (K,)
        ok = msim[None, :] >= ALPHAS[:, None] - _EPS                      # (A, K)
        n_ok = ok.sum(1)
        tp += n_ok
        fn += len(g) - n_ok
        fp += len(p) - n_ok
        loc += (ok * msim[None, :]).sum(1)
        a_idx, k_idx = np.nonzero(ok)
        np.add.at(matches, (a_idx, g[rows[k_idx]], p[cols[k_idx]]), 1)
    ass_a = matches / np.maximum(1, gt_count + pr_count - matches)       # (A, G, P)
    tp_safe = np.maximum(1, tp)
    res = {"AssA": (matches * ass_a).sum((1, 2)) / tp_safe,
           "AssRe": (matches * matches / np.maximum(1, gt_count)).sum((1, 2)) / tp_safe,
           "AssPr": (matches * matches / np.maximum(1, pr_count)).sum((1, 2)) / tp_safe,
           "DetRe": tp / np.maximum(1, tp + fn), "DetPr": tp / np.maximum(1, tp + fp),
           "DetA": tp / np.maximum(1, tp + fn + fp),
           "LocA": np.maximum(1e-10, loc) / np.maximum(1e-10, tp)}
    res["HOTA"] = np.sqrt(res["DetA"] * res["AssA"])
    out = {k: float(v.mean()) for k, v in res.items()}
    out["HOTA(0)"], out["LocA(0)"] = float(res["HOTA"][0]), float(res["LocA"][0])
    out["per_alpha"] = {k: v.tolist() for k, v in res.items()}
    return out


def clear_metrics(frames: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]], iou: float = 0.5) -> dict:
    """CLEAR-MOT / identity metrics via motmetrics from per-frame (gt_ids, pred_ids, IoU)."""
    mm = _motmetrics()
    acc = mm.MOTAccumulator(auto_id=True)
    for g, p, sim in frames:
        dist = 1.0 - sim
        acc.update(g, p, np.where(dist > 1.0 - iou, np.nan, dist))
    res = mm.metrics.create().compute(acc, metrics=list(_MM_METRICS), return_dataframe=False)
    out = {}
    for key in _MM_METRICS:
        value = float(res[key])
        if key in _PERCENT:
            out[_PERCENT[key]] = 100.0 * value
        elif key == "motp":  # motmetrics: mean 1-IoU distance; MOTChallenge reports mean IoU
            out["MOTP"] = 100.0 * (1.0 - value) if np.isfinite(value) else float("nan")
        else:
            out[key] = int(value) if np.isfinite(value) else 0
    return out


def evaluate_mot(gt: np.ndarray, pred: np.ndarray, iou: float = 0.5) -> dict:
    """Score predicted MOT rows (M, 10) against ground truth (N, 10) -> flat dict (percent for ratios).

    Keys: HOTA, DetA, AssA, DetRe, DetPr, AssRe, AssPr, LocA, MOTA, MOTP, IDF1, IDP, IDR, Recall,
    Precision, num_switches, num_false_positives, num_misses, num_fragmentations, mostly_tracked,
    partially_tracked, mostly_lost, num_unique_objects, num_frames, num_gt, num_pred.
    """
    gt, pred = preprocess(gt, pred, iou)
    frames = [(g, p, s) for _, g, p, s in iter_frames(gt, pred)]
    out = {k: 100.0 * v for k, v in hota(frames).items() if k != "per_alpha"}
    out.update(clear_metrics(frames, iou))
    out["num_gt"], out["num_pred"] = int(len(gt)), int(len(pred))
    return out

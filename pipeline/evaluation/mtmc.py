"""Cross-camera tracking metrics: multi-camera IDF1/IDP/IDR and identity-level handoff counts.

Inputs are AI City rows (N, 9): ``camera_id obj_id frame_id xmin ymin width height xw yw``
with GLOBAL ids (see :mod:`pipeline.formats.aicity`).

Multi-camera IDF1 follows the AI City Challenge definition (Ristani et al. 2016 applied to
all cameras at once): a ground-truth box and a predicted box can match only in the same
camera and frame with IoU >= 0.5; then ONE bipartite assignment between true and predicted
identities is made over all cameras, maximising the matched box count (IDTP). A person
who keeps one id in camera A but gets a new id in camera B loses B's boxes, even though
each single-camera IDF1 is perfect.

Handoffs: a true handoff is a ground-truth identity leaving camera A and next appearing in
camera B (consecutive visits, by start frame, of the same id in different cameras). It is
*correct* when the predicted id at the end of the visit in A (majority over the last
``window`` frames) equals the predicted id at the start of the visit in B, else *missed*.
A predicted handoff (same for predicted ids) is *wrong* when it links visits of different
(or no) true identities.
"""
from __future__ import annotations

import logging
from typing import Mapping

import numpy as np
from scipy.optimize import linear_sum_assignment

from core.boxes import iou_pairs_xywh

log = logging.getLogger(__name__)

CAM, ID, FRAME = 0, 1, 2  # AI City columns; boxes are columns 3:7 (x, y, w, h)




def camera_frame_keys(rows: np.ndarray) -> np.ndarray:
    """(N, 9) -> (N,) int64 key unique per (camera, frame)."""
    return rows[:, CAM].astype(np.int64) * (1 << 32) + rows[:, FRAME].astype(np.int64)


def same_key_pairs(ka: np.ndarray, kb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All index pairs (i, j) with ka[i] == kb[j]; ka (N,), kb (M,) -> ia (P,), ib (P,)."""
    order = np.argsort(kb, kind="stable")
    kb_sorted = kb[order]
    lo = np.searchsorted(kb_sorted, ka, "left")
    hi = np.searchsorted(kb_sorted, ka, "right")
    cnt = hi - lo                                              # (N,) candidates per row of a
    ia = np.repeat(np.arange(len(ka)), cnt)                    # (P,)
    offs = np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    ib = order[np.repeat(lo, cnt) + offs]                      # (P,)
    return ia, ib


def match_boxes(gt: np.ndarray, pred: np.ndarray, iou: float = 0.5):
    """Box pairs in the same camera-frame with IoU >= ``iou``.

    Returns (ig (P,), ip (P,), ious (P,)) row indices into gt and pred. The threshold test
    is motmetrics' ``1 - IoU <= 1 - iou``, so results agree with it at the boundary.
    """
    ig, ip = same_key_pairs(camera_frame_keys(gt), camera_frame_keys(pred))
    ious = iou_pairs_xywh(gt[ig, 3:7], pred[ip, 3:7])
    keep = (1.0 - ious) <= (1.0 - iou)
    return ig[keep], ip[keep], ious[keep]


def identity_counts(gt_ids: np.ndarray, pred_ids: np.ndarray, ig: np.ndarray, ip: np.ndarray):
    """Co-occurrence matrix of matched boxes: (I,) true ids x (J,) predicted ids -> (I, J) int64."""
    ug, gi = np.unique(gt_ids, return_inverse=True)
    up, pj = np.unique(pred_ids, return_inverse=True)
    counts = np.zeros((len(ug), len(up)), np.int64)
    np.add.at(counts, (gi[ig], pj[ip]), 1)
    return ug, up, counts


def id_scores(counts: np.ndarray, n_gt: int, n_pred: int) -> dict:
    """IDF1/IDP/IDR (percent) from the (I, J) co-occurrence counts and the box totals."""
    if counts.size:
        r, c = linear_sum_assignment(counts, maximize=True)
        idtp = int(counts[r, c].sum())
    else:
        idtp = 0
    idfn, idfp = n_gt - idtp, n_pred - idtp
    pct = lambda num, den: 100.0 * num / den if den else 0.0  # noqa: E731
    return {"IDF1": pct(2 * idtp, n_gt + n_pred), "IDP": pct(idtp, n_pred), "IDR": pct(idtp, n_gt),
            "IDTP": idtp, "IDFP": idfp, "IDFN": idfn}


def best_match_per_row(n_rows: int, rows_idx: np.ndarray, other_ids: np.ndarray, ious: np.ndarray):
    """For each of n_rows boxes, the id of its highest-IoU matched partner, else -1; (n_rows,)."""
    out = np.full(n_rows, -1, np.int64)
    if len(rows_idx):
        order = np.lexsort((-ious, rows_idx))                  # by row, best IoU first
        first = np.unique(rows_idx[order], return_index=True)[1]
        out[rows_idx[order][first]] = other_ids[order][first]
    return out


def visits(rows: np.ndarray, max_gap: int) -> tuple[np.ndarray, np.ndarray]:
    """Split each id's boxes into per-camera visits (runs with frame gaps <= max_gap).

    rows (N, 9) -> (visit index per row (N,), visit table (V, 4): id, camera, start, end).
    """
    if len(rows) == 0:
        return np.zeros(0, np.int64), np.zeros((0, 4), np.int64)
    order = np.lexsort((rows[:, FRAME], rows[:, CAM], rows[:, ID]))
    r = rows[order][:, [ID, CAM, FRAME]].astype(np.int64)     # (N, 3) sorted
    new = np.ones(len(r), bool)
    new[1:] = (np.diff(r[:, 0]) != 0) | (np.diff(r[:, 1]) != 0) | (np.diff(r[:, 2]) > max_gap)
    first = np.flatnonzero(new)
    seg_sorted = np.cumsum(new) - 1
    seg = np.empty(len(r), np.int64)
    seg[order] = seg_sorted
    table = np.stack([r[first, 0], r[first, 1], r[first, 2], np.maximum.reduceat(r[:, 2], first)], 1)
    return seg, table


def majority(groups: np.ndarray, labels: np.ndarray, n_groups: int) -> np.ndarray:
    """Most frequent label >= 0 per group (ties: smallest label), -1 if none; (n_groups,)."""
    out = np.full(n_groups, -1, np.int64)
    ok = labels >= 0
    if not ok.any():
        return out
    pairs, counts = np.unique(np.stack([groups[ok], labels[ok]], 1), axis=0, return_counts=True)
    order = np.lexsort((pairs[:, 1], -counts, pairs[:, 0]))
    g = pairs[order, 0]
    first = np.unique(g, return_index=True)[1]
    out[g[first]] = pairs[order][first, 1]
    return out


def handoff_links(rows: np.ndarray, partner: np.ndarray, max_gap: int, window: int):
    """Camera-to-camera transitions of each id and the partner ids at each end.

    rows (N, 9), partner (N,) matched id of the other side per box (-1 none).
    Returns (exit_partner (H,), entry_partner (H,)) for the H handoffs.
    """
    seg, table = visits(rows, max_gap)
    if len(table) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    frame = rows[:, FRAME].astype(np.int64)
    at_exit = frame > table[seg, 3] - window
    at_entry = frame < table[seg, 2] + window
    exit_id = majority(seg[at_exit], partner[at_exit], len(table))      # (V,)
    entry_id = majority(seg[at_entry], partner[at_entry], len(table))   # (V,)
    order = np.lexsort((table[:, 3], table[:, 2], table[:, 0]))         # by id, then start
    t = table[order]
    nxt = (t[1:, 0] == t[:-1, 0]) & (t[1:, 1] != t[:-1, 1])              # same id, other camera
    a, b = order[:-1][nxt], order[1:][nxt]
    return exit_id[a], entry_id[b]


def identity_summary(gt: np.ndarray, pred: np.ndarray) -> dict:
    """Numbers of true / predicted identities, and of those seen in more than one camera."""
    def multicam(rows):
        if len(rows) == 0:
            return 0
        pairs = np.unique(rows[:, [ID, CAM]], axis=0)
        return int((np.unique(pairs[:, 0], return_counts=True)[1] > 1).sum())
    return {"true_ids": int(len(np.unique(gt[:, ID]))), "pred_ids": int(len(np.unique(pred[:, ID]))),
            "true_multicam_ids": multicam(gt), "pred_multicam_ids": multicam(pred)}


def evaluate_mtmc(gt: np.ndarray, pred: np.ndarray, iou: float = 0.5, max_gap: int = 10,
                  window: int = 10) -> dict:
    """Cross-camera metrics of predicted AI City rows against ground truth (both (N, 9)).

    ``max_gap``: frames without a box after which a return to the same camera is a new
    visit; ``window``: frames at each end of a visit used to read the id at a handoff.
    Returns IDF1/IDP/IDR (percent), IDTP/IDFP/IDFN, identity counts and handoff counts.
    """
    gt = np.asarray(gt, np.float64).reshape(-1, 9)
    pred = np.asarray(pred, np.float64).reshape(-1, 9)
    ig, ip, ious = match_boxes(gt, pred, iou)
    gt_ids, pred_ids = gt[:, ID].astype(np.int64), pred[:, ID].astype(np.int64)
    _, _, counts = identity_counts(gt_ids, pred_ids, ig, ip)
    out = id_scores(counts, len(gt), len(pred))
    out.update(identity_summary(gt, pred))

    gt_partner = best_match_per_row(len(gt), ig, pred_ids[ip], ious)      # (N,) pred id per gt box
    pred_partner = best_match_per_row(len(pred), ip, gt_ids[ig], ious)    # (M,) gt id per pred box
    ex, en = handoff_links(gt, gt_partner, max_gap, window)
    correct = int(((ex == en) & (ex >= 0)).sum())
    pex, pen = handoff_links(pred, pred_partner, max_gap, window)
    wrong = int(((pex != pen) | (pex < 0)).sum())
    out.update({"handoffs_true": len(ex), "handoffs_correct": correct, "handoffs_missed": len(ex) - correct,
                "handoffs_pred": len(pex), "handoffs_wrong": wrong,
                "handoff_recall": 100.0 * correct / len(ex) if len(ex) else 0.0,
                "handoff_precision": 100.0 * (len(pex) - wrong) / len(pex) if len(pex) else 0.0})
    return out


def per_camera_idf1(gt: np.ndarray, pred: np.ndarray, iou: float = 0.5) -> dict[int, float]:
    """Single-camera IDF1 (percent) of each camera id present in gt: the baseline that ignores handoffs."""
    out = {}
    for cam in np.unique(gt[:, CAM]).astype(int):
        g, p = gt[gt[:, CAM] == cam], pred[pred[:, CAM] == cam]
        ig, ip, _ = match_boxes(g, p, iou)
        _, _, counts = identity_counts(g[:, ID].astype(np.int64), p[:, ID].astype(np.int64), ig, ip)
        out[int(cam)] = id_scores(counts, len(g), len(p))["IDF1"]
    return out


def evaluate_multicam(gt_cams: Mapping[str, np.ndarray], pred_cams: Mapping[str, np.ndarray],
                      mapping: Mapping[str, str], iou: float = 0.5) -> dict:
    """Cross-camera metrics from per-camera MOT rows {camera: (n, 10)}; ``mapping`` gt -> pred camera.

    Each camera is first cleaned by the single-camera rules (``pipeline.evaluation.mot.preprocess``: ignore
    rows of the ground truth dropped), so both scorings see the same boxes.
    """
    from pipeline.evaluation.mot import preprocess
    from pipeline.formats.aicity import mot_to_mtmc

    order = list(mapping)
    gt_rows, pred_rows = {}, {}
    for g, p in mapping.items():
        gt_rows[g], pred_rows[g] = preprocess(gt_cams[g], pred_cams.get(p, np.zeros((0, 10))), iou)
    return evaluate_mtmc(mot_to_mtmc(gt_rows, order), mot_to_mtmc(pred_rows, order), iou)


def format_multicam(section: dict) -> str:
    """Plain-text table of the cross-camera metrics for the CLI and the benchmark."""
    m = section["metrics"]
    cams = ", ".join(g if g == p else f"{g}={p}" for g, p in section["cameras"].items())
    lines = [f"cross-camera ({len(section['cameras'])} cameras: {cams})",
             f"  IDF1 {m['IDF1']:6.2f}   IDP {m['IDP']:6.2f}   IDR {m['IDR']:6.2f}   "
             f"(IDTP {m['IDTP']}, IDFP {m['IDFP']}, IDFN {m['IDFN']})",
             f"  identities: true {m['true_ids']} ({m['true_multicam_ids']} in several cameras), "
             f"predicted {m['pred_ids']} ({m['pred_multicam_ids']} in several cameras)",
             f"  handoffs: true {m['handoffs_true']}, correct {m['handoffs_correct']}, "
             f"missed {m['handoffs_missed']}; predicted {m['handoffs_pred']}, wrong {m['handoffs_wrong']}"]
    return "\n".join(lines)

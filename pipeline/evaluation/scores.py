"""``mcmt eval``'s scoring of a prediction against ground truth, whatever their layouts: per sequence
(camera) HOTA / CLEAR-MOT / IDF1, all sequences combined, and the cross-camera section when the
ground truth has several cameras. Each file is read once (``layout.load_tracks``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.evaluation.layout import load_tracks, pair_sequences
from pipeline.evaluation.mot import evaluate_mot
from pipeline.evaluation.mtmc import evaluate_multicam


def evaluate_folders(pred: str | Path, gt: str | Path, iou: float = 0.5) -> dict:
    """{"sequences": {seq: metrics}, "combined": metrics, "iou", "files"} plus "multi_camera"
    ({"cameras": {gt: pred camera}, "metrics": ...}) when the ground truth has two cameras or more."""
    gt_names, gt_rows = load_tracks(gt)
    pred_names, pred_rows = load_tracks(pred)
    mapping = pair_sequences(gt_names, pred_names)
    per_seq = {g: evaluate_mot(gt_rows[g], pred_rows[p], iou=iou) for g, p in mapping.items()}
    combined = per_seq[next(iter(per_seq))] if len(per_seq) == 1 else evaluate_mot(
        *rows_end_to_end([gt_rows[g] for g in mapping], [pred_rows[p] for p in mapping.values()]), iou=iou)
    out = {"sequences": per_seq, "combined": combined, "iou": iou,
           "files": {"pred": str(pred), "gt": str(gt)}}
    if len(gt_names) >= 2:
        out["multi_camera"] = {"cameras": dict(mapping),
                               "metrics": evaluate_multicam(gt_rows, pred_rows, mapping, iou)}
    return out


def rows_end_to_end(gts: list[np.ndarray], preds: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate per-sequence MOT rows (n, 10) with frames and ids shifted to be disjoint."""
    out_g, out_p, f_off, i_off = [], [], 0.0, 0.0
    for g, p in zip(gts, preds):
        for rows, out in ((g, out_g), (p, out_p)):
            shifted = rows.copy()
            shifted[:, 0] += f_off
            shifted[:, 1] += i_off
            out.append(shifted)
        f_off += max(g[:, 0].max(initial=0), p[:, 0].max(initial=0))
        i_off += max(g[:, 1].max(initial=0), p[:, 1].max(initial=0))
    return np.concatenate(out_g), np.concatenate(out_p)

"""Score tracking output against ground truth (per sequence HOTA, MOTA, IDF1 and their parts).

--pred: a MOTChallenge file, a folder of <seq>.txt files, or an `mcmt run` folder (its mot/).
--gt:   a MOTChallenge file, a folder of <seq>.txt files, a TrackEval/MOTChallenge folder with
        <seq>/gt/gt.txt, or one sequence folder with gt/gt.txt.
Sequences are paired by name; "COMBINED" scores all of them together.
With a multi-camera ground truth (several <camera>/gt/gt.txt, or an AI City mtmc.txt) it also
prints cross-camera scores: multi-camera IDF1/IDP/IDR (AI City definition) and handoffs
(pipeline/mtmc_eval.py); AI City files are accepted on either side.

Examples:
  mcmt eval --pred runs/x --gt data/MOT17/train
  mcmt eval --pred tracks.txt --gt ../shared/data/pets09-s2l1 --json scores.json
  mcmt eval --pred runs/pets --gt samples/gt
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from pipeline.atomic import atomic_write_json
from pipeline.errors import UserError
from pipeline.mot_eval import evaluate_mot
from pipeline.mot_io import read_mot

log = logging.getLogger(__name__)

TABLE = (("HOTA", "HOTA", ".2f"), ("DetA", "DetA", ".2f"), ("AssA", "AssA", ".2f"), ("MOTA", "MOTA", ".2f"),
         ("MOTP", "MOTP", ".2f"), ("IDF1", "IDF1", ".2f"), ("IDP", "IDP", ".2f"), ("IDR", "IDR", ".2f"),
         ("IDsw", "num_switches", "d"), ("FP", "num_false_positives", "d"), ("FN", "num_misses", "d"),
         ("MT", "mostly_tracked", "d"), ("ML", "mostly_lost", "d"))


def add_arguments(p):
    p.add_argument("--pred", required=True, metavar="PATH", help="run folder, folder of <seq>.txt or MOT file")
    p.add_argument("--gt", required=True, metavar="PATH", help="ground-truth folder or MOTChallenge file")
    p.add_argument("--iou", type=float, default=0.5, help="IoU threshold for CLEAR-MOT / IDF1 (default 0.5)")
    p.add_argument("--json", metavar="FILE", help="also write all numbers to this JSON file")


def main(args) -> int:
    from pipeline.mtmc_eval import evaluate_paths, format_multicam, per_camera_results
    from pipeline.mtmc_io import is_mtmc_input

    multi = evaluate_paths(args.pred, args.gt, iou=args.iou)  # cross-camera section (E); None: one camera
    if multi is not None and (is_mtmc_input(args.pred) or is_mtmc_input(args.gt)):
        results = per_camera_results(args.pred, args.gt, iou=args.iou)  # AI City file(s): split per camera
    else:
        results = evaluate_folders(args.pred, args.gt, iou=args.iou)
    print(format_table(results))
    if multi is not None:
        print("\n" + format_multicam(multi))
        results["multi_camera"] = multi
    if args.json:
        write_json(args.json, results)
        log.info("wrote %s", args.json)
    return 0


def gt_sequences(gt: str | Path) -> dict[str, Path]:
    """Ground-truth files by sequence name for any supported layout."""
    gt = Path(gt)
    if gt.is_file():
        return {gt.stem if gt.name != "gt.txt" else gt.parent.parent.name: gt}
    if not gt.is_dir():
        raise UserError(f"--gt {gt}: no such file or folder")
    if (gt / "gt" / "gt.txt").is_file():                                  # one sequence folder
        return {gt.name: gt / "gt" / "gt.txt"}
    found = {p.parent.parent.name: p for p in sorted(gt.glob("*/gt/gt.txt"))}  # TrackEval / MOT layout
    found.update({p.stem: p for p in sorted(gt.glob("*.txt")) if p.stem not in found and "mtmc" not in p.stem})
    if not found:
        raise UserError(f"--gt {gt}: no ground truth found; expected <seq>/gt/gt.txt, <seq>.txt or gt/gt.txt")
    return found


def pred_sequences(pred: str | Path) -> dict[str, Path]:
    """Prediction files by sequence name: a file, a folder of <seq>.txt or a run folder (mot/)."""
    pred = Path(pred)
    if pred.is_file():
        return {pred.stem: pred}
    if not pred.is_dir():
        raise UserError(f"--pred {pred}: no such file or folder")
    folder = pred / "mot" if (pred / "mot").is_dir() else pred
    found = {p.stem: p for p in sorted(folder.glob("*.txt")) if "mtmc" not in p.stem}  # AI City: mtmc_eval
    if not found:
        raise UserError(f"--pred {pred}: no <seq>.txt tracking files in {folder}")
    return found


def pair_sequences(pred: str | Path, gt: str | Path) -> dict[str, tuple[Path, Path]]:
    """{seq: (pred file, gt file)}; one file on each side is paired whatever the names."""
    preds, gts = pred_sequences(pred), gt_sequences(gt)
    if len(preds) == 1 and len(gts) == 1:
        (name, g), = gts.items()
        return {name: (next(iter(preds.values())), g)}
    missing = sorted(set(gts) - set(preds))
    if missing:
        raise UserError(f"no prediction for sequence(s) {', '.join(missing)}; predictions found: "
                        f"{', '.join(sorted(preds))}")
    extra = sorted(set(preds) - set(gts))
    if extra:
        log.info("no ground truth for %s: not scored", ", ".join(extra))
    return {name: (preds[name], g) for name, g in gts.items()}


def evaluate_folders(pred: str | Path, gt: str | Path, iou: float = 0.5) -> dict:
    """Score every sequence -> {"sequences": {seq: metrics}, "combined": metrics, "files": {...}}."""
    pairs = pair_sequences(pred, gt)
    per_seq, all_gt, all_pred = {}, [], []
    frame_offset, id_offset = 0.0, 0.0
    for name, (p, g) in pairs.items():
        gt_rows, pred_rows = read_mot(g), read_mot(p)
        per_seq[name] = evaluate_mot(gt_rows, pred_rows, iou=iou)
        for rows, out in ((gt_rows, all_gt), (pred_rows, all_pred)):  # disjoint frames and ids per sequence
            shifted = rows.copy()
            shifted[:, 0] += frame_offset
            shifted[:, 1] += id_offset
            out.append(shifted)
        frame_offset += max(gt_rows[:, 0].max(initial=0), pred_rows[:, 0].max(initial=0))
        id_offset += max(gt_rows[:, 1].max(initial=0), pred_rows[:, 1].max(initial=0))
    combined = per_seq[next(iter(per_seq))] if len(per_seq) == 1 else \
        evaluate_mot(np.concatenate(all_gt), np.concatenate(all_pred), iou=iou)
    return {"sequences": per_seq, "combined": combined, "iou": iou,
            "files": {k: {"pred": str(p), "gt": str(g)} for k, (p, g) in pairs.items()}}


def format_table(results: dict) -> str:
    """Plain-text table: one row per sequence plus COMBINED."""
    rows = dict(results["sequences"])
    if len(rows) > 1:
        rows["COMBINED"] = results["combined"]
    width = max(8, *(len(k) for k in rows))
    lines = [f"{'sequence':<{width}} " + " ".join(f"{h:>7s}" for h, _, _ in TABLE)]
    for name, m in rows.items():
        lines.append(f"{name:<{width}} " + " ".join(f"{m[key]:>7{fmt}}" for _, key, fmt in TABLE))
    return "\n".join(lines)


def write_json(path: str | Path, results: dict) -> None:
    atomic_write_json(path, results, indent=2)

"""Score tracking output against ground truth (per sequence HOTA, MOTA, IDF1 and their parts).

--pred: a MOTChallenge file, a folder of <seq>.txt files, or an `mcmt run` folder (its mot/).
--gt:   a MOTChallenge file, a folder of <seq>.txt files, a TrackEval/MOTChallenge folder with
        <seq>/gt/gt.txt, or one sequence folder with gt/gt.txt.
Sequences are paired by name; "COMBINED" scores all of them together.
With a multi-camera ground truth (several <camera>/gt/gt.txt, or an AI City mtmc.txt) it also
prints cross-camera scores: multi-camera IDF1/IDP/IDR (AI City definition) and handoffs
(pipeline/evaluation/mtmc.py); AI City files are accepted on either side.

Examples:
  mcmt eval --pred runs/x --gt data/MOT17/train
  mcmt eval --pred tracks.txt --gt ../shared/data/pets09-s2l1 --json scores.json
  mcmt eval --pred runs/pets --gt samples/gt
"""
from __future__ import annotations

import logging
from pathlib import Path

from core.atomic import atomic_write_json

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
    from pipeline.evaluation.mtmc import format_multicam
    from pipeline.evaluation.scores import evaluate_folders

    results = evaluate_folders(args.pred, args.gt, iou=args.iou)
    print(format_table(results))
    if "multi_camera" in results:
        print("\n" + format_multicam(results["multi_camera"]))
    if args.json:
        write_json(args.json, results)
        log.info("wrote %s", args.json)
    return 0


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

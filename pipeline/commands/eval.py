"""Score tracking output against ground truth (per camera HOTA, MOTA, IDF1; cross-camera IDF1).

Example:
  mcmt eval --pred runs/x --gt path/to/gt
"""
from pipeline.commands._stub import not_built


def add_arguments(p):
    p.add_argument("--pred", required=True, metavar="PATH", help="run folder or MOTChallenge file")
    p.add_argument("--gt", required=True, metavar="PATH", help="ground-truth folder or file")
    p.add_argument("--json", metavar="FILE", help="also write all numbers to this JSON file")


def main(args) -> int:
    raise not_built("eval", "tracking evaluation")

"""Evaluate a ReID model: CMC rank-1/5/10, mAP, attribute accuracy, optional re-ranking.

Example:
  mcmt eval-reid --checkpoint model.pt --dataset market1501 --data-root /data/Market-1501
"""
from pipeline.commands._stub import not_built


def add_arguments(p):
    p.add_argument("--checkpoint", required=True, help="our .pt checkpoint, an .onnx or OpenVINO .xml model")
    p.add_argument("--dataset", required=True, help="data set name")
    p.add_argument("--data-root", required=True, metavar="DIR", help="data set folder")
    p.add_argument("--json", metavar="FILE", help="also write all numbers to this JSON file")


def main(args) -> int:
    raise not_built("eval-reid", "ReID evaluation")

"""Train the multi-task ReID network (identification + attributes + verification).

Example:
  mcmt train-reid --config configs/reid/paper_market1501.yaml --data-root /data/Market-1501
"""
from pipeline.commands._stub import not_built


def add_arguments(p):
    p.add_argument("--data-root", metavar="DIR", help="data set folder")
    p.add_argument("--out", metavar="DIR", help="output folder for checkpoints and logs")
    p.add_argument("--resume", metavar="CKPT", help="continue training from this checkpoint")


def main(args) -> int:
    raise not_built("train-reid", "ReID training")

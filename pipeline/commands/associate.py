"""Redo only the cross-camera association and outputs of an existing run folder.

Example:
  mcmt associate --run runs/x --set association.threshold=0.4
"""
from pipeline.commands._stub import not_built
from pipeline.run_config import RunConfig

CONFIG_CLASS = RunConfig


def add_arguments(p):
    p.add_argument("--run", required=True, metavar="DIR", help="a folder written by 'mcmt run'")


def main(args) -> int:
    raise not_built("associate", "the cross-camera association stage")

"""Detect, track and identify people across several camera videos.

Example:
  mcmt run --videos cam1.mp4 cam2.mp4 --out runs/x
"""
from pipeline.commands._stub import not_built
from pipeline.run_config import RunConfig

CONFIG_CLASS = RunConfig


def add_arguments(p):
    p.add_argument("--videos", nargs="+", required=True, metavar="VIDEO",
                   help="video files (or folders of frames), one per camera")
    p.add_argument("--out", metavar="DIR", help="output folder (default runs/<timestamp>)")


def main(args) -> int:
    from pipeline.inputs import check_videos

    check_videos(args.videos)
    raise not_built("run", "the detection/tracking pipeline")

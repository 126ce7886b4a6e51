"""Redo only the cross-camera association and outputs of an existing run folder (seconds: no video
is decoded, the tracklets come from the run's cache). The run's own settings (run.json) are the base;
--config and --set change them for this association only (identities.json records the settings used).

Example:
  mcmt associate --run runs/x --set association.threshold=0.4
"""
from __future__ import annotations

import time
from pathlib import Path

from pipeline.config import RunConfig, load_run_config

CONFIG_CLASS = RunConfig


def add_arguments(p):
    p.add_argument("--run", required=True, metavar="DIR", help="a folder written by 'mcmt run'")
    p.add_argument("--topology", metavar="YAML", help="camera topology file (sets association.topology)")
    p.add_argument("--calibration", metavar="YAML",
                   help="camera calibration: image -> ground homographies per camera (sets calibration)")
    p.add_argument("--save-video", action="store_true", help="also (re)write videos/<camera>.mp4")


def main(args) -> int:
    import dataclasses

    from pipeline.outputs.write import associate_and_write, check_association_inputs, read_run_file
    from pipeline.run.video import VideoSource
    from pipeline.runfolder.lock import RunLock

    run_dir = Path(args.run)
    t0 = time.perf_counter()
    doc = read_run_file(run_dir)
    cfg = load_run_config(args.config, args.overrides, base=doc.get("config", {}))
    if args.topology:
        cfg = dataclasses.replace(cfg, association=dataclasses.replace(cfg.association, topology=args.topology))
    if getattr(args, "calibration", None):
        cfg = dataclasses.replace(cfg, calibration=str(Path(args.calibration).resolve()))
    if args.save_video:
        cfg = dataclasses.replace(cfg, output=dataclasses.replace(cfg.output, save_video=True))
    cameras = doc["cameras"]
    ground = check_association_inputs(cfg, cameras)            # checked before any work
    sources = None
    if cfg.output.save_video:
        sources = [VideoSource(c["video"], c["name"], offset=c.get("offset", 0.0), stride=c.get("stride", 1),
                               max_frames=cfg.video.max_frames, default_fps=c.get("fps", 25.0))
                   for c in cameras]
    with RunLock(run_dir, "mcmt associate"):
        summary = associate_and_write(run_dir, cfg, cameras, sources=sources, stats=doc.get("stats", {}),
                                      ground=ground)
    print(f"mcmt associate: {summary['cameras']} cameras, {summary['tracklets']} tracklets, "
          f"{summary['identities']} identities ({summary['multi_camera_identities']} in several cameras) "
          f"in {time.perf_counter() - t0:.1f} s -> {run_dir}")
    return 0

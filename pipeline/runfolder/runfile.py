"""``run.json``: the cameras and settings of a run's per-camera stage, and the thresholds and calibration
of its latest association."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Sequence

from core.atomic import atomic_write_json
from core.errors import UserError
from pipeline.runfolder.layout import RUN_FILE


def read_json(path: Path) -> Optional[dict]:
    """A JSON document, or None when the file is missing or unreadable."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def write_run_file(run_dir: Path, cameras: Sequence[dict], config: dict, extra: dict) -> None:
    """``config``: the run's settings as a plain dict (``core.config.to_dict``)."""
    atomic_write_json(Path(run_dir) / RUN_FILE, {"cameras": list(cameras), "config": config, **extra})


def read_run_file(run_dir: Path) -> dict:
    doc = read_json(Path(run_dir) / RUN_FILE)
    if doc is None:
        raise UserError(f"{run_dir}: not a run folder written by 'mcmt run' (no {RUN_FILE}); "
                        "run 'mcmt run --videos ... --out DIR' first")
    return doc


def run_settings(run_dir: Path) -> dict:
    """The settings a run used (run.json "config"; empty when unknown)."""
    return (read_json(Path(run_dir) / RUN_FILE) or {}).get("config") or {}


def record_association(run_dir: Path, thresholds: dict, stats: dict, calibration: Optional[dict] = None) -> None:
    """run.json keeps the thresholds of the latest association next to the settings that produced them,
    and the camera calibration it used (None: none)."""
    doc = read_json(Path(run_dir) / RUN_FILE)
    if doc is None:
        return
    geometry = {k: v for k, v in stats.items() if k.startswith(("ground_", "overlap_"))}
    doc["association"] = {"thresholds": thresholds, "calibration": stats.get("calibration", {}),
                          "ground": calibration, "geometry": geometry,   # ground: camera calibration used
                          "handovers": int(stats.get("handovers", 0))}   # tracks taken over in one frame, joined
    atomic_write_json(Path(run_dir) / RUN_FILE, doc)

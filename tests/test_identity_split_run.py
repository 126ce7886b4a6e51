"""The tracker's identity-switch split inside ``mcmt run`` (tracker.switch_thresh; trackers/appearance_tracker.py):
a split ends one tracklet and starts another in the written tracks, and run.json counts the splits per camera."""
from __future__ import annotations

import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LEFT = REPO / "samples" / "pets_left.mp4"


def _run(out: Path, *sets: str) -> tuple[dict, int]:
    from pipeline.cli import main as mcmt

    args = ["run", "--videos", str(LEFT), "--out", str(out), "--no-progress", "-q",
            "--set", "video.max_frames=400", "--set", "output.report=false"]
    for s in sets:
        args += ["--set", s]
    assert mcmt(args) == 0
    camera = json.loads((out / "run.json").read_text())["cameras"][0]
    ids = {line.split(",")[1] for line in (out / "mot" / f"{camera['name']}.txt").read_text().splitlines() if line}
    return camera, len(ids)


def test_a_split_track_goes_on_under_a_new_id_and_run_json_counts_it(tmp_path):
    """With a threshold every crop passes (0.01, no camera-relative floor, one match) the real tracker on the
    real sample splits its tracks once it has seen the camera's first matches: more track ids written, and
    the count in run.json; with the split off, none."""
    off, n_off = _run(tmp_path / "off", "tracker.switch_thresh=0", "association.enabled=false")
    eager, n_eager = _run(tmp_path / "eager", "tracker.switch_thresh=0.01", "tracker.switch_scale=0",
                          "tracker.switch_count=1", "association.enabled=false")
    assert off["identity_splits"] == 0 and eager["identity_splits"] > 0
    assert n_eager > n_off

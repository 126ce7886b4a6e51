"""A rerun that fails on a model which cannot load leaves the finished work as it was (issue 32, D4 part)."""
from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.cli import main as mcmt

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
CAMS = ("pets_left", "pets_right")
VIDEOS = [str(SAMPLES / f"{c}.mp4") for c in CAMS]


def _snapshot(run: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted((run / "cache").rglob("*")) if p.is_file()}


@pytest.mark.parametrize("option, name", [("--detector", "broken.pt"),      # loaded by ultralytics
                                          ("--detector", "broken.onnx"),    # by our runtime
                                          ("--reid", "broken.onnx")])
def test_a_model_that_cannot_load_touches_no_cache_file(tmp_path, capsys, option, name):
    run = tmp_path / "run"
    dets = [str(SAMPLES / "gt" / c / "gt" / "gt.txt") for c in CAMS]
    common = ["--out", str(run), "--max-frames", "30", "--no-progress", "-q"]
    assert mcmt(["run", "--videos", *VIDEOS, "--detections", *dets, "--reid", "none", *common]) == 0
    before = _snapshot(run)
    assert any(n.endswith("boxes.csv") for n in before) and any(n.endswith("tracklets.npz") for n in before)
    broken = tmp_path / name
    broken.write_bytes(b"this is no model" * 10)
    capsys.readouterr()
    rerun = [option, str(broken)] + (["--detections", *dets] if option == "--reid" else ["--reid", "none"])
    assert mcmt(["run", "--videos", *VIDEOS, *rerun, *common]) != 0
    err = capsys.readouterr().err
    assert name in err and "Traceback" not in err
    assert _snapshot(run) == before                                   # nothing emptied, deleted or rewritten
    assert mcmt(["associate", "--run", str(run), "-q"]) == 0          # the finished run still works

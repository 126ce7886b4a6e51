"""One route for the per-camera stage (issue 32): ``mcmt run`` goes through ``backend.run_stage`` with the local
backend too, whole cameras still batched together in one ``run_cameras`` call."""
from __future__ import annotations

from pathlib import Path

from pipeline.cli import main as mcmt

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
CAMS = ("pets_left", "pets_right")
VIDEOS = [str(SAMPLES / f"{c}.mp4") for c in CAMS]
DETS = [str(SAMPLES / "gt" / c / "gt" / "gt.txt") for c in CAMS]


def test_local_run_goes_through_run_stage_with_both_cameras_in_one_call(tmp_path, monkeypatch):
    from pipeline.run import backend, runner

    stages, calls = [], []
    real_stage, real_cameras = backend.run_stage, runner.run_cameras

    def stage(*args, **kwargs):
        stages.append(args[1].scale.backend)
        return real_stage(*args, **kwargs)

    def cameras(sources, *args, **kwargs):
        calls.append(([(s.name, s.chunk) for s in sources], sorted(kwargs["keys"])))
        return real_cameras(sources, *args, **kwargs)

    monkeypatch.setattr(backend, "run_stage", stage)
    monkeypatch.setattr(runner, "run_cameras", cameras)
    args = ["run", "--videos", *VIDEOS, "--detections", *DETS, "--reid", "none", "--max-frames", "20",
            "--out", str(tmp_path / "run"), "--no-progress", "-q"]
    assert mcmt(args) == 0
    assert stages == ["local"]
    both = [("pets_left", None), ("pets_right", None)]
    assert calls == [(both, both)]                     # one call: each step of both cameras batched together
    assert mcmt(args) == 0 and len(stages) == 2 and len(calls) == 1      # all reused: nothing to run


def test_local_calls_batch_whole_cameras_and_run_chunks_alone():
    from pipeline.run.backend import local_calls
    from pipeline.run.video import VideoSource

    left, right = VideoSource(VIDEOS[0], "left"), VideoSource(VIDEOS[1], "right")
    a, b = right.chunk_of(0, 0, 100), right.chunk_of(1, 90, 200)
    assert local_calls([left, right]) == [[left, right]]
    assert local_calls([left, a, b]) == [[left], [a], [b]]
    assert local_calls([a]) == [[a]] and local_calls([]) == []

"""A chunked run never replaces finished work unasked either (issue 32): the finished chunks of a killed
``--chunk-minutes`` run, made with other settings, make a rerun refuse in one line naming the camera and the
changed settings, as finished whole cameras do; ``--replace`` recomputes them."""
from __future__ import annotations

from pathlib import Path

from pipeline.cli import main as mcmt

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
CAM = "pets_right"
RUN = ["run", "--videos", str(SAMPLES / f"{CAM}.mp4"), "--detections", str(SAMPLES / "gt" / CAM / "gt" / "gt.txt"),
       "--reid", "none", "--max-frames", "160", "--chunk-minutes", str(60 / 7 / 60),   # 7 fps: 60-frame chunks
       "--no-progress", "-q"]


def _chunks(run: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted((run / "cache" / CAM / "chunks").rglob("*"))
            if p.is_file()}


def test_finished_chunks_of_a_killed_run_are_not_replaced_unasked(tmp_path, monkeypatch, capsys):
    from pipeline.run import backend

    run = tmp_path / "run"

    def killed(*args):
        raise KeyboardInterrupt                       # every chunk finished, killed before the stitch

    monkeypatch.setattr(backend, "_finish_camera", killed)
    assert mcmt([*RUN, "--out", str(run)]) == 130
    monkeypatch.undo()
    before = _chunks(run)
    assert sum(n.endswith("track.json") for n in before) == 3 and not (run / "run.json").exists()
    capsys.readouterr()
    other = [*RUN, "--out", str(run), "--set", "tracker.track_buffer=45"]
    assert mcmt(other) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert f"'{CAM}'" in err and " -> 45" in err and "tracker.track_buffer" in err and "--replace" in err, err
    assert _chunks(run) == before                     # nothing recomputed, nothing rewritten
    assert mcmt([*RUN, "--out", str(run)]) == 0       # the same settings: the chunks are reused and stitched
    assert _chunks(run) == before
    assert mcmt([*other, "--replace"]) == 0 and _chunks(run) != before

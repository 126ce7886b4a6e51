"""One generation per association, a lock per run folder, inputs checked before the cache is touched
(issue 32: D1, D4, D8, D9). Each test fails on the code before generations. A rerun with other settings
never replaces finished work unasked (it stops naming the cameras and the fix; ``--replace`` recomputes)."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.cli import main as mcmt

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
CAMS = ("pets_left", "pets_right")
VIDEOS = [str(SAMPLES / f"{c}.mp4") for c in CAMS]
DETS = [str(SAMPLES / "gt" / c / "gt" / "gt.txt") for c in CAMS]
CHANGE = ["--set", "association.short_tracklets=drop", "--set", "association.min_tracklet_length=30"]  # other ids
OUTPUTS = ("mot/pets_left.txt", "mot/pets_right.txt", "mtmc.txt", "identities.json", "report.html")


def _run(out: Path, *extra: str, dets: list[str] = DETS) -> int:
    return mcmt(["run", "--videos", *VIDEOS, "--detections", *dets, "--out", str(out), "--max-frames", "40",
                 "--device", "cpu", "--no-progress", "-q", *extra])


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gen") / "clean"
    assert _run(out) == 0
    return out


@pytest.fixture
def run(clean, tmp_path) -> Path:
    dst = tmp_path / "run"
    shutil.copytree(clean, dst, symlinks=True)
    return dst


def _outputs(run: Path) -> dict[str, bytes]:
    return {name: (run / name).read_bytes() for name in OUTPUTS}


def _snapshot(run: Path) -> dict[str, object]:
    """Every file's bytes and every link's target under the run folder."""
    snap: dict[str, object] = {}
    for root, dirs, files in os.walk(run):
        for name in dirs + files:
            p = Path(root) / name
            rel = str(p.relative_to(run))
            if p.is_symlink():
                snap[rel] = ("link", os.readlink(p))
            elif p.is_file() and name != "run.lock":
                snap[rel] = p.read_bytes()
    return snap


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt


def test_d1_new_tracklets_beside_old_identities_are_refused_by_every_reader(run, tmp_path, capsys, monkeypatch):
    import pipeline.outputs.write as write

    with monkeypatch.context() as m:                  # the per-camera stage is redone, the association fails
        m.setattr(write, "global_ids", _interrupt)
        assert _run(run, "--set", "tracker.match_thresh=0.5", "--replace") == 130
    capsys.readouterr()
    for argv in (["search", "--run", str(run), "--attributes", "female"],
                 ["index", "add", str(run), "--index", str(tmp_path / "ix")],
                 ["eval", "--pred", str(run), "--gt", str(SAMPLES / "gt")]):
        assert mcmt(argv) == 2, argv
        err = _one_line_error(capsys)
        assert "identities.json" in err and f"mcmt associate --run {run}" in err, err
    assert mcmt(["associate", "--run", str(run), "-q"]) == 0       # the command the message names fixes it
    assert mcmt(["search", "--run", str(run), "--attributes", "female", "-q"]) == 0


def test_d9_a_failed_association_leaves_the_previous_generation(run, capsys, monkeypatch):
    import pipeline.outputs.write as write

    before, listing = _outputs(run), sorted(p.name for p in (run / "thumbs").iterdir())
    with monkeypatch.context() as m:                  # fails after mot/ and mtmc.txt of the new one are written
        m.setattr(write, "write_identities", _interrupt)
        assert mcmt(["associate", "--run", str(run), *CHANGE, "-q"]) == 130
    assert _outputs(run) == before
    assert sorted(p.name for p in (run / "thumbs").iterdir()) == listing
    assert mcmt(["search", "--run", str(run), "--attributes", "female", "-q"]) == 0
    assert mcmt(["associate", "--run", str(run), *CHANGE, "-q"]) == 0
    after = _outputs(run)
    assert all(after[name] != before[name] for name in OUTPUTS)     # so the test above proves something
    assert len(list((run / "generations").iterdir())) == 2          # the current one and the previous one


PAUSED_ASSOCIATE = """
import sys, time
import pipeline.outputs.report as report
def pause(*args, **kwargs):                     # the report is the last output written: kill -9 here
    print("paused", flush=True)
    time.sleep(120)
report.write_report = pause
from pipeline.cli import main
sys.exit(main(["associate", "--run", sys.argv[1], *sys.argv[2:], "-q"]))
"""


def test_d9_a_killed_association_leaves_the_previous_generation(run, capsys):
    before = _outputs(run)
    proc = subprocess.Popen([sys.executable, "-c", PAUSED_ASSOCIATE, str(run), *CHANGE], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "paused"
    finally:
        proc.kill()
        proc.wait()
    assert _outputs(run) == before
    assert mcmt(["search", "--run", str(run), "--attributes", "female", "-q"]) == 0


HOLDER = """
import sys, time
from pipeline.runfolder.lock import RunLock
with RunLock(sys.argv[1], "mcmt run (test holder)"):
    print("locked", flush=True)
    time.sleep(120)
"""


def test_d8_a_second_writer_is_refused_naming_the_holder_and_kill_9_leaves_no_stale_lock(run, capsys):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        before = _snapshot(run)
        capsys.readouterr()
        assert _run(run, "--set", "tracker.match_thresh=0.5", "--replace") == 2
        err = _one_line_error(capsys)
        assert f"pid {holder.pid}" in err and str(run) in err
        assert mcmt(["associate", "--run", str(run)]) == 2
        assert f"pid {holder.pid}" in _one_line_error(capsys)
        assert _snapshot(run) == before                             # nothing touched
    finally:
        holder.kill()                                               # SIGKILL: the kernel drops the lock
        holder.wait()
    assert mcmt(["associate", "--run", str(run), "-q"]) == 0


def _topology(tmp_path: Path, text: str) -> str:
    path = tmp_path / "topology.yaml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("case", ["unknown camera", "bad topology file", "bad calibration"])
def test_d4_bad_association_inputs_stop_a_rerun_before_anything_is_touched(run, tmp_path, capsys, case):
    if case == "unknown camera":
        extra = ["--topology", _topology(tmp_path, "cameras: [pets_left, elsewhere]\ntransitions: []\n")]
    elif case == "bad topology file":
        extra = ["--topology", _topology(tmp_path, "cameras: [pets_left, pets_right\n  transitions: {")]
    else:
        bad = tmp_path / "calibration.yaml"
        bad.write_text("cameras:\n  pets_left:\n    homography: [[1, 0], [0, 1]]\n")
        extra = ["--calibration", str(bad)]
    before = _snapshot(run)
    capsys.readouterr()
    assert _run(run, "--set", "tracker.match_thresh=0.5", "--replace", *extra) == 2   # the stage would be redone
    err = _one_line_error(capsys)
    assert str(tmp_path) in err
    assert _snapshot(run) == before                                     # cache, run.json and outputs as they were
    assert mcmt(["associate", "--run", str(run), "-q"]) == 0


def test_a_run_folder_of_an_older_mcmt_becomes_a_checked_generation(run, tmp_path, capsys, monkeypatch):
    import pipeline.outputs.write as write

    gen = run / os.readlink(run / "current")            # make it look like an older mcmt's folder
    for name in ("mot", "mtmc.txt", "identities.json", "thumbs", "report.html", "current"):
        (run / name).unlink()
    for name in ("mot", "mtmc.txt", "identities.json", "thumbs", "report.html"):
        os.replace(gen / name, run / name)
    shutil.rmtree(run / "generations")
    before = _outputs(run)
    with monkeypatch.context() as m:
        m.setattr(write, "global_ids", _interrupt)
        assert _run(run, "--set", "tracker.match_thresh=0.5", "--replace") == 130
    assert _outputs(run) == before                                      # still readable at the same paths
    capsys.readouterr()
    assert mcmt(["search", "--run", str(run), "--attributes", "female"]) == 2
    assert "mcmt associate --run" in _one_line_error(capsys)


# ---- a rerun with other settings ----------------------------------------------------------------
OTHER_TRACKER = ["--set", "tracker.track_buffer=7"]


def _key(run: Path, cam: str) -> str:
    return json.loads((run / "cache" / cam / "track.json").read_text())["key"]


def _unfinish(run: Path, cam: str) -> None:
    """What a run killed during the camera's stage leaves: ``complete: false``."""
    meta = run / "cache" / cam / "track.json"
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "complete": False}))


def test_other_tracker_settings_stop_before_touching_anything_and_replace_recomputes(run, capsys):
    before, keys = _snapshot(run), {c: _key(run, c) for c in CAMS}
    capsys.readouterr()
    assert _run(run, *OTHER_TRACKER) == 2
    err = _one_line_error(capsys)
    assert "'pets_left', 'pets_right'" in err and "tracker.track_buffer" in err and "-> 7" in err
    assert "--out NEW_FOLDER" in err and "--replace" in err
    assert _snapshot(run) == before                                   # byte for byte, links included
    assert _run(run, *OTHER_TRACKER, "--replace") == 0
    assert all(_key(run, c) != keys[c] for c in CAMS)
    assert json.loads((run / "run.json").read_text())["config"]["tracker"]["track_buffer"] == 7
    assert _run(run, *OTHER_TRACKER) == 0                             # now the same settings: reused


def test_another_input_is_refused_naming_inputs(run, tmp_path, capsys):
    dets = tmp_path / "dets.txt"                                      # other detections, same settings
    dets.write_text("".join(Path(DETS[0]).read_text().splitlines(True)[::2]))
    capsys.readouterr()
    assert _run(run, dets=[str(dets), DETS[1]]) == 2
    err = _one_line_error(capsys)
    assert "'pets_left'" in err and "'pets_right'" not in err and "other inputs" in err


def test_unfinished_stages_are_recomputed_as_before(run, capsys):
    _unfinish(run, "pets_left")
    capsys.readouterr()
    assert _run(run, *OTHER_TRACKER) == 2                             # pets_right is finished
    err = _one_line_error(capsys)
    assert "'pets_right'" in err and "'pets_left'" not in err
    _unfinish(run, "pets_right")
    assert _run(run, *OTHER_TRACKER) == 0
    assert json.loads((run / "run.json").read_text())["config"]["tracker"]["track_buffer"] == 7


def test_association_settings_replace_no_stage(run):
    keys = {c: _key(run, c) for c in CAMS}
    assert _run(run, *CHANGE) == 0
    assert {c: _key(run, c) for c in CAMS} == keys

"""A rerun with other settings never replaces finished work unasked (issue 32, 'validate before touching
anything'): it stops with one line naming the cameras, what changed and the fix; ``--replace`` recomputes."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from pipeline.cli import main as mcmt

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
CAMS = ("pets_left", "pets_right")
VIDEOS = [str(SAMPLES / f"{c}.mp4") for c in CAMS]
DETS = [str(SAMPLES / "gt" / c / "gt" / "gt.txt") for c in CAMS]
OTHER_TRACKER = ["--set", "tracker.track_buffer=7"]


def _run(out: Path, *extra: str) -> int:
    return mcmt(["run", "--videos", *VIDEOS, "--detections", *DETS, "--reid", "none", "--out", str(out),
                 "--max-frames", "30", "--no-progress", "-q", *extra])


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("replace") / "run"
    assert _run(out) == 0
    return out


@pytest.fixture
def run(finished, tmp_path) -> Path:
    dst = tmp_path / "run"
    shutil.copytree(finished, dst, symlinks=True)
    return dst


def _snapshot(run: Path) -> dict[str, object]:
    """Every file's bytes and every link's target under the run folder."""
    snap: dict[str, object] = {}
    for root, dirs, files in os.walk(run):
        for name in dirs + files:
            p = Path(root) / name
            rel = str(p.relative_to(run))
            snap[rel] = ("link", os.readlink(p)) if p.is_symlink() else p.read_bytes() if p.is_file() else "dir"
    return snap


def _key(run: Path, cam: str) -> str:
    return json.loads((run / "cache" / cam / "track.json").read_text())["key"]


def test_other_tracker_settings_stop_before_touching_anything(run, capsys):
    before = _snapshot(run)
    capsys.readouterr()
    assert _run(run, *OTHER_TRACKER) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "'pets_left', 'pets_right'" in err and "tracker.track_buffer" in err and "-> 7" in err
    assert "--out NEW_FOLDER" in err and "--replace" in err
    assert _snapshot(run) == before                                   # byte for byte, links included


def test_replace_recomputes_in_place(run, capsys):
    keys = {c: _key(run, c) for c in CAMS}
    assert _run(run, *OTHER_TRACKER, "--replace") == 0
    assert all(_key(run, c) != keys[c] for c in CAMS)
    assert json.loads((run / "run.json").read_text())["config"]["tracker"]["track_buffer"] == 7
    assert _run(run, *OTHER_TRACKER) == 0                             # now the same settings: reused


def test_another_input_is_refused_without_naming_settings(run, tmp_path, capsys):
    """Other detections (same settings): the message says inputs, models or settings changed."""
    dets = tmp_path / "dets.txt"
    dets.write_text("".join(line for line in Path(DETS[0]).read_text().splitlines(True)[::2]))
    capsys.readouterr()
    code = mcmt(["run", "--videos", *VIDEOS, "--detections", str(dets), DETS[1], "--reid", "none", "--out", str(run),
                 "--max-frames", "30", "--no-progress", "-q"])
    err = capsys.readouterr().err
    assert code == 2 and "'pets_left'" in err and "'pets_right'" not in err and "other inputs" in err


def _unfinish(run: Path, cam: str) -> None:
    """What a run killed during the camera's stage leaves: ``complete: false``."""
    meta = run / "cache" / cam / "track.json"
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "complete": False}))


def test_unfinished_stages_are_recomputed_as_before(run, capsys):
    _unfinish(run, "pets_left")
    capsys.readouterr()
    assert _run(run, *OTHER_TRACKER) == 2                             # pets_right is finished
    err = capsys.readouterr().err
    assert "'pets_right'" in err and "'pets_left'" not in err
    _unfinish(run, "pets_right")
    assert _run(run, *OTHER_TRACKER) == 0
    assert json.loads((run / "run.json").read_text())["config"]["tracker"]["track_buffer"] == 7


def test_association_settings_replace_no_stage(run):
    keys = {c: _key(run, c) for c in CAMS}
    assert _run(run, "--set", "association.min_tracklet_length=30") == 0
    assert {c: _key(run, c) for c in CAMS} == keys

"""A damaged stage cache is never used silently (issue 32, D2, D3, D6): a file that does not hold what
its stage recorded makes the stage unfinished, a rerun recomputes it, and 'mcmt associate' refuses."""
from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from pipeline.cli import main as mcmt
from pipeline.runfolder.cache import CameraCache, DetectionWriter

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
CAMS = ("pets_left", "pets_right")


def _run(out: Path) -> int:
    """The two-camera sample with its ground truth as detections (no detector: fast), 60 frames."""
    dets = [str(SAMPLES / "gt" / c / "gt" / "gt.txt") for c in CAMS]
    return mcmt(["run", "--videos", *(str(SAMPLES / f"{c}.mp4") for c in CAMS), "--out", str(out),
                 "--detections", *dets, "--reid", "none", "--max-frames", "60", "--no-progress", "-q"])


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    out = tmp_path_factory.mktemp("clean")
    assert _run(out) == 0
    return out


def _cut_at_line(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:data.rindex(b"\n", 0, int(len(data) * keep)) + 1])


DAMAGE = {
    "boxes deleted": lambda d: (d / "boxes.csv").unlink(),
    "boxes cut at a line": lambda d: _cut_at_line(d / "boxes.csv"),
    "boxes wrong columns": lambda d: (d / "boxes.csv").write_text(
        (d / "boxes.csv").read_text().replace(",", ",0,", 1)),
    "boxes bad bytes": lambda d: (d / "boxes.csv").write_bytes(b"\xff\xfe" + (d / "boxes.csv").read_bytes()[2:]),
    "npz broken": lambda d: (d / "tracklets.npz").write_bytes((d / "tracklets.npz").read_bytes()[:100]),
    "tracklets.json emptied": lambda d: (d / "tracklets.json").write_text(""),
}


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_damaged_track_stage_is_refused_then_recomputed(clean, tmp_path, capsys, caplog, case):
    run = tmp_path / "run"
    shutil.copytree(clean, run)
    DAMAGE[case](run / "cache" / "pets_right")
    assert not CameraCache(run, "pets_right").track_complete()
    assert CameraCache(run, "pets_left").track_complete()
    capsys.readouterr()
    with caplog.at_level(logging.WARNING):
        assert mcmt(["associate", "--run", str(run), "-q"]) == 2      # refused, not run on half the boxes
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "mcmt run" in err and "Traceback" not in err
    assert str(run / "cache" / "pets_right") in caplog.text            # the warning names the file
    assert _run(run) == 0                                               # the rerun recomputes that camera
    info = json.loads((run / "run.json").read_text())["stats"]
    assert info["reused_cameras"] == ["pets_left"]
    for cam in CAMS:
        assert (run / "mot" / f"{cam}.txt").read_text() == (clean / "mot" / f"{cam}.txt").read_text()


def test_track_stage_of_an_older_mcmt_is_checked_by_its_box_count(clean, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(clean, run)
    meta_path = run / "cache" / "pets_right" / "track.json"
    meta = json.loads(meta_path.read_text())
    del meta["files"]                                         # written before the manifest
    meta_path.write_text(json.dumps(meta))
    assert CameraCache(run, "pets_right").track_complete()
    _cut_at_line(run / "cache" / "pets_right" / "boxes.csv")
    assert not CameraCache(run, "pets_right").track_complete()


def _detections(tmp_path: Path, frames: int = 40) -> CameraCache:
    """An interrupted detect stage: ``frames`` frames of 3 detections each, not complete."""
    cache = CameraCache(tmp_path, "cam")
    w = DetectionWriter(cache, "k", cache.cached_detections("k"), every=10)
    for f in range(frames):
        w.add(f, np.tile(np.array([[f, 2.5, f + 10.25, 40, 0.75, 0]], np.float32), (3, 1)))
    w.close(complete=False)
    assert cache.cached_detections("k").upto == frames - 1
    return cache


@pytest.mark.parametrize("damage", ["cut at a line", "emptied", "deleted", "bad bytes", "wrong columns"])
def test_damaged_detections_are_detected_again(tmp_path, caplog, damage):
    cache = _detections(tmp_path)
    if damage == "cut at a line":
        _cut_at_line(cache.dets)
    elif damage == "emptied":
        cache.dets.write_bytes(b"")
    elif damage == "deleted":
        cache.dets.unlink()
    elif damage == "bad bytes":
        data = bytearray(cache.dets.read_bytes())
        data[len(data) // 2] = 0xFF
        cache.dets.write_bytes(bytes(data))
    else:
        cache.dets.write_text(cache.dets.read_text().replace(",0\n", "\n"))
    with caplog.at_level(logging.WARNING):
        reused = cache.cached_detections("k")
    assert not reused and reused.upto == -1 and len(reused.rows) == 0    # nothing reused: all detected again
    assert str(cache.dets) in caplog.text


def test_rows_appended_after_the_last_record_are_ignored(tmp_path):
    cache = _detections(tmp_path)
    with open(cache.dets, "a") as f:
        f.write("40,1,2,3,4,0.5,0\n41,1,2")                # a crash while writing after the last record
    reused = cache.cached_detections("k")
    assert reused.upto == 39 and len(reused.rows) == 120


def test_detections_of_an_older_mcmt_are_not_reused(tmp_path):
    cache = _detections(tmp_path)
    meta = json.loads(cache.detect_meta.read_text())
    cache.detect_meta.write_text(json.dumps({k: meta[k] for k in ("key", "frames_done_upto", "complete")}))
    assert not cache.cached_detections("k")                 # rounded to 6 digits: detected again


@pytest.mark.parametrize("damage", ["boxes wrong columns", "boxes bad bytes", "npz broken"])
def test_unreadable_files_of_an_unchecked_stage_name_the_file_and_the_fix(clean, tmp_path, damage):
    """Readers that bypass the stage check (an older cache, a gallery) get one line naming the file."""
    from core.errors import UserError
    from pipeline.runfolder.cache import read_boxes

    run = tmp_path / "run"
    shutil.copytree(clean, run)
    cache = CameraCache(run, "pets_right")
    DAMAGE[damage](cache.dir)
    with pytest.raises(UserError) as err:
        read_boxes(cache) if damage.startswith("boxes") else cache.load_tracklets()
    assert str(cache.dir) in str(err.value) and "mcmt run" in str(err.value)

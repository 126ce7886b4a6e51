"""The Ray backend and the run folder (issue 32): a unit's stage keys come from the driver's plan whatever the
spelling of the model paths, and the driver's lock on the run folder covers its Ray workers."""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.errors import UserError
from pipeline.cli import main as mcmt

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples"
CAMS = ("pets_left", "pets_right")
VIDEOS = [str(SAMPLES / f"{c}.mp4") for c in CAMS]
DETS = [str(SAMPLES / "gt" / c / "gt" / "gt.txt") for c in CAMS]


def _cfg(**models):
    from pipeline.config import RunConfig

    cfg = RunConfig()
    return dataclasses.replace(cfg, detector=dataclasses.replace(cfg.detector, model=models.get("det", "default")),
                               reid=dataclasses.replace(cfg.reid, checkpoint=models.get("reid", "default")))


def test_stage_keys_do_not_depend_on_how_a_model_path_is_spelled(tmp_path, monkeypatch):
    from pipeline.run.backend import plan
    from pipeline.run.video import VideoSource

    models = tmp_path / "models"
    models.mkdir()
    (models / "det.onnx").write_bytes(b"d" * 16)
    (models / "reid.pt").write_bytes(b"r" * 16)
    (tmp_path / "link").symlink_to(models)
    src = [VideoSource(VIDEOS[0], "left", max_frames=10)]
    monkeypatch.chdir(tmp_path)
    keys = {spelling: plan(src, _cfg(det=f"{spelling}/det.onnx", reid=f"{spelling}/reid.pt"))[0].unit_keys[0]
            for spelling in ("models", "./models", str(models), "link", "../" + tmp_path.name + "/models")}
    assert len(set(keys.values())) == 1, keys
    monkeypatch.chdir(tmp_path / "models")
    assert plan(src, _cfg(det="det.onnx", reid="reid.pt"))[0].unit_keys[0] == keys["models"]
    (models / "reid.pt").write_bytes(b"s" * 17)                       # another model: another track key
    assert plan(src, _cfg(det="det.onnx", reid="reid.pt"))[0].unit_keys[0].track != keys["models"].track


def test_a_worker_runs_its_unit_with_the_driver_s_keys(tmp_path, monkeypatch):
    from pipeline.run import backend, runner
    from pipeline.runfolder.cache import CameraCache
    from pipeline.run.video import VideoSource

    src = VideoSource(VIDEOS[0], CAMS[0], max_frames=10)
    cfg = _cfg(reid="none")
    keys = backend.plan([src], cfg, {CAMS[0]: Path(DETS[0])})[0].unit_keys[0]

    def recomputed(*args):
        raise AssertionError("a worker recomputed its unit's stage keys")

    monkeypatch.setattr(runner, "stage_keys", recomputed)
    backend.run_unit(src, cfg, str(tmp_path), DETS[0], 1, keys)
    assert CameraCache(tmp_path, CAMS[0]).finished_key() == keys.track


def test_a_worker_writes_nothing_into_a_folder_its_driver_no_longer_holds(tmp_path):
    from pipeline.run import backend
    from pipeline.runfolder.cache import CameraCache
    from pipeline.runfolder.lock import RunLock, held_here
    from pipeline.run.video import VideoSource

    src = VideoSource(VIDEOS[0], CAMS[0], max_frames=10)
    cfg = _cfg(reid="none")
    keys = backend.plan([src], cfg, {CAMS[0]: Path(DETS[0])})[0].unit_keys[0]
    with RunLock(tmp_path, "mcmt run (the driver)"):
        driver = held_here(tmp_path)
    assert driver.startswith(f"pid {os.getpid()}: mcmt run (the driver)")
    with pytest.raises(UserError, match="no longer held .* by no one"):          # the driver has gone
        backend.run_unit(src, cfg, str(tmp_path), DETS[0], 1, keys, driver)
    with RunLock(tmp_path, "mcmt associate"):                                     # another mcmt holds it now
        with pytest.raises(UserError, match="no longer held .* by pid .*mcmt associate"):
            backend.run_unit(src, cfg, str(tmp_path), DETS[0], 1, keys, driver)
    assert not (tmp_path / "cache").exists()                                      # nothing written
    with RunLock(tmp_path, "mcmt run (the driver)"):
        backend.run_unit(src, cfg, str(tmp_path), DETS[0], 1, keys, held_here(tmp_path))
    assert CameraCache(tmp_path, CAMS[0]).finished_key() == keys.track


ray = pytest.importorskip("ray", reason="Ray not installed (pip install -e '.[ray]')")


@pytest.mark.slow
def test_ray_run_with_relative_model_paths_is_reused_by_its_rerun(tmp_path, monkeypatch, capsys):
    """Workers get the models by absolute paths; the driver's keys (relative spelling) must still find their
    finished units: the rerun reuses every camera instead of refusing or recomputing."""
    monkeypatch.chdir(REPO)
    args = ["run", "--videos", *VIDEOS, "--detector", "pipeline/run/detectors/weights/"
            "person-vehicle-bike-detection-2003.xml", "--reid", "reid/weights/default.pt", "--max-frames", "20",
            "--out", str(tmp_path / "run"), "--device", "cpu", "--no-progress", "-q"]
    try:
        assert mcmt([*args, "--backend", "ray", "--workers", "2"]) == 0
        capsys.readouterr()
        assert mcmt([*args, "--backend", "ray", "--workers", "2"]) == 0
        assert capsys.readouterr().out.count("(cached)") == 2
    finally:
        ray.shutdown()
    monkeypatch.chdir(REPO / "reid")                                  # the same models spelt from elsewhere
    again = [a.replace("pipeline/run/", "../pipeline/run/").replace("reid/weights", "weights") for a in args]
    assert mcmt(again) == 0 and capsys.readouterr().out.count("(cached)") == 2


@pytest.mark.slow
def test_a_second_run_refuses_while_a_ray_run_holds_the_folder(tmp_path, capsys):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "pipeline.cli", "run", "--videos", *VIDEOS, "--out", str(run), "--max-frames", "60",
           "--reid", "none", "--device", "cpu", "--no-progress", "-q", "--backend", "ray", "--workers", "2"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline, working = time.time() + 180, False
        while proc.poll() is None and time.time() < deadline and not working:   # a Ray task writes its cache
            working = any((run / "cache" / c / "detect.json").exists() for c in CAMS)
            time.sleep(0.05)
        assert working, proc.communicate()[0] if proc.poll() is not None else "no Ray task started"
        assert (run / "run.lock").read_text().startswith(f"pid {proc.pid}:")     # the driver holds the lock
        capsys.readouterr()
        assert mcmt(["run", "--videos", *VIDEOS, "--out", str(run), "--max-frames", "60", "--reid", "none",
                     "--device", "cpu", "--no-progress", "-q"]) != 0
        err = capsys.readouterr().err
        assert f"being written by another mcmt (pid {proc.pid}:" in err and len(err.strip().splitlines()) == 1, err
        assert proc.poll() is None, "the Ray run ended before the second run was refused: nothing was shown"
        text, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, text
    assert (run / "run.lock").read_text() == ""                                   # released at the end

"""Stage keys are computed once per work unit, by the planning step, and passed down (issue 32)."""
from __future__ import annotations

import cv2
import numpy as np


def _video(path, frames: int = 30, fps: float = 10.0):
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (64, 48))
    for i in range(frames):
        w.write(np.full((48, 64, 3), i * 8 % 255, np.uint8))
    w.release()
    return path


def test_run_stage_takes_each_unit_s_keys_from_the_plan(tmp_path, monkeypatch):
    from core.config import load_config
    from pipeline.config import RunConfig
    from pipeline.run import backend, runner
    from pipeline.run.video import open_sources

    sources = open_sources([str(_video(tmp_path / "cam.avi"))])
    cfg = load_config(RunConfig, None, ["scale.chunk_minutes=0.0167", "scale.overlap_seconds=0"])   # 1 s chunks
    real, calls = runner.stage_keys, []

    def counting(src, cfg, det_file):
        calls.append(runner.unit_id(src))
        return real(src, cfg, det_file)

    monkeypatch.setattr(backend, "stage_keys", counting)
    monkeypatch.setattr(runner, "stage_keys", counting)
    monkeypatch.setattr(backend, "_finish_camera", lambda *a: None)      # nothing to stitch: no unit really ran
    cams = backend.plan(sources, cfg)
    assert len(cams[0].units) == 3 and sorted(calls) == sorted(cams[0].keys())    # once per unit
    given = []

    def local(units, keys):
        given.append(keys)
        return runner.RunStats()

    backend.run_stage(sources, cfg, tmp_path / "run", local_runner=local, cams=cams, progress=False)
    assert len(calls) == 3                                                 # none recomputed
    assert [k for g in given for k in g.items()] == list(cams[0].keys().items())
    for u, keys in zip(cams[0].units, cams[0].unit_keys):                  # the values stage_keys gives
        det_key, track_key = keys
        assert (det_key, track_key) == real(u, cfg, None) and keys.track == track_key
    plain = backend.plan(sources, load_config(RunConfig, None, []))[0]     # not chunked: one unit, its track key
    assert plain.units == sources and plain.key == plain.unit_keys[0].track == real(sources[0], RunConfig(), None)[1]


def test_the_identity_switch_split_keys_the_track_stage_only_when_on(tmp_path):
    """tracker.switch_thresh 0 (off): none of the split's settings is in the track key (the key is the one runs
    cached before the setting existed had), so changing the others changes nothing; on (the default), the track
    stage is keyed by them and the detection stage is not."""
    from core.config import load_config
    from pipeline.config import RunConfig
    from pipeline.run import runner
    from pipeline.run.video import open_sources

    src = open_sources([str(_video(tmp_path / "cam.avi"))])[0]

    def keys(*sets):
        return runner.stage_keys(src, load_config(RunConfig, None, list(sets)), None)

    on = keys()
    assert load_config(RunConfig, None, []).tracker.switch_thresh > 0
    off = keys("tracker.switch_thresh=0")
    assert off == keys("tracker.switch_thresh=0", "tracker.switch_count=9", "tracker.switch_scale=1.5")
    assert on.det == off.det and on.track != off.track
    assert keys("tracker.switch_count=9").track != on.track

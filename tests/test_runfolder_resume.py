"""A run interrupted part way through the detections and resumed writes exactly what a clean run writes:
cached detections are stored at full (float32 round-trip) precision (issue 32, D7)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.cli import main as mcmt
from pipeline.runfolder.cache import CameraCache, DetectionWriter

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
VIDEOS = [SAMPLES / "pets_left.mp4", SAMPLES / "pets_right.mp4"]


def test_cached_detections_are_bit_exact_float32(tmp_path):
    rng = np.random.default_rng(0)
    dets = {f: np.column_stack([rng.uniform(0, 1920, (5, 4)), rng.uniform(0, 1, (5, 1)), np.zeros((5, 1))]
                               ).astype(np.float32) for f in range(20)}
    cache = CameraCache(tmp_path, "cam")
    w = DetectionWriter(cache, "k", cache.cached_detections("k"))
    for f, d in dets.items():
        w.add(f, d)
    w.close(complete=True)
    back = cache.cached_detections("k")
    for f, d in dets.items():
        assert back[f].dtype == np.float32
        np.testing.assert_array_equal(back[f], d)              # not just close: the very same floats


def _run(out: Path, *extra: str) -> int:
    return mcmt(["run", "--videos", *map(str, VIDEOS), "--out", str(out), "--max-frames", "60",
                 "--reid", "none", "--device", "cpu", "--no-progress", "-q", *extra])


def test_resumed_run_writes_the_same_outputs_as_a_clean_run(tmp_path, monkeypatch):
    import pipeline.run.detectors as detectors

    assert _run(tmp_path / "clean") == 0
    real = detectors.build_detector
    calls = {"n": 0}

    def interrupting(*args, **kwargs):
        det = real(*args, **kwargs)

        def detect(frames):
            calls["n"] += 1
            if calls["n"] > 25:                  # Ctrl-C after 25 steps of both cameras
                raise KeyboardInterrupt
            return det(frames)
        return detect

    monkeypatch.setattr(detectors, "build_detector", interrupting)
    assert _run(tmp_path / "resumed") == 130
    monkeypatch.setattr(detectors, "build_detector", real)
    assert _run(tmp_path / "resumed") == 0
    for cam in ("pets_left", "pets_right"):
        clean = (tmp_path / "clean" / "mot" / f"{cam}.txt").read_text()
        assert clean, f"no boxes in {cam}: the test would prove nothing"
        assert (tmp_path / "resumed" / "mot" / f"{cam}.txt").read_text() == clean
        assert (tmp_path / "resumed" / "cache" / cam / "dets.csv").read_bytes() == \
            (tmp_path / "clean" / "cache" / cam / "dets.csv").read_bytes()

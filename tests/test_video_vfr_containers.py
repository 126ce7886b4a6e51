"""Variable frame rate in MKV and AVI (issue 32, D11): frames take the container's times as in MP4, and the
frames the container's count promises beyond its end (its duration at the nominal rate) are not reported as
damaged frames."""
from __future__ import annotations

import logging

import pytest

from pipeline.run.video import VideoSource
from test_video import VFR_TIMES, make_video, make_vfr_video


@pytest.mark.parametrize("suffix", ["mkv", "avi"])
def test_variable_frame_rate_mkv_and_avi_use_the_container_times(tmp_path, caplog, suffix):
    path = make_vfr_video(tmp_path / f"vfr.{suffix}")
    src = VideoSource(path, "cam", offset=10.0)
    with caplog.at_level(logging.WARNING):
        frames = list(src)
    assert [f.index for f in frames] == list(range(len(VFR_TIMES)))
    assert [f.time for f in frames] == pytest.approx([10.0 + t for t in VFR_TIMES], abs=1e-3)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "variable frame rate" in warnings[0] and str(path) in warnings[0], warnings
    assert src.corrupt == 0 and src.total_frames == len(VFR_TIMES)         # its end is no damage
    again = VideoSource(path, "cam", stride=3)
    assert [f.index for f in again] == list(range(0, len(VFR_TIMES), 3)) and again.corrupt == 0


def test_a_constant_rate_avi_keeps_its_count_and_times(tmp_path):
    src = VideoSource(make_video(tmp_path / "cfr.avi", 30, fps=7.0), "cam")
    frames = list(src)
    assert len(frames) == 30 == src.total_frames and src.corrupt == 0 and src.container_times == {}
    assert [f.time for f in frames] == [f.index / 7.0 for f in frames]

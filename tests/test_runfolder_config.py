"""Bad settings stop a run before any work, with one line naming the key, the value and what is expected
(issue 32, D5 and the ranges of D12)."""
from __future__ import annotations

import pytest

from core.config import load_config
from core.errors import ConfigError
from pipeline.cli import main as mcmt
from pipeline.config import RunConfig

WRONG_TYPES = [("video.max_frames=abc", "'video.max_frames' must be an integer", "'abc'"),
               ("video.max_frames=1.5", "'video.max_frames' must be an integer", "1.5"),
               ("association.max_speed=abc", "'association.max_speed' must be a number", "'abc'"),
               ("detector.score_scale=abc", "'detector.score_scale' must be a number", "'abc'")]

OUT_OF_RANGE = ["reid.gallery_size=0", "reid.every_k_frames=0", "detector.batch=0", "detector.conf=-1",
                "tracker.match_thresh=-1", "association.min_tracklet_length=-3", "reid.thumbnails=-1",
                "tracker.track_buffer=-10", "detector.conf=.nan", "reid.batch_size=0", "detector.score_scale=0"]


@pytest.mark.parametrize("override, expected, value", WRONG_TYPES)
def test_a_wrong_type_for_a_nullable_key_names_key_value_and_type(override, expected, value):
    with pytest.raises(ConfigError) as err:
        load_config(RunConfig, None, [override])
    assert expected in str(err.value) and value in str(err.value)


@pytest.mark.parametrize("override, expected, value", WRONG_TYPES[:1] + WRONG_TYPES[2:])
def test_a_wrong_type_in_a_config_file_names_the_file(tmp_path, override, expected, value):
    key, raw = override.split("=")
    section, name = key.split(".")
    path = tmp_path / "run.yaml"
    path.write_text(f"{section}:\n  {name}: {raw}\n")
    with pytest.raises(ConfigError) as err:
        load_config(RunConfig, path)
    assert str(path) in str(err.value) and expected in str(err.value)


@pytest.mark.parametrize("override", OUT_OF_RANGE)
def test_out_of_range_settings_are_refused(override):
    key, value = override.split("=")
    with pytest.raises(ConfigError) as err:
        load_config(RunConfig, None, [override])
    assert key in str(err.value)


def test_the_defaults_and_edges_of_the_ranges_are_accepted():
    cfg = load_config(RunConfig, None, ["reid.thumbnails=0", "association.min_tracklet_length=0", "detector.conf=0",
                                        "tracker.match_thresh=1", "tracker.track_buffer=0"])
    assert cfg.reid.thumbnails == 0 and cfg.tracker.match_thresh == 1.0


@pytest.mark.parametrize("override", ["video.max_frames=abc", "reid.gallery_size=0"])
def test_mcmt_run_stops_with_one_line_before_any_work(tmp_path, capsys, override):
    out = tmp_path / "out"
    video = tmp_path / "v.mp4"
    video.write_bytes(b"not read")
    assert mcmt(["run", "--videos", str(video), "--out", str(out), "--set", override]) == 2
    err = capsys.readouterr().err
    assert override.split("=")[0] in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize("box", ["nan,10,50,100", "10,10,inf,100", "10,nan,50,nan"])
def test_search_box_must_be_finite(tmp_path, capsys, box):
    image = tmp_path / "q.jpg"
    image.write_bytes(b"never read: the box is checked first")
    assert mcmt(["search", "--run", str(tmp_path / "no-run"), "--image", str(image), "--box", box]) == 2
    err = capsys.readouterr().err
    assert "--box" in err and "finite" in err
    assert err.count("\n") == 1

"""Per-camera detection score scale (trackers/score_scale.py): a camera whose detector scores sit low
(blur, low resolution) gets the tracker's thresholds lowered in proportion; a sharp camera keeps them."""
from __future__ import annotations

import numpy as np
import pytest

from trackers import build_tracker
from trackers.config import TrackerConfig
from trackers.score_scale import FLOOR, MIN_SCORES, ScoreScale


def walkers(n_frames: int, score: float, n: int = 4) -> list[np.ndarray]:
    """``n`` people walking apart, one box each per frame, every box scored ``score``."""
    return [np.array([[60.0 * k + f, 100.0, 60.0 * k + f + 40.0, 200.0, score, 0.0] for k in range(n)])
            for f in range(n_frames)]


def test_the_factor_is_one_until_enough_scores_then_the_quantile_over_the_reference():
    s = ScoreScale(reference=0.8)
    assert s.add(np.full(MIN_SCORES - 1, 0.4)) == 1.0            # too few to judge the camera
    assert s.add(np.array([0.4])) == pytest.approx(0.4 / 0.8, abs=0.01)
    sharp = ScoreScale(reference=0.8)
    assert sharp.add(np.full(MIN_SCORES, 0.9)) == 1.0             # above the reference: never raised
    dark = ScoreScale(reference=0.8)
    assert dark.add(np.full(MIN_SCORES, 0.05)) == FLOOR           # never below the floor
    off = ScoreScale(reference=0.0)
    assert off.add(np.full(10 * MIN_SCORES, 0.2)) == 1.0


def test_the_quantile_is_the_high_end_of_the_scores_not_their_bulk():
    """Many false positives near the low threshold do not pull a sharp camera's thresholds down."""
    scores = np.concatenate([np.full(900, 0.15), np.full(100, 0.85)])
    assert ScoreScale(reference=0.8).add(scores) == 1.0


def test_the_first_scores_of_a_sharp_camera_do_not_scale_it_down():
    """A few low scores among the first ones (people far away) with the camera's usual high scores:
    the early estimate takes a higher quantile, so the scale stays 1; the same share over a long video
    is the camera's real range."""
    first = np.concatenate([np.full(MIN_SCORES - 8, 0.3), np.full(8, 0.8)])
    assert ScoreScale(reference=0.6).add(first) == 1.0
    many = np.concatenate([np.full(50 * MIN_SCORES - 400, 0.3), np.full(400, 0.8)])
    assert ScoreScale(reference=0.6).add(many) < 1.0


def test_a_camera_whose_scores_sit_low_is_tracked_with_the_scale_and_not_without():
    frames = walkers(100, score=0.35)                # below new_track_thresh 0.6 and track_high_thresh 0.5
    counts = {}
    for ref in (0.0, 0.85):
        t = build_tracker("botsort", track_high_thresh=0.5, new_track_thresh=0.6, score_reference=ref)
        outs = [t.update(d) for d in frames]
        counts[ref] = (sum(len(o) for o in outs), len({int(i) for o in outs for i in o[:, 4]}))
    assert counts[0.0] == (0, 0)
    boxes, ids = counts[0.85]
    assert ids == 4                                  # one track per person, once the scale has settled
    assert boxes >= 4 * (100 - MIN_SCORES // 4 - 3)  # tracked from shortly after the warm-up on


def test_a_sharp_camera_is_tracked_exactly_as_without_the_scale():
    frames = walkers(40, score=0.9)
    outs = {}
    for ref in (0.0, 0.85):
        t = build_tracker("bytetrack", score_reference=ref)
        outs[ref] = np.concatenate([t.update(d) for d in frames])
    np.testing.assert_array_equal(outs[0.0], outs[0.85])


def test_the_setting_is_checked():
    with pytest.raises(ValueError, match="score_reference"):
        TrackerConfig(score_reference=1.5)
    with pytest.raises(ValueError, match="score_reference"):
        build_tracker("bytetrack", score_reference=-0.1)


def test_the_crops_of_a_low_score_camera_are_embedded_with_its_scaled_score_bar():
    """reid.min_score (0.5) follows the camera's scale: without it a blurred camera whose boxes score 0.35
    would give tracklets no appearance at all."""
    from types import SimpleNamespace

    from pipeline.run.crops import CropPolicy
    from pipeline.run.runner import _select

    frames = walkers(MIN_SCORES // 4 + 5, score=0.35)
    picked = {}
    for ref in (0.0, 0.85):
        t = build_tracker("bytetrack", track_high_thresh=0.3, new_track_thresh=0.3, score_reference=ref)
        for d in frames:
            tracks = t.update(d)
        cam = SimpleNamespace(tracker=t, step=100, store=SimpleNamespace(
            embedding_state=lambda ids: (np.full(len(ids), -1000, np.int64), np.zeros(len(ids), np.int64))))
        idx, _ = _select(cam, None, frames[-1], tracks, np.full(len(tracks), 10), CropPolicy(min_score=0.5))
        picked[ref] = len(idx)
    assert picked == {0.0: 0, 0.85: 4}

"""Tracking through occlusion (trackers/occlusion.py and its use in the trackers): each rule is shown
on a scene where the tracker without it gets it wrong, and two instances never share state."""
from __future__ import annotations

import numpy as np
import pytest

from trackers import build_tracker


def box(x, y=100.0, w=40.0, h=100.0, score=0.9):
    return [x, y, x + w, y + h, score, 0.0]


def ids_of(out):
    return set(out[:, 4].astype(int).tolist())


def unit(*values):
    v = np.asarray(values, np.float32)
    return v / np.linalg.norm(v)


def test_gallery_refinds_a_person_whose_average_look_drifted():
    """Seen from the front (a), then from the side (b) long enough for the feature EMA to turn to b; comes
    out of an occlusion showing the front again, away from where motion predicts: only the gallery of
    recent features still holds a."""
    a, b = unit(1, 0, 0, 0), unit(0, 1, 0, 0)
    found = {}
    for size in (0, 30):
        t = build_tracker("botsort", gallery_size=size, appearance_every=1, track_buffer=60)
        first = None
        for f in range(30):
            out = t.update(np.array([box(100.0)]), np.array([a if f < 12 else b]))
            first = first or int(out[0, 4])
        for _ in range(8):
            t.update(np.zeros((0, 6)), np.zeros((0, 4)))
        out = t.update(np.array([box(130.0)]), np.array([a]))
        out = t.update(np.array([box(131.0)]), np.array([a]))
        found[size] = ids_of(out) == {first}
    assert found == {0: False, 30: True}


def test_observation_update_leaves_a_refound_track_as_sure_as_one_seen_throughout():
    """A walker (3 px per frame) is hidden 9 frames and comes out 10 px further on. Re-found, plain
    ByteTrack keeps the uncertainty that coasting built up (the next frames' gates stay wide, so the
    track may jump to a neighbour); with the re-update along the gap it is as sure as a track that was
    seen in every frame."""
    var = {}
    for oru in (False, True):
        t = build_tracker("bytetrack", observation_update=oru)
        for f in range(15):
            first = t.update(np.array([box(100.0 + 3 * f)]))[0, 4]
        for _ in range(9):
            t.update(np.zeros((0, 6)))
        out = t.update(np.array([box(100.0 + 3 * 14 + 10.0)]))
        assert ids_of(out) == {first}
        var[oru] = float(t.tracks.covs[0, 0, 0] + t.tracks.covs[0, 4, 4])
    seen = build_tracker("bytetrack")
    for f in range(25):
        seen.update(np.array([box(100.0 + 3 * f)]))
    steady = float(seen.tracks.covs[0, 0, 0] + seen.tracks.covs[0, 4, 4])
    assert var[True] == pytest.approx(steady, rel=0.05) and var[False] > 1.3 * steady


def test_recovery_matches_the_last_observed_box_when_the_prediction_ran_off():
    """A walker stops while hidden for four frames: the Kalman prediction runs on, the person reappears
    where they were last seen; recovery by the last observed box keeps the id."""
    kept = {}
    for thresh in (0.0, 0.5):
        t = build_tracker("bytetrack", recover_thresh=thresh)
        for f in range(12):
            out = t.update(np.array([box(100.0 + 10 * f)]))
        first = int(out[0, 4])
        for _ in range(4):
            t.update(np.zeros((0, 6)))
        out = t.update(np.array([box(210.0)]))
        out = t.update(np.array([box(210.0)]))
        kept[thresh] = ids_of(out) == {first}
    assert kept == {0.0: False, 0.5: True}


def test_no_birth_on_a_second_box_of_a_tracked_person():
    """From frame 6 the detector gives a second, slightly shifted box on one person: without the rule
    it becomes a second track (a fragment and false positives)."""
    counts = {}
    for birth_iou in (1.0, 0.7):
        t = build_tracker("bytetrack", birth_iou=birth_iou)
        seen = set()
        for f in range(12):
            rows = [box(100.0 + f)] + ([box(104.0 + f, 103.0, score=0.8)] if f >= 5 else [])
            seen |= ids_of(t.update(np.array(rows)))
        counts[birth_iou] = len(seen)
    assert counts == {1.0: 2, 0.7: 1}


def test_two_people_side_by_side_are_both_born():
    t = build_tracker("bytetrack", birth_iou=0.7)
    for _ in range(3):
        out = t.update(np.array([box(100.0), box(160.0)]))
    assert len(ids_of(out)) == 2


def test_instances_do_not_share_galleries():
    a, b = unit(1, 0, 0, 0), unit(0, 1, 0, 0)
    t1, t2 = (build_tracker("botsort", gallery_size=5, appearance_every=1) for _ in range(2))
    for _ in range(3):
        t1.update(np.array([box(100.0)]), np.array([a]))
    t2.update(np.array([box(100.0)]), np.array([b]))
    assert t1.tracks.gallery_n[0] == 3 and t2.tracks.gallery_n[0] == 1
    assert np.allclose(t2.tracks.gallery[0, 0], b) and np.allclose(t1.tracks.gallery[0, :3], a)


@pytest.mark.parametrize("bad", [{"gallery_size": -1}])
def test_bad_settings_are_refused(bad):
    with pytest.raises(ValueError):
        build_tracker("botsort", **bad)


def test_the_run_keeps_lost_tracks_for_a_time_not_a_number_of_frames():
    """tracker.frame_rate 0 (the default): the buffer follows the camera's analysed frame rate, so a
    25 fps camera and a 10 fps camera both keep a lost track 3.6 s."""
    from core.config import load_config
    from pipeline.config import RunConfig
    from pipeline.run.runner import build_tracker_for

    cfg = load_config(RunConfig, None, [])
    assert cfg.tracker.frame_rate == 0
    assert build_tracker_for(cfg, 25.0).max_lost == 90 and build_tracker_for(cfg, 10.0).max_lost == 36
    assert build_tracker_for(cfg).max_lost == cfg.tracker.track_buffer           # unknown rate: 30 fps
    fixed = load_config(RunConfig, None, ["tracker.frame_rate=30"])
    assert build_tracker_for(fixed, 10.0).max_lost == fixed.tracker.track_buffer


def test_appearance_veto_keeps_ids_when_two_people_trade_places():
    """A and B stand side by side, their boxes overlapping, then trade places between two analysed frames
    (a quick crossing, or a video analysed at a stride). Each box now fits the other's track best, and
    appearance only counts for boxes that overlap their track by half (BoT-SORT), so on overlap the ids
    swap. Each detection looks just like one track and nothing like the other: with the veto each id stays
    on its person."""
    a, b = unit(1, 0, 0, 0), unit(0, 1, 0, 0)
    kept = {}
    for veto in (0.0, 0.1):
        t = build_tracker("botsort", appearance_veto=veto, appearance_every=1)
        for _ in range(10):
            out = t.update(np.array([box(300.0), box(316.0)]), np.array([a, b]))
        id_a, id_b = (int(out[np.argmin(np.abs(out[:, 0] - x)), 4]) for x in (300.0, 316.0))
        ok = []
        for _ in range(5):
            out = t.update(np.array([box(316.0), box(300.0)]), np.array([a, b]))     # traded places
            ok.append(int(out[np.argmin(np.abs(out[:, 0] - 316.0)), 4]) == id_a and
                      int(out[np.argmin(np.abs(out[:, 0] - 300.0)), 4]) == id_b)
        kept[veto] = all(ok)
    assert kept == {0.0: False, 0.1: True}


def test_appearance_veto_leaves_one_person_alone():
    """The same person with a slightly different look from frame to frame keeps one id under the veto, beside
    a second person walking close by."""
    rng = np.random.default_rng(0)
    t = build_tracker("botsort", appearance_veto=0.1, appearance_every=1)
    ids = set()
    for f in range(40):
        look = unit(*(np.array([1.0, 0.3, 0.0, 0.2]) + rng.normal(0, 0.15, 4)))
        other = unit(*(np.array([0.2, 1.0, 0.3, 0.0]) + rng.normal(0, 0.15, 4)))
        out = t.update(np.array([box(100.0 + 4 * f), box(150.0 + 4 * f)]), np.array([look, other]))
        ids |= set(out[out[:, 0] < 100.0 + 4 * f + 25, 4].astype(int).tolist())
    assert len(ids) == 1


def _walk_with_looks(tracker, looks):
    """One box walking right (2 px per frame) whose embedding in frame f is looks[f]; returns the id per
    frame and every id the tracker reported finished."""
    ids, finished = [], []
    for f, look in enumerate(looks):
        out = tracker.update(np.array([box(100.0 + 2 * f)]), np.array([look]))
        ids.append(int(out[0, 4]))
        finished += tracker.pop_finished()
    return ids, finished


def test_switch_split_gives_a_new_id_when_the_box_starts_following_someone_else():
    """The box goes on smoothly but shows b instead of a from frame 110 (a swap that motion cannot see):
    without the split one id covers both people; with it the id ends within ``switch_count`` embedded
    frames of the change, is reported finished, and the rest goes on under a new id whose feature is b."""
    a, b = unit(1, 0.2, 0, 0), unit(0, 0.2, 1, 0)
    looks = [a] * 110 + [b] * 20
    plain, _ = _walk_with_looks(build_tracker("botsort", appearance_every=1), looks)
    assert len(set(plain)) == 1
    t = build_tracker("botsort", appearance_every=1, switch_thresh=0.3, switch_count=4)
    ids, finished = _walk_with_looks(t, looks)
    assert ids[:113] == [ids[0]] * 113 and ids[113:] == [ids[113]] * 17 and ids[113] != ids[0]
    assert finished == [ids[0]] and t.switches == 1
    assert float(t.tracks.features[0] @ b) > 0.99


def test_switch_split_waits_out_a_short_occlusion_and_changes_nothing_until_it_splits():
    """The person's crops show someone in front of them for 3 frames (fewer than switch_count): one id, the
    watch is reset, and the tracker's ids and feature are exactly those of a tracker without the watch."""
    a, b = unit(1, 0.2, 0, 0), unit(0, 0.2, 1, 0)
    looks = [a] * 110 + [b] * 3 + [a] * 10
    t = build_tracker("botsort", appearance_every=1, switch_thresh=0.3, switch_count=4)
    ids, finished = _walk_with_looks(t, looks)
    assert len(set(ids)) == 1 and finished == [] and t.switches == 0
    assert int(t.tracks.drift_n[0]) == 0
    plain = build_tracker("botsort", appearance_every=1)
    assert _walk_with_looks(plain, looks)[0] == ids
    np.testing.assert_array_equal(plain.tracks.features, t.tracks.features)


def _at_cosine(a, c, rng):
    """A unit vector at cosine c to the unit vector a, in a random direction."""
    n = rng.standard_normal(len(a)).astype(np.float32)
    n -= (n @ a) * a
    return unit(*(c * a + np.sqrt(1 - c * c) * n / np.linalg.norm(n)))


def test_switch_split_is_relative_to_the_camera_s_noise_and_waits_to_know_it():
    """The same change of look (half cosine distance 0.3 from the track) splits the track on a
    clean camera and not on a camera whose crops always lie 0.15 from their track (3 x that median is
    0.45); and nothing is split before the camera has shown SWITCH_MIN_SEEN matches."""
    from trackers.appearance_tracker import SWITCH_MIN_SEEN

    rng = np.random.default_rng(0)
    a = unit(1, 0, 0, 0, 0, 0, 0, 0)
    other = [_at_cosine(a, 0.4, rng)] * 16
    clean = [a] * 110 + other
    noisy = [_at_cosine(a, 0.7, rng) for _ in range(110)] + other
    splits = {}
    for name, looks in (("clean", clean), ("noisy", noisy), ("early", [a] * 20 + other)):
        t = build_tracker("botsort", appearance_every=1, switch_thresh=0.25, switch_count=4)
        _walk_with_looks(t, looks)
        splits[name] = t.switches
    assert splits == {"clean": 1, "noisy": 0, "early": 0}
    t = build_tracker("botsort", switch_thresh=0.25)
    assert t.switch_threshold() == np.inf and SWITCH_MIN_SEEN >= 50


def test_switch_settings_are_checked():
    from trackers.config import TrackerConfig

    with pytest.raises(ValueError, match="switch_thresh"):
        TrackerConfig(switch_thresh=1.5)
    with pytest.raises(ValueError, match="switch_count"):
        TrackerConfig(switch_count=0)
    with pytest.raises(ValueError, match="switch_scale"):
        TrackerConfig(switch_scale=-1)

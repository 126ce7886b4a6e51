"""Overlapping views (pipeline/association/overlap.py): a floor homography learned from the run joins
one person seen by two cameras at once even when the views' colours differ, and keeps look-alikes seen
at other places apart; cameras that do not overlap learn nothing. Footprints from cached boxes
(pipeline/tracklet.attach_footprints)."""
from __future__ import annotations

import numpy as np
import pytest

from pipeline.association.associate import associate_detailed, with_partner_conflicts
from pipeline.association.config import AssociationConfig
from pipeline.association.overlap import (AGREE, candidate_pairs, fit_homography, geometry, overlap_evidence,
                                          shared_points)
from pipeline.association.constraints import tracklet_times
from pipeline.tracklet import FOOTPRINTS, Tracklet, attach_footprints

# camera b sees the floor of camera a through a perspective homography (a real tilt, not a similarity)
H = np.array([[0.9, 0.12, 40.0], [-0.05, 0.7, 60.0], [0.0002, 0.0004, 1.0]])
FPS = 10


def project(h, pts):
    p = np.column_stack([pts, np.ones(len(pts))]) @ h.T
    return p[:, :2] / p[:, 2:3]


def footprints(t0, t1, start_xy, velocity, height, h=None):
    times = np.arange(t0, t1 + 1e-9, 1.0 / FPS)
    xy = np.asarray(start_xy, float) + np.outer(times - t0, velocity)
    if h is not None:
        xy = project(h, xy)
        height = height * 0.7
    return np.column_stack([times, xy, np.full(len(times), height)]).astype(np.float32)


def trk(cam, tid, t0, t1, feat, fp):
    return Tracklet(cam, tid, int(t0 * FPS), int(t1 * FPS), t0, t1, n_boxes=len(fp),
                    features=np.asarray(feat, np.float32).reshape(1, -1), weights=np.ones(1, np.float32),
                    first_box=None, last_box=None, footprints=fp)


def unit(v):
    v = np.asarray(v, np.float32)
    return v / np.linalg.norm(v)


def scene(overlap=True, seed=0):
    """Seven people in camera a at once; camera b sees them through H (overlap) or elsewhere (not).
    People 0-3 look alike in both views (seeds); 4-5 look different in b (its colours); in b a look-alike
    of person 0 stands somewhere else at the same time. Returns (tracklets, truth)."""
    rng = np.random.default_rng(seed)
    looks = [unit(rng.normal(size=32) + 1.5) for _ in range(7)]
    ts, truth = [], []
    for p in range(6):
        t0, t1 = 2.0 * p, 2.0 * p + 12.0
        start, vel = rng.uniform(50, 500, 2), rng.uniform(-25, 25, 2)
        fa = footprints(t0, t1, start, vel, 120.0)
        ts.append(trk("a", p + 1, t0, t1, unit(looks[p] + 0.05 * rng.normal(size=32)), fa))
        truth.append(p)
        b_look = looks[p] if p < 4 else unit(rng.normal(size=32))            # 4, 5: other colours in b
        if overlap:
            fb = footprints(t0 + 0.5, t1 - 0.5, start + 0.5 * vel, vel, 120.0, H)
        else:                                                                  # b sees another floor
            fb = footprints(t0 + 0.5, t1 - 0.5, rng.uniform(50, 500, 2), rng.uniform(-25, 25, 2), 84.0)
        ts.append(trk("b", p + 1, t0 + 0.5, t1 - 0.5, unit(b_look + 0.05 * rng.normal(size=32)), fb))
        truth.append(p if overlap else 10 + p)
    far = footprints(1.0, 11.0, [900.0, 900.0], [5.0, 0.0], 84.0)              # off person 0's path in b
    ts.append(trk("b", 99, 1.0, 11.0, unit(looks[0] + 0.05 * rng.normal(size=32)), far))
    truth.append(6)
    return ts, np.array(truth)


def same_partition(ids, truth) -> bool:
    return len(set(zip(ids.tolist(), truth.tolist()))) == len(set(ids.tolist())) == len(set(truth.tolist()))


CFG = AssociationConfig(threshold=0.3, link_threshold=0.4, same_camera_threshold=None)


def test_overlapping_views_join_people_whose_colours_differ_and_keep_look_alikes_apart():
    ts, truth = scene(overlap=True)
    res = associate_detailed(ts, CFG)
    assert res.stats["overlap_models"] == 1
    assert same_partition(res.global_ids, truth)
    off = associate_detailed(ts, AssociationConfig(threshold=0.3, link_threshold=0.4, same_camera_threshold=None,
                                                   overlap_geometry=False))
    ids = off.global_ids
    assert ids[8] != ids[9] and ids[10] != ids[11]       # without geometry the recoloured people stay apart


def test_the_look_alike_elsewhere_is_cannot_link():
    ts, truth = scene(overlap=True)
    ids = associate_detailed(ts, CFG).global_ids
    assert ids[-1] != ids[0] and ids[1] == ids[0]         # person 0 joined with its b view, not the look-alike


def test_cameras_that_do_not_overlap_learn_nothing():
    ts, truth = scene(overlap=False)
    on = associate_detailed(ts, CFG)
    off = associate_detailed(ts, AssociationConfig(threshold=0.3, link_threshold=0.4, same_camera_threshold=None,
                                                   overlap_geometry=False))
    assert on.stats["overlap_models"] == 0 and on.stats["overlap_pairs"] > 0
    np.testing.assert_array_equal(on.global_ids, off.global_ids)


def test_no_footprints_no_pairs():
    ts, _ = scene(overlap=True)
    for t in ts:
        t.footprints = None
    res = associate_detailed(ts, CFG)
    assert res.stats["overlap_pairs"] == 0 and res.stats["overlap_models"] == 0


def test_simultaneous_pairs_are_oriented_and_synchronised():
    ts, _ = scene(overlap=True)
    cam, start, end = tracklet_times(ts)
    i, j = candidate_pairs(ts, cam, start, end)
    geo = geometry(ts, i, j)
    assert np.all(cam[i] < cam[j])
    k = list(zip(i.tolist(), j.tolist())).index((0, 1))
    src, dst, height = geo[k]
    err = np.hypot(*(project(H, src) - dst).T) / height                   # interpolation of a straight walk
    assert err.max() < 0.01 and len(src) >= 4


def test_a_mirror_is_no_model():
    rng = np.random.default_rng(3)
    geo = []
    for _ in range(4):
        src = rng.uniform(0, 500, (10, 2))
        dst = src * [-1.0, 1.0] + [600.0, 0.0]                               # a mirror image
        geo.append((src, dst, np.full(10, 100.0)))
    assert fit_homography(geo, [0, 1, 2, 3]) is None
    for g in geo:
        g[1][:, 0] = 600.0 - g[1][:, 0]                                     # now a translation: kept
    h = fit_homography(geo, [0, 1, 2, 3])
    assert h is not None and np.allclose(project(h, geo[0][0]), geo[0][1], atol=AGREE * 100)


def test_shared_points_interpolate_the_other_view():
    fa = np.array([[0.0, 0, 0, 10], [1.0, 10, 0, 10], [2.0, 20, 0, 10], [3.0, 30, 0, 10]], np.float32)
    fb = np.array([[0.5, 100, 0, 20], [2.5, 120, 0, 40]], np.float32)
    src, dst, h = shared_points(fa, fb)
    np.testing.assert_allclose(src[:, 0], [10, 20])
    np.testing.assert_allclose(dst[:, 0], [105, 115])
    np.testing.assert_allclose(h, [25, 35])


def test_attach_footprints_maps_frames_to_time_and_keeps_at_most_some():
    t = Tracklet("c", 7, start_frame=10, end_frame=210, start_time=101.0, end_time=121.0, n_boxes=101)
    frames = np.arange(10, 211, 2)
    boxes = np.column_stack([frames, np.full(len(frames), 7), frames, frames * 0 + 20, frames + 10, frames * 0 + 80,
                             np.ones(len(frames))]).astype(np.float64)
    other = boxes.copy()
    other[:, 1] = 8
    attach_footprints([t], np.concatenate([other, boxes])[::-1])
    fp = t.footprints
    assert len(fp) == min(FOOTPRINTS, len(frames))
    assert fp[0, 0] == pytest.approx(101.0) and fp[-1, 0] == pytest.approx(121.0)
    assert np.all(np.diff(fp[:, 0]) > 0)
    np.testing.assert_allclose(fp[:, 1], (fp[:, 0] - 101.0) * 10 + 10 + 5, atol=1e-3)   # foot x = box centre
    np.testing.assert_allclose(fp[:, 2:], [[80, 60]] * len(fp))


def test_no_link_to_someone_the_other_view_shows_elsewhere():
    """Person 0's view in b ends at 11.5 s while camera a still sees them (until 12 s); at 11.8 s a look-alike
    appears in a. Linking by appearance and time, b's tracklet would hand off to the look-alike, and that
    chain then keeps person 0's two views apart (the look-alike and person 0 are seen by a at once). Person
    0's partner in a (the same person, by the floor) cannot be the look-alike, so neither can b's tracklet:
    with ``overlap_link_check`` the link is refused and every person gets their own identity."""
    ts, truth = scene(overlap=True)
    ts, truth = ts[:-1], truth[:-1]                         # without the scene's look-alike standing elsewhere
    rng = np.random.default_rng(7)
    look = unit(ts[1].features[0] + 0.03 * rng.normal(size=32))
    ts.append(trk("a", 50, 11.8, 20.0, look, footprints(11.8, 20.0, [700.0, 100.0], [-10.0, 5.0], 120.0)))
    truth = np.append(truth, 7)
    on = associate_detailed(ts, CFG)
    assert on.stats["overlap_link_conflicts"] > 0
    assert same_partition(on.global_ids, truth)
    off = associate_detailed(ts, AssociationConfig(threshold=0.3, link_threshold=0.4, same_camera_threshold=None,
                                                   overlap_link_check=False))
    assert off.global_ids[1] == off.global_ids[-1] and off.global_ids[0] != off.global_ids[1]


def test_partner_conflicts_cross_cameras_only_and_from_direct_partners():
    # tracklets: 0 (a), 1 (b) its partner; 2 (b) seen with 1 at once; 3 (a) a partner of 2
    cam = np.array([0, 1, 1, 0])
    cannot = np.zeros((4, 4), bool)
    cannot[1, 2] = cannot[2, 1] = True
    out, added = with_partner_conflicts(cannot, np.array([0, 2]), np.array([1, 3]), cam)
    assert added == 2 and out[0, 2] and out[2, 0] and out[3, 1] and out[1, 3]    # x -> what its partner cannot be
    assert not out[0, 3] and not out[0, 0]           # partners of partners (0 and 3 both in a) are not followed
    np.testing.assert_array_equal(cannot, out & cannot)                          # nothing removed, input untouched
    assert with_partner_conflicts(cannot, np.zeros(0, np.int64), np.zeros(0, np.int64), cam)[1] == 0


def test_a_track_that_switched_people_is_no_solid_partner():
    """Camera b's track follows person 0 for 7 s, then person 1 (a switch at a crossing): it agrees with
    person 0's view in a most of the time they are both seen, but is not solid (overlap.SOLID); the pairs of
    people the switch did not touch are."""
    ts, _ = scene(overlap=True)
    ts = ts[:-1]
    fa0, fa1 = ts[0].footprints, ts[2].footprints                 # people 0 (0-12 s) and 1 (2-14 s) in a
    part0 = fa0[(fa0[:, 0] >= 0.5) & (fa0[:, 0] < 7.5)]
    part1 = fa1[(fa1[:, 0] >= 7.5) & (fa1[:, 0] <= 11.5)]
    fb = np.concatenate([part0, part1]).copy()
    fb[:, 1:3] = project(H, fb[:, 1:3].astype(float))
    fb[:, 3] *= 0.7
    ts[1] = trk("b", 1, 0.5, 11.5, ts[1].features[0], fb.astype(np.float32))
    cam, start, end = tracklet_times(ts)
    dist = np.full((len(ts), len(ts)), 0.5)
    si, sj, solid, diff, stats = overlap_evidence(ts, cam, start, end, dist, link_threshold=0.6)
    pairs = {(int(a), int(b)): bool(s) for a, b, s in zip(si, sj, solid)}
    assert pairs.get((0, 1)) is False                             # agrees, but not solid
    assert (2, 3) in pairs and all(pairs.get((2 * p, 2 * p + 1)) for p in (2, 3, 4, 5))

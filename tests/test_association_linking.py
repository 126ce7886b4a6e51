"""Calibrated thresholds, linking of consecutive tracklets, refinement and the memory of the
constraints (pipeline/association/: calibration.py, linking.py, clustering.py, constraints.py)."""
from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest

from pipeline.association.associate import associate, associate_detailed
from pipeline.association.calibration import calibrate, gallery_half_distances
from pipeline.association.clustering import refine_labels
from pipeline.association.config import AssociationConfig
from pipeline.association.constraints import (gap_pairs, motion_blocked_pairs, motion_cannot_link,
                                              overlapping_pairs, tracklet_times)
from pipeline.association.linking import chain_labels, match_pairs, side_mask
from pipeline.tracklet import Tracklet


def unit(angle: float, dim: int = 16) -> np.ndarray:
    v = np.zeros(dim, np.float32)
    v[0], v[1] = math.cos(angle), math.sin(angle)
    return v


def trk(cam, tid, t0, t1, feat, first=None, last=None, n=20):
    f = np.atleast_2d(np.asarray(feat, np.float32))
    return Tracklet(cam, tid, int(t0 * 10), int(t1 * 10), float(t0), float(t1), n_boxes=n, features=f,
                    weights=np.ones(len(f), np.float32),
                    first_box=None if first is None else np.asarray(first, np.float32),
                    last_box=None if last is None else np.asarray(last, np.float32))


def crowd(n_people=12, seed=0, spread=0.25, view=0.6, cams=("a", "b")):
    """People walking a -> b -> a ..., several at once in one camera; features of one look plus noise.
    Returns (tracklets, truth)."""
    rng = np.random.default_rng(seed)
    looks = rng.normal(size=(n_people, 32)) + 2.0                # a shared component: cos ~0.8
    out, truth, counters = [], [], dict.fromkeys(cams, 0)
    for p in range(n_people):
        t = rng.uniform(0, 20)
        for k in range(4):
            cam = cams[k % len(cams)]
            f = looks[p] + spread * rng.normal(size=(4, 32)) + view * rng.normal(size=(1, 32))
            counters[cam] += 1
            x_in, x_out = (0.95, 0.05) if k % 2 else (0.05, 0.95)  # walk across the view
            y_in, y_out = rng.uniform(150, 350, 2)                # feet inside the view (bottom at 480)
            out.append(trk(cam, counters[cam], t, t + 8, f / np.linalg.norm(f, axis=1, keepdims=True),
                           first=[x_in * 640 - 20, y_in - 100, x_in * 640 + 20, y_in],
                           last=[x_out * 640 - 20, y_out - 100, x_out * 640 + 20, y_out]))
            truth.append(p)
            t += 8 + rng.uniform(1, 3)
    return out, np.array(truth)


# ---------------------------------------------------------------- calibration

def test_calibrated_threshold_lies_between_positive_and_negative_distances():
    rng = np.random.default_rng(0)
    for lo, hi in ((0.3, 0.8), (0.05, 0.3)):                    # a strong and a weak model's scale
        t = 200
        cam = np.zeros(t, np.int64)
        start = np.arange(t) * 0.5                               # each overlaps the next few: negatives
        end = start + 2.0
        dist = rng.uniform(lo, hi, size=(t, t)).astype(np.float32)
        dist = (dist + dist.T) / 2
        positives = rng.uniform(0.0, lo / 3, size=50)
        cal = calibrate(dist, overlapping_pairs(cam, start, end), AssociationConfig(), positives)
        assert cal.negatives > 100
        assert positives.max() < cal.threshold <= cal.link_threshold < np.median(dist)
        assert cal.same_camera_threshold == pytest.approx(AssociationConfig().same_camera_ratio * cal.threshold)
    fixed = calibrate(dist, overlapping_pairs(cam, start, end),
                      AssociationConfig(threshold=0.4, link_threshold=0.2, same_camera_threshold=None))
    assert (fixed.threshold, fixed.link_threshold, fixed.same_camera_threshold) == (0.4, 0.2, np.inf)


def test_clustering_threshold_capped_when_few_negatives_leave_no_low_tail():
    """A run whose co-visible people all look clearly different has no low tail of negatives: its 1 %
    quantile (0.40 here) would merge look-alikes that were never seen together; the cap at half the
    10 % quantile holds. With a low tail the 1 % quantile itself stays the threshold."""
    from pipeline.association.calibration import TAIL_QUANTILE, TAIL_RATIO

    t = 120
    cam, start = np.zeros(t, np.int64), np.arange(t, dtype=float)
    end = start + 1.5                                            # each overlaps the next: 119 negatives
    pairs = overlapping_pairs(cam, start, end)
    for low_tail in (False, True):
        vals = np.linspace(0.4, 0.8, len(pairs[0]))
        if low_tail:
            vals[:5] = [0.05, 0.06, 0.07, 0.08, 0.09]
        dist = np.full((t, t), 0.9, np.float32)
        dist[pairs] = dist[pairs[::-1]] = vals
        cal = calibrate(dist, pairs, AssociationConfig())
        q01, q10 = np.quantile(vals, [0.01, TAIL_QUANTILE])
        expected = min(q01, TAIL_RATIO * q10)
        assert cal.threshold == pytest.approx(expected, abs=1e-6)
        assert (cal.threshold < q01 - 1e-3) != low_tail          # capped only without a low tail
        assert cal.same_camera_threshold == pytest.approx(AssociationConfig().same_camera_ratio * cal.threshold)


def test_calibration_follows_the_model_scale_end_to_end():
    """The same footage seen by a model whose distances are half as large: the thresholds halve too,
    and the identities are the same (no threshold tuned for one model)."""
    tr, truth = crowd()
    r1 = associate_detailed(tr, AssociationConfig(attribute_weight=0))
    squeezed = []
    for t in tr:                                                 # [f, e] / sqrt 2: every 1 - cos exactly halved
        common = np.broadcast_to(np.eye(1, t.features.shape[1], dtype=np.float32), t.features.shape)
        f = np.concatenate([t.features, common], axis=1) / math.sqrt(2)
        squeezed.append(trk(t.camera, t.track_id, t.start_time, t.end_time, f, t.first_box, t.last_box))
    r2 = associate_detailed(squeezed, AssociationConfig(attribute_weight=0))
    assert r2.stats["link_threshold"] == pytest.approx(r1.stats["link_threshold"] / 2, rel=0.01)
    assert r2.stats["threshold"] == pytest.approx(r1.stats["threshold"] / 2, rel=0.01)
    assert r2.global_ids.tolist() == r1.global_ids.tolist()
    assert r1.stats["calibration"]["source"].startswith("tracklets overlapping in time")


def test_gallery_halves_are_free_positives():
    a = trk("a", 1, 0, 1, np.stack([unit(0.0), unit(0.1), unit(0.0), unit(0.1)]))
    small = trk("a", 2, 0, 1, np.stack([unit(0.0)] * 3))       # too few features: no pair
    d = gallery_half_distances([a, small])
    assert d.shape == (1,)
    assert d[0] == pytest.approx(1 - math.cos(0.1), abs=1e-5)


def test_too_few_tracklets_use_the_fallback():
    tr = [trk("a", 1, 0, 5, unit(0.0)), trk("b", 1, 6, 9, unit(0.3)), trk("b", 2, 20, 25, unit(1.2))]
    r = associate_detailed(tr, AssociationConfig())
    assert r.stats["calibration"]["source"].startswith("fixed fallback")
    assert r.stats["link_threshold"] == 0.3
    assert r.global_ids.tolist() == [1, 1, 2]                   # 1 - cos 0.3 = 0.045 linked, 1 - cos 1.2 = 0.64 not


# ---------------------------------------------------------------- linking

def test_match_pairs_maximises_summed_margin_one_to_one():
    # ends 0, 1; starts 2, 3. 0->2 alone is best (0.5), but 0->3 + 1->2 sum to 0.7.
    nxt = match_pairs(np.array([0, 0, 1]), np.array([2, 3, 2]), np.array([0.5, 0.4, 0.3]), 4)
    assert nxt.tolist() == [3, 2, -1, -1]
    assert match_pairs(np.array([0]), np.array([1]), np.array([-0.1]), 2).tolist() == [-1, -1]
    assert chain_labels(np.array([2, -1, 3, -1])).tolist() == [0, 1, 0, 0]


def test_gap_pairs_and_overlapping_pairs_match_brute_force():
    rng = np.random.default_rng(1)
    cam = rng.integers(0, 3, 300)
    start = rng.uniform(0, 500, 300)
    end = start + rng.uniform(0, 20, 300)
    i, j = gap_pairs(cam, start, end, 7.0)
    gap = start[None, :] - end[:, None]
    assert set(zip(i.tolist(), j.tolist())) == set(zip(*np.nonzero((gap > 0) & (gap <= 7.0))))
    i, j = overlapping_pairs(cam, start, end)
    ov = (start[:, None] <= end[None, :]) & (start[None, :] <= end[:, None]) & (cam[:, None] == cam[None, :])
    assert set(zip(i.tolist(), j.tolist())) == set(zip(*np.nonzero(np.triu(ov, 1))))


def test_handoffs_are_linked_and_the_crowd_is_resolved():
    tr, truth = crowd(n_people=12, seed=3)
    r = associate_detailed(tr, AssociationConfig(attribute_weight=0))
    ids = r.global_ids
    assert r.stats["links"] > 0.8 * 3 * 12                       # 3 handoffs per person
    pure = sum(len(set(truth[ids == g])) == 1 for g in np.unique(ids)) / len(np.unique(ids))
    assert pure > 0.9
    assert len(np.unique(ids)) <= 1.3 * 12
    none = associate(tr, AssociationConfig(enabled=False))
    assert len(np.unique(none)) == len(tr)


def test_side_mask_and_zones_reject_the_far_side():
    pts = np.array([[0.02, 0.5], [0.97, 0.5], [0.5, 0.5], [0.03, 0.98], [np.nan, 0.5]])
    assert side_mask(pts).tolist() == [1, 2, 16, 1 | 8, 0]
    # a -> b handoffs all leave a on its right side and enter b on its right side; a lookalike that
    # left a on the LEFT side just before a b-start has no link, although it is the closest in appearance
    tr, truth = crowd(n_people=10, seed=5)
    far = trk("a", 99, 200, 205, tr[0].features, first=[300, 200, 340, 300], last=[0, 200, 40, 300])
    look = tr[0].features + 0.05 * np.random.default_rng(0).normal(size=tr[0].features.shape)
    later = trk("b", 99, 206, 212, look / np.linalg.norm(look, axis=1, keepdims=True),
                first=[0, 200, 40, 300], last=[600, 200, 640, 300])
    bottom = [0, 380, 40, 480]                                   # someone near the camera: the view's bottom
    tr += [trk(c, 98, 900, 910, unit(2.0, 32), first=bottom, last=bottom) for c in "ab"]
    r = associate_detailed([*tr, far, later], AssociationConfig(attribute_weight=0, zones=True, threshold=0))  # links
    assert r.stats["zone_models"] >= 1
    assert r.global_ids[-2] != r.global_ids[-1]
    r = associate_detailed([*tr, far, later], AssociationConfig(attribute_weight=0, zones=False, threshold=0))
    assert r.global_ids[-2] == r.global_ids[-1]                  # without zones the lookalike is linked


def test_mutual_links_take_only_unambiguous_handoffs_of_two_cameras():
    from pipeline.association.linking import mutual_links
    # ends 0, 1 (camera a) and 4 (camera b); starts 2, 3 (camera b), 5 (camera a)
    cam = np.array([0, 0, 1, 1, 1, 0])
    i = np.array([0, 0, 1, 1, 4])
    j = np.array([2, 3, 2, 3, 5])
    d = np.array([0.30, 0.50, 0.45, 0.31, 0.35])
    none = np.full(6, -1)
    nxt, added = mutual_links(i, j, d, none, cam, cap=0.4)
    assert nxt.tolist() == [2, 3, -1, -1, 5, -1] and added == 3
    nxt, _ = mutual_links(i, j, d, none, cam, cap=0.33)         # 4 -> 5 is above the cap
    assert nxt.tolist() == [2, 3, -1, -1, -1, -1]
    d2 = np.array([0.30, 0.50, 0.31, 0.38, 0.35])               # start 2: ends 0 and 1 within 0.02
    nxt, _ = mutual_links(i, j, d2, none, cam, cap=0.4)
    assert nxt[:2].tolist() == [-1, -1] and nxt[4] == 5
    linked = np.array([2, -1, -1, -1, -1, -1])                  # 0 -> 2 linked before: 1 -> 3 is free to go
    nxt, added = mutual_links(i, j, d2, linked, cam, cap=0.4)
    assert nxt.tolist() == [2, 3, -1, -1, 5, -1] and added == 2
    same = mutual_links(i, j, d, none, np.zeros(6, np.int64), cap=0.4)[0]   # one camera: never
    assert (same == -1).all()
    ok = np.array([False, True, True, True, True])              # zones refuse 0 -> 2 (0 -> 3 is above the cap)
    nxt, _ = mutual_links(i, j, d, none, cam, cap=0.4, ok=ok)
    assert nxt.tolist() == [-1, 3, -1, -1, 5, -1]


def test_mutual_links_need_known_negatives():
    from pipeline.association.calibration import SOURCE_ALL, Calibration
    known = Calibration(0.3, 0.2, 0.03, 50, "tracklets overlapping in time (same camera)",
                        {"q01": 0.3, "q05": 0.4, "q10": 0.5, "q50": 0.7}, 0.05, 0.0, 0.3)
    assert known.known_negative_quantile(0.05) == 0.4
    with pytest.raises(KeyError):
        known.known_negative_quantile(0.07)                     # not a reported quantile: an error, not "off"
    guessed = Calibration(0.3, 0.2, 0.03, 50, SOURCE_ALL, known.negative_quantiles, 0.05, 0.0, 0.3)
    assert guessed.known_negative_quantile(0.05) is None        # all pairs hold positives too: no cap
    # three tracklets: too few to calibrate; the quantiles of all pairs (a -> b 0.38, the others ~1.6) would
    # put the cap above the lone handoff a -> b, beyond the fallback link threshold 0.3: no link all the same
    a, b = trk("a", 1, 0, 10, unit(0.0)), trk("b", 1, 12, 20, unit(0.9))
    c = trk("c", 1, 100, 110, unit(2.6))
    r = associate_detailed([a, b, c], AssociationConfig(attribute_weight=0, mutual_links=True, threshold=0))
    assert r.stats["calibration"]["source"].startswith("fixed fallback")
    assert r.stats["calibration"]["negative_quantiles"]["q05"] > 1 - math.cos(0.9) > r.stats["link_threshold"]
    assert r.global_ids[0] != r.global_ids[1] and "links_mutual" not in r.stats


def test_a_handoff_beyond_the_link_threshold_is_linked_when_mutually_nearest():
    # camera c: 40 people at overlapping times, spread out (the free negatives: link threshold capped
    # by the middle of the positive and negative medians, far below their 5 % quantile); camera a's A
    # leaves at t 210, camera b's B starts at t 212, between the two: a degraded camera's handoff
    rng = np.random.default_rng(4)
    filler = []
    for k in range(40):
        f = 0.5 + rng.normal(size=64)
        f[:2] = 0
        g = f + 0.05 * rng.normal(size=(4, 64))
        g[:, :2] = 0
        filler.append(trk("c", k, k * 2.0, k * 2.0 + 5, g / np.linalg.norm(g, axis=1, keepdims=True)))
    stats = associate_detailed(filler, AssociationConfig(attribute_weight=0)).stats
    link, q05 = stats["link_threshold"], stats["calibration"]["negative_quantiles"]["q05"]
    assert link + 0.1 < q05
    angle = math.acos(1 - (link + q05) / 2)
    a, b = trk("a", 1, 200, 210, unit(0.0, 64)), trk("b", 1, 212, 220, unit(angle, 64))
    mutual = AssociationConfig(attribute_weight=0, mutual_links=True)
    on = associate_detailed([a, b, *filler], mutual)
    assert on.global_ids[0] == on.global_ids[1] and on.stats["links_mutual"] == 1
    off = associate([a, b, *filler], AssociationConfig(attribute_weight=0))            # the default: off
    assert off[0] != off[1]
    # a second person leaving camera a at the same time, as close to B: no evidence, no link
    a2 = trk("a", 2, 201, 209.5, unit(2 * angle + 0.01, 64))
    ids = associate([a, b, a2, *filler], mutual)
    assert ids[1] not in (ids[0], ids[2])


# ---------------------------------------------------------------- constraints hold in every stage

@pytest.mark.parametrize("cfg", [AssociationConfig(), AssociationConfig(refine=True, threshold=0.6),
                                 AssociationConfig(link_threshold=0.8, same_camera_window=20)])
def test_same_camera_overlap_and_impossible_moves_never_share_an_id(cfg):
    rng = np.random.default_rng(7)
    people = rng.normal(size=(30, 16)) + 1.5
    tr = []
    for i in range(400):
        p = rng.integers(30)
        f = people[p] + 0.5 * rng.normal(size=(3, 16))
        t0 = rng.uniform(0, 300)
        x, x2 = rng.uniform(0, 1800, 2)
        tr.append(trk(f"c{rng.integers(3)}", i, t0, t0 + rng.uniform(1, 15), f / np.linalg.norm(f, axis=1, keepdims=True),
                      first=[x, 400, x + 50, 500], last=[x2, 400, x2 + 50, 500]))
    ids = associate(tr, cfg)
    cam, start, end = tracklet_times(tr)
    fast = motion_cannot_link(tr, cam, start, end, 2.0, 1.0)
    same = (ids[:, None] == ids[None, :]) & ~np.eye(len(tr), dtype=bool)
    overlap = (start[:, None] <= end[None, :]) & (start[None, :] <= end[:, None]) & (cam[:, None] == cam[None, :])
    assert not (same & overlap).any()
    assert not (same & fast).any()
    assert len(np.unique(ids)) < len(tr)


def test_refinement_moves_to_the_closer_cluster_and_never_breaks_a_constraint():
    rng = np.random.default_rng(2)
    for _ in range(20):
        t = 60
        x = rng.normal(size=(t, 2))
        d = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1)).astype(np.float32)
        cannot = np.triu(rng.uniform(size=(t, t)) < 0.05, 1)
        cannot = cannot | cannot.T
        labels = rng.integers(0, 6, t)
        for k in np.flatnonzero(cannot.any(1)):                  # start from a labelling without violations
            while (cannot[k] & (labels == labels[k])).any():
                labels[k] = rng.integers(0, 1000)
        new, moves = refine_labels(d, cannot, labels, threshold=10.0)
        assert not (cannot & (new[:, None] == new[None, :])).any()
        assert moves > 0
    # hand-made: item 2 sits in cluster 0 but is next to cluster 1
    d = np.array([[0, .1, .9, .9], [.1, 0, .9, .9], [.9, .9, 0, .1], [.9, .9, .1, 0]], np.float32)
    new, moves = refine_labels(d, np.zeros((4, 4), bool), np.array([0, 0, 0, 1]), threshold=0.5)
    assert moves == 1 and new[2] == new[3] != new[0]
    blocked = np.zeros((4, 4), bool)
    blocked[2, 3] = blocked[3, 2] = True
    assert refine_labels(d, blocked, np.array([0, 0, 0, 1]), threshold=0.5)[1] == 0


# ---------------------------------------------------------------- memory and re-entry

def test_motion_constraint_memory_does_not_grow_with_t_squared():
    """20,000 tracklets over two hours: a (T, T) bool would be 400 MB, the old (T, T, 2) float64 6.4 GB."""
    rng = np.random.default_rng(0)
    t = 20_000
    start = np.sort(rng.uniform(0, 7200, t))
    end = start + rng.uniform(1, 20, t)
    cam = rng.integers(0, 6, t)
    x = rng.uniform(0, 1800, (t, 2))
    tr = [Tracklet(f"c{c}", i, 0, 1, s, e, first_box=np.array([a, 400, a + 50, 500], np.float32),
                   last_box=np.array([b, 400, b + 50, 500], np.float32))
          for i, (c, s, e, (a, b)) in enumerate(zip(cam, start, end, x))]
    tracemalloc.start()
    i, j = motion_blocked_pairs(tr, cam, start, end, 2.0, 1.0)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 60 * 2**20
    assert len(i) > 0
    gap = start[j] - end[i]
    assert (gap > 0).all() and (cam[i] == cam[j]).all()


def test_reentry_joined_on_strong_evidence_only():
    # camera a: A leaves (t 0-10), B passes (t 15-20), A comes back at t 60, a lookalike C at t 100;
    # camera b sees 40 people at overlapping times (the free negatives that calibrate the thresholds)
    rng = np.random.default_rng(4)
    filler = []
    for k in range(40):
        f = rng.normal(size=16) + 1.0
        filler.append(trk("b", k, k * 2.0, k * 2.0 + 5, f / np.linalg.norm(f)))
    a_first, b_other, a_back = trk("a", 1, 0, 10, unit(0.0)), trk("a", 2, 15, 20, unit(1.2)), trk("a", 3, 60, 70, unit(0.02))
    r = associate_detailed([a_first, b_other, a_back, *filler], AssociationConfig(attribute_weight=0))
    ids = r.global_ids
    same_cam, merge = r.stats["same_camera_threshold"], r.stats["threshold"]
    assert same_cam < merge
    assert ids[0] == ids[2]                                      # the re-entry keeps its id
    assert ids[1] != ids[0]
    # C is as close to A as a cross-camera merge allows, but not as close as one camera requires
    angle = math.acos(1 - (same_cam + merge) / 2)
    c_same = trk("a", 4, 100, 110, unit(angle))
    c_other = trk("c", 1, 100, 110, unit(angle))
    ids = associate([a_first, c_same, *filler], AssociationConfig(attribute_weight=0))
    assert ids[0] != ids[1]
    ids = associate([a_first, c_other, *filler], AssociationConfig(attribute_weight=0))
    assert ids[0] == ids[1]


def test_thresholds_recorded_in_run_json_and_identities_summary(tmp_path):
    """``mcmt associate`` path: the calibrated thresholds land in identities.json's summary (shown by
    the report) and in run.json."""
    import json

    from pipeline.outputs.write import associate_and_write, write_run_file
    from pipeline.runfolder.cache import CameraCache
    from pipeline.config import RunConfig
    from pipeline.run.config import OutputConfig

    tr, _ = crowd(n_people=8, seed=1)
    cfg = RunConfig(output=OutputConfig(report=False))
    cameras = [{"name": c, "video": f"{c}.mp4", "fps": 10.0} for c in ("a", "b")]
    write_run_file(tmp_path, cameras, cfg, {"stats": {}})
    for cam in ("a", "b"):
        cache = CameraCache(tmp_path, cam)
        cache.start_track_stage("k")
        mine = [t for t in tr if t.camera == cam]
        rows = [[t.start_frame, t.track_id, *t.first_box, 0.9] for t in mine]
        np.savetxt(cache.boxes, np.array(rows), fmt=["%d"] + ["%.6g"] * 6, delimiter=",")
        cache.finish_track_stage("k", mine, {}, {})
    summary = associate_and_write(tmp_path, cfg, cameras)
    shown = json.loads((tmp_path / "identities.json").read_text())["summary"]["association_thresholds"]
    assert shown == summary["association_thresholds"]
    assert 0 < shown["merge"] <= shown["link"] and shown["same_camera"] == pytest.approx(
        shown["merge"] * AssociationConfig().same_camera_ratio, abs=1e-4)
    assert "overlapping in time" in shown["calibrated_from"]
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["association"]["thresholds"] == shown
    assert run["association"]["calibration"]["negatives"] > 0
    assert run["association"]["handovers"] == 0                    # no track taken over in one frame here


def test_a_chain_never_joins_two_incompatible_tracklets():
    from pipeline.association.linking import split_conflicts
    # chain 0 -> 1 -> 2 -> 3; 0 and 2 can never be one person; the link 1 -> 2 is the weakest
    nxt = np.array([1, 2, 3, -1])
    cannot = np.zeros((4, 4), bool)
    cannot[0, 2] = cannot[2, 0] = True
    out, cuts = split_conflicts(nxt, cannot, np.array([0.5, 0.1, 0.4, np.inf]))
    assert out.tolist() == [1, -1, 3, -1] and cuts == 1
    out, _ = split_conflicts(nxt, cannot, np.array([0.05, 0.1, 0.4, np.inf]))
    assert out.tolist() == [-1, 2, 3, -1]
    # end to end: A leaves camera a on the left at t 10, is seen in b, and "comes back" in a at t 14
    # 1000 px away; each step alone is possible, A -> back is not (motion limit): never one id
    f = unit(0.0)
    a1 = trk("a", 1, 0, 10, f, first=[900, 300, 940, 400], last=[0, 300, 40, 400])
    b1 = trk("b", 1, 11, 13, f, first=[600, 300, 640, 400], last=[600, 300, 640, 400])
    a2 = trk("a", 2, 13.5, 20, f, first=[1000, 300, 1040, 400], last=[1000, 300, 1040, 400])
    r = associate_detailed([a1, b1, a2], AssociationConfig(link_threshold=0.3, threshold=0))
    assert r.global_ids[0] != r.global_ids[2]


def test_zones_learned_near_the_border_accept_a_first_box_a_little_way_in():
    from pipeline.association.linking import zone_mask

    # four handoffs a -> b learned: leave a by its right side, enter b by its left side
    n = 8
    cam = np.array([0, 1] * 4)
    nxt = np.full(n, -1)
    nxt[[0, 2, 4, 6]] = [1, 3, 5, 7]
    exit_ = np.full((n, 2), 0.5)
    entry = np.full((n, 2), 0.5)
    exit_[[0, 2, 4, 6], 0] = 0.95
    entry[[1, 3, 5, 7], 0] = 0.05
    # candidates: the same exit, entering b at x = 0.2 (past the learning margin, within the acceptance)
    # and at x = 0.5 (the middle of the view: nobody walks in there)
    entry_c = np.vstack([entry, [[0.2, 0.5], [0.5, 0.5]]])
    exit_c = np.vstack([exit_, [[0.5, 0.5], [0.5, 0.5]]])
    cam_c = np.concatenate([cam, [1, 1]])
    nxt_c = np.concatenate([nxt, [-1, -1]])
    ok, models = zone_mask(np.array([0, 0]), np.array([8, 9]), nxt_c, cam_c, entry_c, exit_c)
    assert models == 1
    assert ok.tolist() == [True, False]

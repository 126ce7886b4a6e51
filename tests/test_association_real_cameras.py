"""Real cameras differ: the overlapping-views geometry must hold when appearance does not transfer
between the views (pipeline/association/motion_fit.py) and when people walk side by side
(pipeline/association/covisibility.py: one-to-one matching on a time grid)."""
from __future__ import annotations

import numpy as np

from pipeline.association.associate import associate_detailed
from pipeline.association.config import AssociationConfig
from pipeline.association.covisibility import matched_share
from tests.test_association_overlap import H, footprints, same_partition, trk, unit

CFG = AssociationConfig(threshold=0.3, link_threshold=0.4, same_camera_threshold=None)


def colour_gap_scene(overlap=True, seed=1, pairs=()):
    """Seven people in camera a; camera b sees the same floor through H (overlap) or another floor, with
    other colours for everyone (no cross-camera appearance seed). ``pairs``: extra people (start, velocity)
    in both views, placed by the caller (side by side). Returns (tracklets, truth)."""
    rng = np.random.default_rng(seed)
    ts, truth = [], []
    people = [(2.0 * p, 2.0 * p + 12.0, rng.uniform(50, 500, 2), rng.uniform(-25, 25, 2)) for p in range(7)]
    people += [(t0, t1, np.asarray(s, float), np.asarray(v, float)) for t0, t1, s, v in pairs]
    for p, (t0, t1, start, vel) in enumerate(people):
        look_a, look_b = unit(rng.normal(size=32)), unit(rng.normal(size=32))
        ts.append(trk("a", p + 1, t0, t1, look_a, footprints(t0, t1, start, vel, 120.0)))
        fb = footprints(t0 + 0.5, t1 - 0.5, start + 0.5 * vel, vel, 120.0, H) if overlap else \
            footprints(t0 + 0.5, t1 - 0.5, rng.uniform(50, 500, 2), rng.uniform(-25, 25, 2), 84.0)
        ts.append(trk("b", p + 1, t0 + 0.5, t1 - 0.5, look_b, fb))
        truth += [p, p if overlap else 100 + p]
    return ts, np.array(truth)


def test_without_appearance_seeds_the_floor_is_found_from_co_visibility_and_motion():
    ts, truth = colour_gap_scene(overlap=True)
    on = associate_detailed(ts, CFG)
    assert on.stats["overlap_models"] == 1 and on.stats["overlap_motion_models"] == 1
    assert same_partition(on.global_ids, truth)
    from dataclasses import replace
    off = associate_detailed(ts, replace(CFG, overlap_motion=False))
    assert off.stats["overlap_models"] == 0
    assert len(set(off.global_ids.tolist())) == len(ts)                 # nothing joins by appearance


def test_views_of_another_floor_get_no_motion_model():
    for seed in range(4):
        ts, truth = colour_gap_scene(overlap=False, seed=seed)
        res = associate_detailed(ts, CFG)
        assert res.stats["overlap_models"] == 0, seed
        assert len(set(res.global_ids.tolist())) == len(ts)


def side_by_side(seed=2):
    """The colour-gap scene plus two people walking together 0.1 box heights apart for 10 s, their foot
    points in b jittered by 0.1 box heights (as real boxes are); in b each
    is still nearer to their own look in a than to the other's (cosine distance 0.45 vs ~1), too far for
    appearance alone to join, near enough to break the tie that geometry leaves."""
    together = [(3.0, 13.0, [200.0, 300.0], [10.0, 4.0]), (3.0, 13.0, [212.0, 300.0], [10.0, 4.0])]
    ts, truth = colour_gap_scene(overlap=True, seed=seed, pairs=together)
    a1, b1, a2, b2 = len(ts) - 4, len(ts) - 3, len(ts) - 2, len(ts) - 1
    rng = np.random.default_rng(seed)
    for x, y in ((a1, b1), (a2, b2)):
        look, other = unit(rng.normal(size=32)), rng.normal(size=32)
        other = unit(other - (other @ look) * look)                      # orthogonal to look
        ts[x].features = look.reshape(1, -1).copy()
        ts[y].features = (0.55 * look + np.sqrt(1 - 0.55 ** 2) * other).astype(np.float32).reshape(1, -1)
        ts[y].footprints[:, 1:3] += rng.normal(0, 8.0, (len(ts[y].footprints), 2))   # foot points jitter
    return ts, truth, (a1, b1, a2, b2)


def test_people_side_by_side_are_told_apart_by_one_to_one_matching():
    ts, truth, (a1, b1, a2, b2) = side_by_side()
    dist = np.full((len(ts), len(ts)), 2.0)
    for x, y in ((a1, b1), (a2, b2)):
        dist[x, y] = dist[y, x] = 0.1
    for x, y in ((a1, b2), (a2, b1)):
        dist[x, y] = dist[y, x] = 0.9
    share, seen = matched_share(ts, np.array([a1, a1, a2, a2]), np.array([b1, b2, b1, b2]), H, dist)
    assert np.all(seen >= 15)
    assert share[0] > 0.9 and share[3] > 0.9 and share[1] < 0.1 and share[2] < 0.1
    ids = associate_detailed(ts, CFG).global_ids
    assert ids[a1] == ids[b1] and ids[a2] == ids[b2] and ids[a1] != ids[a2]
    from dataclasses import replace
    ids = associate_detailed(ts, replace(CFG, overlap_one_to_one=False)).global_ids   # the 2x margin test
    assert not (ids[a1] == ids[b1] and ids[a2] == ids[b2])               # cannot tell them apart


def test_the_longest_matched_pair_is_joined_first():
    """A tracklet of b that holds two people of a one after the other (a tracker's switch) agrees with
    both; the one matched longer takes it, the other stays apart (one camera's overlapping tracklets
    can never share an identity)."""
    ts, truth = colour_gap_scene(overlap=True, seed=3)
    long_a = ts[0]                                                        # person 0 in a, 12 s
    fp = long_a.footprints
    short_fp = footprints(float(fp[-1, 0]) - 3.0, float(fp[-1, 0]) + 2.0, [600.0, 80.0], [0.0, 0.0], 120.0)
    ts.append(trk("a", 77, float(short_fp[0, 0]), float(short_fp[-1, 0]), unit(np.ones(32)), short_fp))
    b = ts[1]                                                             # person 0 in b ... then person 77
    moved = footprints(float(b.footprints[-1, 0]) - 2.5, float(b.footprints[-1, 0]), [600.0, 80.0], [0.0, 0.0],
                       120.0, H)
    keep = b.footprints[:, 0] < moved[0, 0]
    b.footprints = np.concatenate([b.footprints[keep], moved])
    ids = associate_detailed(ts, CFG).global_ids
    assert ids[0] == ids[1] and ids[-1] != ids[1]
    from dataclasses import replace
    ids = associate_detailed(ts, replace(CFG, overlap_one_to_one=False)).global_ids   # least error first
    assert ids[0] != ids[1]

"""Cross-camera association on synthetic tracklets with hand-computed answers."""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform

from pipeline.association.distance import (attribute_disagreement, mean_feature_distance,
                                     pairwise_mean_distance, stack_galleries, topk_distance)
from pipeline.association.associate import associate, associate_detailed
from pipeline.association.config import AssociationConfig
from pipeline.association.clustering import constrained_agglomerative
from core.config import from_dict, load_config
from core.errors import ConfigError
from pipeline.tracklet import Tracklet


def vec(dist_from_axis: float, dim: int = 8) -> np.ndarray:
    """Unit vector whose cosine distance to e1 is ``dist_from_axis`` (in the e1-e2 plane)."""
    th = math.acos(1.0 - dist_from_axis)
    v = np.zeros(dim, np.float32)
    v[0], v[1] = math.cos(th), math.sin(th)
    return v


def trk(cam, tid, t0, t1, feat, n=20, attrs=None, names=()):
    f = np.atleast_2d(np.asarray(feat, np.float32))
    return Tracklet(cam, tid, int(t0 * 10), int(t1 * 10), float(t0), float(t1), n_boxes=n,
                    features=f, weights=np.ones(len(f), np.float32),
                    attributes=None if attrs is None else np.asarray(attrs, np.float32),
                    attribute_names=tuple(names))


def same_partition(a, b) -> bool:
    pairs = set(zip(np.asarray(a).tolist(), np.asarray(b).tolist()))
    return len(pairs) == len(set(np.asarray(a).tolist())) == len(set(np.asarray(b).tolist()))


def clus(**kw) -> AssociationConfig:
    """The clustering stage alone, as before linking existed: no linking of consecutive tracklets and
    one camera's tracklets joined within the cross-camera threshold unless said otherwise."""
    kw.setdefault("same_camera_threshold", None)
    return AssociationConfig(link_window=0, **kw)


# ---------------------------------------------------------------- clustering core

@pytest.mark.parametrize("method", ["average", "single", "complete"])
def test_unconstrained_clustering_equals_scipy(method):
    rng = np.random.default_rng(3)
    for _ in range(5):
        x = rng.normal(size=(120, 4))
        d = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
        thr = float(np.quantile(d, 0.15))
        ref = fcluster(linkage(squareform(d, checks=False), method=method), thr, criterion="distance")
        got = constrained_agglomerative(d, None, thr, method)
        assert same_partition(ref, got)


def test_linkage_on_a_chain_hand_computed():
    # A-B and B-C at 0.2, A-C at 1 - cos(2 acos 0.8) = 0.72; average(AB, C) = 0.46.
    tr = [trk("c1", 1, 0, 1, vec(0.0)), trk("c2", 1, 2, 3, vec(0.2)),
          trk("c3", 1, 4, 5, np.array([[0.8 * 0.8 - 0.6 * 0.6, 2 * 0.8 * 0.6, 0, 0, 0, 0, 0, 0]]))]
    d = mean_feature_distance(*stack_galleries(tr))
    assert d[0, 2] == pytest.approx(0.72, abs=1e-5)
    ids = {m: associate(tr, clus(threshold=0.3, linkage=m, attribute_weight=0)).tolist()
           for m in ("single", "average", "complete")}
    assert ids["single"] == [1, 1, 1]
    assert ids["average"] == [1, 1, 2]
    assert ids["complete"] == [1, 1, 2]
    assert associate(tr, clus(threshold=0.47, linkage="average")).tolist() == [1, 1, 1]


def test_threshold_discovers_number_of_people():
    # two pairs: d(A,B) = 0.1, d(C,D) = 0.3, pairs far apart (C, D near -e1 / e3)
    e3 = np.zeros(8, np.float32); e3[2] = 1
    c_feat = e3
    d_feat = np.zeros(8, np.float32); d_feat[2], d_feat[3] = 0.7, math.sqrt(1 - 0.49)
    tr = [trk("c1", 1, 0, 5, vec(0.0)), trk("c2", 1, 10, 15, vec(0.1)),
          trk("c1", 2, 20, 25, c_feat), trk("c2", 2, 30, 35, d_feat)]
    cfg = lambda t: clus(threshold=t, attribute_weight=0)  # noqa: E731
    assert associate(tr, cfg(0.05)).tolist() == [1, 2, 3, 4]
    assert associate(tr, cfg(0.2)).tolist() == [1, 1, 2, 3]
    assert associate(tr, cfg(0.35)).tolist() == [1, 1, 2, 2]
    assert associate(tr, cfg(1.01)).tolist() == [1, 1, 1, 1]
    assert associate(tr, clus(enabled=False)).tolist() == [1, 2, 3, 4]


def test_ids_numbered_by_first_appearance():
    tr = [trk("c2", 7, 50, 60, vec(0.0)), trk("c1", 3, 0, 10, vec(1.0)), trk("c1", 4, 20, 30, vec(0.0))]
    assert associate(tr, clus(threshold=0.1)).tolist() == [2, 1, 2]


# ---------------------------------------------------------------- cannot-link

def test_same_camera_overlap_is_never_merged():
    f = vec(0.0)
    tr = [trk("c1", 1, 0, 10, f), trk("c1", 2, 5, 15, f), trk("c2", 1, 20, 30, f), trk("c1", 3, 40, 50, f)]
    ids = associate(tr, clus(threshold=0.5))
    assert ids[0] != ids[1]                         # identical look, same camera, same time
    assert ids.max() == 2                           # c2 and the later c1 track join one of them
    r = associate_detailed(tr, clus(threshold=0.5))
    assert r.stats["cannot_link_pairs"] == 1


def test_same_camera_threshold_limits_reentry_merges():
    # c1 sees A (t 0-10) and, later, B (t 20-30) at distance 0.3; c2 sees someone at 0.15 from both.
    tr = [trk("c1", 1, 0, 10, vec(0.0)), trk("c1", 2, 20, 30, vec(0.3)), trk("c2", 1, 40, 50, vec(0.15))]
    loose = clus(threshold=0.4, attribute_weight=0)
    assert associate(tr, loose).tolist() == [1, 1, 1]           # the c2 tracklet bridges A and B
    strict = clus(threshold=0.4, attribute_weight=0, same_camera_threshold=0.2)
    r = associate_detailed(tr, strict)
    ids = r.global_ids.tolist()
    assert ids[0] != ids[1]
    assert ids[2] in (ids[0], ids[1])  # neither directly nor via c2
    assert r.stats["same_camera_blocked"] == 1
    # a re-entry close enough in appearance is still joined
    tr[1] = trk("c1", 2, 20, 30, vec(0.1))
    assert associate(tr, strict).tolist() == [1, 1, 1]
    with pytest.raises(ValueError, match="same_camera_threshold"):
        clus(same_camera_threshold=-0.1)


def test_same_camera_join_needs_a_possible_move():
    # c1: A walks out at x=100 (t 0-10); B appears at x=600 one second later; C at x=600 after 20 s.
    # Boxes are 100 px tall: 500 px in 1 s is 5 heights/s (impossible), in 20 s 0.25 heights/s.
    def boxed(t, x_end, x_start):
        t.last_box = np.array([x_end - 20, 200, x_end + 20, 300], np.float32)
        t.first_box = np.array([x_start - 20, 200, x_start + 20, 300], np.float32)
        return t
    a = boxed(trk("c1", 1, 0, 10, vec(0.0)), 100, 50)
    b = boxed(trk("c1", 2, 11, 15, vec(0.05)), 650, 600)
    c = boxed(trk("c1", 3, 30, 40, vec(0.05)), 650, 600)
    cfg = clus(threshold=0.3, attribute_weight=0, max_speed=2.0, speed_slack=1.0)
    r = associate_detailed([a, b], cfg)
    assert r.global_ids.tolist() == [1, 2]
    assert r.stats["motion_blocked"] == 1
    assert associate([a, c], cfg).tolist() == [1, 1]                  # a re-entry 20 s later is possible
    assert associate([a, b], replace(cfg, max_speed=None)).tolist() == [1, 1]   # limit off: joined
    b.first_box = None                                                 # boxes unknown: never blocked
    assert associate([a, b], cfg).tolist() == [1, 1]
    other = trk("c2", 1, 11, 15, vec(0.05))                            # other cameras are not limited
    other.first_box, other.last_box = c.first_box, c.last_box
    assert associate([a, other], cfg).tolist() == [1, 1]
    with pytest.raises(ValueError, match="max_speed"):
        clus(max_speed=-1.0)


def test_cannot_link_honoured_at_scale():
    rng = np.random.default_rng(0)
    people = rng.normal(size=(40, 32))
    tr = []
    for i in range(600):
        p = rng.integers(40)
        f = people[p] + 0.8 * rng.normal(size=(4, 32))
        t0 = rng.uniform(0, 300)
        tr.append(trk(f"c{rng.integers(4)}", i, t0, t0 + rng.uniform(1, 30),
                      f / np.linalg.norm(f, axis=1, keepdims=True)))
    for link in ("average", "single"):
        ids = associate(tr, clus(threshold=0.6, linkage=link))
        assert ids.min() == 1
        assert set(ids.tolist()) == set(range(1, ids.max() + 1))
        for g in np.unique(ids):
            m = [tr[i] for i in np.flatnonzero(ids == g)]
            for a in range(len(m)):
                for b in range(a + 1, len(m)):
                    assert not (m[a].camera == m[b].camera and m[a].overlaps_in_time(m[b]))


# ---------------------------------------------------------------- short tracklets

def _short_setup():
    # X and Y are 0.6 apart; S (3 boxes) sits between them, 0.16 from each.
    x, y = vec(0.0), vec(0.6)
    s = vec(1 - math.cos(math.acos(0.4) / 2))
    return [trk("c1", 1, 0, 10, x), trk("c2", 1, 20, 30, y), trk("c3", 1, 40, 41, s, n=3)]


def test_short_tracklet_policies():
    tr = _short_setup()
    base = dict(threshold=0.3, linkage="single", min_tracklet_length=5, attribute_weight=0)
    keep = associate_detailed(tr, clus(**base, short_tracklets="keep"))
    assert keep.global_ids.tolist() == [1, 1, 1]        # the short one bridges two people
    assert not keep.flagged.any()
    flag = associate_detailed(tr, clus(**base, short_tracklets="flag"))
    assert flag.global_ids.tolist() == [1, 1, 1]
    assert flag.flagged.tolist() == [False, False, True]
    merge = associate_detailed(tr, clus(**base, short_tracklets="merge"))
    assert merge.global_ids.tolist() in ([1, 2, 1], [1, 2, 2])   # attached, but no bridge
    assert merge.flagged.tolist() == [False, False, True]
    drop = associate_detailed(tr, clus(**base, short_tracklets="drop"))
    assert drop.global_ids.tolist() == [1, 2, 0]
    assert drop.stats["dropped"] == 1


def test_merge_respects_cannot_link_between_short_tracklets():
    f = vec(0.0)
    tr = [trk("c1", 1, 0, 10, f), trk("c2", 1, 20, 21, f, n=2), trk("c2", 2, 20, 21, f, n=2),
          trk("c3", 1, 50, 60, vec(0.05), n=0, attrs=None)]
    r = associate_detailed(tr, clus(threshold=0.3, short_tracklets="merge"))
    ids = r.global_ids
    assert ids[1] != ids[2]
    assert ids[0] in (ids[1], ids[2])
    assert ids[3] == ids[0]          # n_boxes unset: length = gallery size 1 < 5, attached as short
    no_feat = Tracklet("c4", 9, 0, 1, 0.0, 1.0, n_boxes=50)
    r = associate_detailed([*tr, no_feat], clus(threshold=0.3))
    assert r.flagged[-1]
    assert not r.flagged[0]
    assert np.sum(r.global_ids == r.global_ids[-1]) == 1


# ---------------------------------------------------------------- distances and attributes

def test_gallery_distances_hand_computed():
    e1, e2 = np.eye(8, dtype=np.float32)[0], np.eye(8, dtype=np.float32)[1]
    tr = [trk("a", 1, 0, 1, np.stack([e1, e2])), trk("b", 1, 2, 3, e1)]
    feats, w = stack_galleries(tr)
    assert feats.shape == (2, 2, 8)
    assert w.tolist() == [[1, 1], [1, 0]]
    assert mean_feature_distance(feats, w)[0, 1] == pytest.approx(1 - 1 / math.sqrt(2), abs=1e-6)
    assert pairwise_mean_distance(feats, w)[0, 1] == pytest.approx(0.5, abs=1e-6)
    assert topk_distance(feats, w, 1)[0, 1] == pytest.approx(0.0, abs=1e-6)
    assert topk_distance(feats, w, 2)[0, 1] == pytest.approx(0.5, abs=1e-6)


def test_attribute_disagreement_hand_computed():
    names = ("female", "age:young", "age:adult", "age:old")
    p = np.array([[0.9, 0.5, 0.5, 0.0], [0.2, 1.0, 0.0, 0.0]])
    d = attribute_disagreement(p, names)
    # female: 0.9*0.8 + 0.1*0.2 = 0.74; age: 1 - 0.5 = 0.5; mean of 2 groups = 0.62
    assert d[0, 1] == pytest.approx(0.62, abs=1e-6)
    assert d[1, 0] == pytest.approx(0.62, abs=1e-6)


def test_attributes_decide_when_appearance_is_ambiguous():
    names = ("female", "backpack")
    a, b = vec(0.0), vec(0.5)                           # appearance alone: 0.5 > threshold
    same = [trk("c1", 1, 0, 5, a, attrs=[0.99, 0.01], names=names),
            trk("c2", 1, 10, 15, b, attrs=[0.99, 0.01], names=names)]
    diff = [same[0], trk("c2", 1, 10, 15, b, attrs=[0.01, 0.99], names=names)]
    cfg = clus(threshold=0.45, attribute_weight=0.2)
    # fused: 0.8 * 0.5 + 0.2 * 0.0198 = 0.404 -> merged; 0.4 + 0.2 * 0.9802 = 0.596 -> not
    assert associate(same, cfg).tolist() == [1, 1]
    assert associate(diff, cfg).tolist() == [1, 2]
    assert associate(same, clus(threshold=0.45, attribute_weight=0.0)).tolist() == [1, 2]
    # a tracklet without attributes is compared by appearance only
    bare = [same[0], trk("c2", 1, 10, 15, vec(0.4))]
    assert associate(bare, cfg).tolist() == [1, 1]


def test_rerank_option_runs_and_keeps_clear_answers():
    rng = np.random.default_rng(1)
    people = np.linalg.qr(rng.normal(size=(16, 16)))[0][:6]
    tr = []
    for i in range(30):
        f = people[i % 6] + 0.1 * rng.normal(size=(3, 16))
        tr.append(trk(f"c{i % 3}", i, i * 20, i * 20 + 5, f / np.linalg.norm(f, axis=1, keepdims=True)))
    ids = associate(tr, clus(threshold=0.5, rerank=True))   # same <= 0.33, others >= 0.62
    assert same_partition(ids, np.arange(30) % 6)


def test_config_strict_and_yaml_override(tmp_path):
    with pytest.raises(ConfigError, match="linkage"):
        from_dict(AssociationConfig, {"linkage": "ward"})
    with pytest.raises(ConfigError, match="short_tracklets"):
        from_dict(AssociationConfig, {"short_tracklets": "ignore"})
    p = tmp_path / "a.yaml"
    p.write_text("threshold: 0.3\nlinkage: complete\n")
    cfg = load_config(AssociationConfig, p, ["short_tracklets=merge"])
    assert (cfg.threshold, cfg.linkage, cfg.short_tracklets) == (0.3, "complete", "merge")


def test_attach_to_clusters_hand_computed():
    from pipeline.association.clustering import attach_to_clusters
    # items 0,1 form cluster 0; item 2 cluster 1; items 3, 4 unlabelled
    d = np.array([[0, .1, .9, .2, .5],
                  [.1, 0, .9, .4, .5],
                  [.9, .9, 0, .35, .6],
                  [.2, .4, .35, 0, .1],
                  [.5, .5, .6, .1, 0]], np.float32)
    labels = np.array([0, 0, 1, -1, -1])
    no = np.zeros((5, 5), bool)
    # item 3: average to cluster 0 = 0.3, to cluster 1 = 0.35 -> 0; complete: 0.4 vs 0.35 -> 1
    assert attach_to_clusters(d, no, labels, 0.45, "average").tolist() == [0, 0, 1, 0, 2]
    assert attach_to_clusters(d, no, labels, 0.45, "complete").tolist() == [0, 0, 1, 1, 2]
    assert attach_to_clusters(d, no, labels, 0.45, "single").tolist() == [0, 0, 1, 0, 2]
    assert attach_to_clusters(d, no, labels, 0.55, "single").tolist() == [0, 0, 1, 0, 0]
    # only item 4 may attach (item 3 is not among ``items``): 4 goes to cluster 0 at 0.5, 3 stays alone
    assert attach_to_clusters(d, no, labels, 0.55, "single", items=np.array([4])).tolist() == [0, 0, 1, 2, 0]
    cannot = no.copy()
    cannot[3, 1] = cannot[1, 3] = True                   # 3 may not join cluster 0 -> cluster 1
    assert attach_to_clusters(d, cannot, labels, 0.45, "average").tolist() == [0, 0, 1, 1, 2]


def test_cluster_scores_hand_computed():
    from pipeline.evaluation.clusters import cluster_scores
    true = np.array([1, 1, 1, 2, 2, 3])
    pred = np.array([7, 7, 8, 8, 8, 9])
    s = cluster_scores(pred, true)
    # clusters: {7: 1,1} {8: 1,2,2} {9: 3} -> purity (2 + 2 + 1) / 6
    # ids: {1: 7,7,8} {2: 8,8} {3: 9} -> completeness (2 + 2 + 1) / 6
    assert s["purity"] == pytest.approx(5 / 6)
    assert s["completeness"] == pytest.approx(5 / 6)
    # pairs together in pred: 1 + 3 = 4, of them truly together: 1 + 1 = 2; true pairs: 3 + 1 = 4
    assert s["pair_precision"] == pytest.approx(0.5)
    assert s["pair_recall"] == pytest.approx(0.5)
    assert s["clusters"] == 3
    assert s["identities"] == 3
    assert cluster_scores(true, true)["pair_f1"] == 1.0


@pytest.mark.parametrize("linkage", ["average", "single", "complete"])
def test_group_matrices_of_a_subset_equal_those_of_its_copy(linkage):
    from pipeline.association.clustering import group_matrices
    rng = np.random.default_rng(3)
    d = rng.uniform(0, 1, (40, 40)).astype(np.float32)
    d = (d + d.T) / 2
    np.fill_diagonal(d, 0)
    cannot = rng.uniform(size=(40, 40)) < 0.05
    cannot |= cannot.T
    items = np.sort(rng.choice(40, 25, replace=False))
    labels = rng.integers(0, 7, 25)
    labels = np.unique(labels, return_inverse=True)[1]                # 0..G-1
    want = group_matrices(d[np.ix_(items, items)], cannot[np.ix_(items, items)], labels, linkage, block=8)
    got = group_matrices(d, cannot, labels, linkage, block=8, items=items)
    for a, b in zip(want, got):
        np.testing.assert_array_equal(a, b)

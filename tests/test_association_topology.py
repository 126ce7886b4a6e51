"""Camera topology: file checks, travel-time windows, overlapping views and multi-hop paths, honoured by
the clustering and by the linking of consecutive tracklets."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.errors import ConfigError, UserError
from pipeline.association.associate import associate, associate_detailed
from pipeline.association.config import AssociationConfig
from pipeline.association.topology import load_topology, topology_from_dict
from test_association import clus, trk, vec

REPO = Path(__file__).resolve().parents[1]


def test_topology_honoured_at_scale():
    """Every identity's path is possible: each tracklet follows the one seen last before it
    (same camera, overlapping view, or an allowed move within its travel-time window)."""
    rng = np.random.default_rng(5)
    topo = topology_from_dict(TOPO)
    people = rng.normal(size=(30, 32))
    tr = []
    for i in range(400):
        f = people[rng.integers(30)] + 0.9 * rng.normal(size=(3, 32))
        t0 = rng.uniform(0, 600)
        tr.append(trk("ABCD"[rng.integers(4)], i, t0, t0 + rng.uniform(1, 20),
                      f / np.linalg.norm(f, axis=1, keepdims=True)))
    r = associate_detailed(tr, clus(threshold=0.7), topo)
    assert r.stats["topology_rejections"] > 0
    assert r.global_ids.max() < 400
    for g in np.unique(r.global_ids):
        m = sorted((tr[i] for i in np.flatnonzero(r.global_ids == g)), key=lambda t: t.end_time)
        for x in m:
            before = [p for p in m if p.end_time < x.start_time]
            if not before:
                assert all(p.camera == x.camera or topo.views_overlap(p.camera, x.camera)
                           for p in m if p.overlaps_in_time(x))
                continue
            last = max(before, key=lambda p: p.end_time)
            ok = []
            for p in before:
                if p.end_time < last.start_time:
                    continue
                w = topo.transition(p.camera, x.camera)
                ok.append(p.camera == x.camera or topo.views_overlap(p.camera, x.camera) or
                          (w is not None and w[0] <= x.start_time - p.end_time <= w[1]))
            assert any(ok)


# ---------------------------------------------------------------- topology

TOPO = {"cameras": ["A", "B", "C", "D"], "overlapping_views": [["A", "D"]],
        "transitions": [{"from": "A", "to": "B", "min_time": 10, "max_time": 60},
                        {"from": "B", "to": "C", "min_time": 5, "max_time": 20}]}


@pytest.mark.parametrize("start_b,same", [(105, False), (130, True), (200, False)])
def test_topology_travel_time_window(start_b, same):
    topo = topology_from_dict(TOPO)
    f = vec(0.0)
    tr = [trk("A", 1, 50, 100, f), trk("B", 1, start_b, start_b + 10, f)]
    ids = associate(tr, clus(threshold=0.5), topo)
    assert bool(ids[0] == ids[1]) is same
    # without a topology the same pair always merges
    assert associate(tr, clus(threshold=0.5)).tolist() == [1, 1]


def test_topology_direction_overlap_and_offsets():
    topo = topology_from_dict(TOPO)
    f = vec(0.0)
    cfg = clus(threshold=0.5)
    back = [trk("B", 1, 0, 10, f), trk("A", 1, 40, 50, f)]           # B -> A is not listed
    assert associate(back, cfg, topo).tolist() == [1, 2]
    together = [trk("A", 1, 0, 10, f), trk("D", 1, 5, 12, f)]        # overlapping views
    assert associate(together, cfg, topo).tolist() == [1, 1]
    apart = [trk("A", 1, 0, 10, f), trk("B", 1, 5, 12, f)]           # same time, views apart
    assert associate(apart, cfg, topo).tolist() == [1, 2]
    shifted = topology_from_dict({**TOPO, "time_offsets": {"B": 25.0}})   # B clock 25 s behind
    assert associate([trk("A", 1, 0, 10, f), trk("B", 1, 15, 20, f)], cfg, shifted).tolist() == [1, 1]
    assert associate([trk("A", 1, 0, 10, f), trk("B", 1, 15, 20, f)], cfg, topo).tolist() == [1, 2]


def test_topology_multi_hop_path():
    topo = topology_from_dict(TOPO)
    f = vec(0.0)
    cfg = clus(threshold=0.5)
    # A -> B (20 s) -> C (10 s): one person although A -> C is not a direct move. A and C look
    # closest (0.0 vs 0.1 to B): the A-C merge is asked first and refused, B joins A, then
    # AB-C (0.05) is asked again and accepted.
    path = [trk("A", 1, 0, 10, f), trk("B", 1, 30, 40, vec(0.1)), trk("C", 1, 50, 60, f)]
    r = associate_detailed(path, cfg, topo)
    assert r.global_ids.tolist() == [1, 1, 1]
    assert r.stats["topology_rejections"] == 1
    # A then C after 8 s: faster than A -> B -> C (>= 15 s) and no direct move
    assert associate([trk("A", 1, 0, 10, f), trk("C", 1, 18, 30, f)], cfg, topo).tolist() == [1, 2]
    # reachable in time via B, but B was never seen: the direct A -> C move is refused on merge
    r = associate_detailed([trk("A", 1, 0, 10, f), trk("C", 1, 40, 50, f)], cfg, topo)
    assert r.global_ids.tolist() == [1, 2]
    assert r.stats["topology_rejections"] == 1


def test_topology_file_errors(tmp_path):
    ok = load_topology(REPO / "configs" / "topology_example.yaml")
    assert len(ok.cameras) >= 2
    assert ok.transitions
    bad = [("cameras: [a, b]\ntransitons: []\n", "unknown key 'transitons'"),
           ("cameras: [a, b]\ntransitions: [{from: a, to: z}]\n", "'z'"),
           ("cameras: [a, b]\ntransitions: [{from: a, to: b, min_time: 9, max_time: 3}]\n", "min_time"),
           ("cameras: [a, b]\ntransitions: [{from: a, to: b, speed: 3}]\n", "transitions[0].speed"),
           ("cameras: [a, b]\noverlapping_views: [[a]]\n", "overlapping_views[0]"),
           ("cameras: [a, b]\nunlisted_transitions: maybe\n", "unlisted_transitions")]
    for text, needle in bad:
        p = tmp_path / "t.yaml"
        p.write_text(text)
        with pytest.raises(ConfigError, match=None) as exc:
            load_topology(p)
        assert needle in str(exc.value)
        assert str(p) in str(exc.value)
    topo = topology_from_dict({"cameras": ["a", "b"]})
    with pytest.raises(UserError, match="'zz'"):
        associate([trk("a", 1, 0, 1, vec(0)), trk("zz", 1, 0, 1, vec(0))], clus(), topo)


def test_linking_honours_the_travel_time_window():
    """A -> B takes 10-60 s: a B start 5 s after an A end is never linked, whatever the look; the
    same pair without a topology is."""
    topo = topology_from_dict(TOPO)
    f = vec(0.0)
    tr = [trk("A", 1, 50, 100, f), trk("B", 1, 105, 115, f)]
    r = associate_detailed(tr, AssociationConfig(threshold=0), topo)
    assert r.stats["links"] == 0
    assert r.global_ids.tolist() == [1, 2]
    assert associate_detailed(tr, AssociationConfig(threshold=0)).stats["links"] == 1

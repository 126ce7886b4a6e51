"""A tracklet whose one feature is its fallback crop (pipeline/run/tracklet_store.py: none of its crops
passed the embedding policy, mostly because it was overlapped all along) joins an identity but never
bridges two: its crop may hold two people. On the bench's three-camera cut three such tracklets joined
persons 3 / 4 and 6 / 10 when they took part in the clustering (`python bench/mtmc.py`)."""
from __future__ import annotations

import numpy as np
import pytest

from pipeline.association.associate import associate_detailed
from pipeline.association.config import AssociationConfig
from pipeline.tracklet import Tracklet

CFG = AssociationConfig(threshold=0.3, link_threshold=0.4, same_camera_threshold=None)


def _trk(cam: str, tid: int, t0: float, t1: float, feat: np.ndarray, fallback: bool = False) -> Tracklet:
    return Tracklet(cam, tid, int(t0 * 10), int(t1 * 10), t0, t1, n_boxes=int((t1 - t0) * 10),
                    features=np.asarray(feat, np.float32).reshape(1, -1), weights=np.ones(1, np.float32),
                    fallback=fallback)


def _at(p: np.ndarray, r: np.ndarray, degrees: float) -> np.ndarray:
    a = np.radians(degrees)
    return (np.cos(a) * p + np.sin(a) * r).astype(np.float32)


def scene(fallback: bool, seed: int = 0) -> list[Tracklet]:
    """Person P in camera a, then a tracklet F in camera c whose crop shows P and Q (its feature between
    theirs: 38 degrees from P, 42 from Q), then person Q (80 degrees from P) in camera b; and six other
    people in camera a, so that the run has negatives."""
    rng = np.random.default_rng(seed)
    p, r = np.linalg.qr(rng.normal(size=(32, 2)))[0].T
    ts = [_trk("a", 1, 0, 10, p), _trk("c", 1, 12, 18, _at(p, r, 38), fallback), _trk("b", 1, 20, 30, _at(p, r, 80))]
    for k in range(6):
        f = rng.normal(size=32)
        ts.append(_trk("a", 10 + k, 40 + 5 * k, 44 + 5 * k, f / np.linalg.norm(f)))
    return ts


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_fallback_tracklet_joins_its_nearest_identity_without_bridging(seed):
    plain = associate_detailed(scene(False, seed), CFG).global_ids
    assert plain[0] == plain[1] == plain[2]                # a real feature between two people chains them
    res = associate_detailed(scene(True, seed), CFG)
    ids = res.global_ids
    assert ids[0] == ids[1] != ids[2]                      # the fallback one goes with P; Q stays apart
    assert res.flagged.tolist()[:3] == [False, True, False] and res.stats["fallback_features"] == 1


def test_a_fallback_tracklet_far_from_everyone_stays_alone():
    ts = scene(True)
    ts[1].features = -ts[0].features
    ids = associate_detailed(ts, CFG).global_ids
    assert len({int(ids[0]), int(ids[1]), int(ids[2])}) == 3

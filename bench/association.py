"""Benchmark: cross-camera association time on synthetic tracklet sets of growing size.

For T = 200 / 1000 / 3000 synthetic tracklets (T/10 people, 6 cameras, 8 x 256-d features each,
people seen in several cameras over 20 minutes) it times, in one run:

  associate     pipeline.association.associate.associate (distances, constraints, calibration, linking of
                consecutive tracklets, constrained clustering; --threshold fixes the clustering's threshold)
  +topology     the same with a camera topology (pairwise windows + merge-time path checks)
  ours-cluster  only the constrained clustering on the fused distance matrix
  scipy         scipy.cluster.hierarchy.linkage(average) + fcluster on the same matrix, no constraints
  ratio         ours-cluster / scipy

and reports purity / completeness of associate against the synthetic truth. Best of --repeat.

    python bench/association.py [--sizes 200 1000 3000] [--repeat 3]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from scipy.cluster.hierarchy import fcluster, linkage  # noqa: E402
from scipy.spatial.distance import squareform  # noqa: E402

from pipeline.association.constraints import cannot_link_matrix, tracklet_times  # noqa: E402
from pipeline.evaluation.clusters import cluster_scores  # noqa: E402
from pipeline.association.associate import associate, fused_distance  # noqa: E402
from pipeline.association.config import AssociationConfig  # noqa: E402
from pipeline.association.clustering import constrained_agglomerative  # noqa: E402
from pipeline.association.topology import topology_from_dict  # noqa: E402
from pipeline.tracklet import Tracklet  # noqa: E402

CAMS = [f"cam{i}" for i in range(6)]
TOPOLOGY = topology_from_dict({
    "cameras": CAMS, "overlapping_views": [["cam0", "cam1"]],
    "transitions": [{"from": a, "to": b, "min_time": 1.0, "max_time": 120.0, "bidirectional": True}
                    for a, b in zip(CAMS, CAMS[1:])]})


def synthetic(n: int, seed: int = 0, dim: int = 256, gallery: int = 8):
    """n tracklets of n // 10 people walking along the camera chain; (tracklets, true ids)."""
    rng = np.random.default_rng(seed)
    people = rng.normal(size=(max(1, n // 10), dim))
    tracklets, truth = [], []
    clock = rng.uniform(0, 1200, len(people))
    pos = rng.integers(0, len(CAMS), len(people))
    counters = dict.fromkeys(CAMS, 0)
    for _ in range(n):
        p = int(rng.integers(len(people)))
        cam = CAMS[pos[p]]
        dur = rng.uniform(2, 20)
        f = people[p] + 1.1 * rng.normal(size=(gallery, dim))
        f = (f / np.linalg.norm(f, axis=1, keepdims=True)).astype(np.float32)   # (K, D)
        counters[cam] += 1
        t0 = clock[p]
        tracklets.append(Tracklet(cam, counters[cam], int(t0 * 10), int((t0 + dur) * 10), t0, t0 + dur,
                                  n_boxes=int(dur * 10), features=f, weights=np.ones(gallery, np.float32)))
        truth.append(p)
        clock[p] += dur + rng.uniform(2, 60)
        pos[p] = int(np.clip(pos[p] + rng.choice([-1, 1]), 0, len(CAMS) - 1))
    return tracklets, np.array(truth)


def best_of(fn, repeat: int):
    best, out = np.inf, None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[200, 1000, 3000])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threshold", type=float, default=0.45)
    a = ap.parse_args()
    cfg = AssociationConfig(threshold=a.threshold, attribute_weight=0.0)
    print(f"{'T':>5} {'associate s':>11} {'+topology s':>11} {'ours-cluster s':>14} {'scipy s':>8} "
          f"{'ratio':>6} {'purity':>6} {'compl.':>6} {'topo pur.':>9} {'topo cmp.':>9} {'ids':>5} {'true':>5}")
    for n in a.sizes:
        tracklets, truth = synthetic(n)
        t_assoc, ids = best_of(lambda: associate(tracklets, cfg), a.repeat)
        t_topo, ids_topo = best_of(lambda: associate(tracklets, cfg, TOPOLOGY), a.repeat)
        dist = fused_distance(tracklets, cfg)
        cannot = cannot_link_matrix(*tracklet_times(tracklets))
        t_ours, _ = best_of(lambda: constrained_agglomerative(dist, cannot, a.threshold, "average"), a.repeat)
        d = dist.astype(np.float64)
        np.fill_diagonal(d, 0.0)
        t_scipy, _ = best_of(lambda: fcluster(linkage(squareform(d, checks=False), "average"),
                                              a.threshold, "distance"), a.repeat)
        s, st = cluster_scores(ids, truth), cluster_scores(ids_topo, truth)
        print(f"{n:5d} {t_assoc:11.3f} {t_topo:11.3f} {t_ours:14.3f} {t_scipy:8.3f} {t_ours / t_scipy:6.2f} "
              f"{s['purity']:6.3f} {s['completeness']:6.3f} {st['purity']:9.3f} {st['completeness']:9.3f} "
              f"{s['clusters']:5d} {s['identities']:5d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

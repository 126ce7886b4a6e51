#!/usr/bin/env python
"""Benchmark: association time and peak memory for growing numbers of tracklets (up to 10,000+).

Synthetic footage with the structure of real CCTV tracklets: ``T / 8`` people walk along a chain of
6 cameras for an hour; each visit to a camera is one or more tracklets (the tracker breaks a track
every now and then, the next piece starts < 2 s later near the same place), handoffs to the next
camera take 1-8 s, and people share views, so one camera sees several people at once (free negatives
for the calibration). Every tracklet has a first and last box, 64 foot points (as 'mcmt run' keeps
for the overlapping-views check), a 10-feature gallery and, with ``--attributes``, attribute
probabilities.

Features follow real statistics when ``--from-run DIR`` names a finished ``mcmt run``: person looks
are drawn from a Gaussian fitted to the run's tracklet means (between-person spread), gallery
features add the run's within-tracklet residual spread. Without a run, a 512-d isotropic model is
scaled to a weak ReID model (median different-people distance ~0.5, same-person ~0.15). The table
prints the resulting distance quantiles next to the timings.

Each size runs in its own process. "peak MB" is that process's maximum resident memory (Python,
numpy and the input tracklets included), "input MB" its peak before the association starts, "assoc MB"
the peak of what the association itself allocates (tracemalloc; numpy arrays included).

    python bench/association_scale.py [--sizes 1000 3000 10000] [--from-run runs/x] [--attributes]
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(REPO))                 # bench/pipeline.py must not hide the pipeline package

CAMS = 6
HOUR = 3600.0
GALLERY = 10
VIEW, CROP = 0.55, 0.5    # synthetic model: per-tracklet and per-crop noise (a weak ReID model's spread)


def feature_model(run_dir: str | None, rng: np.random.Generator):
    """(sample_people(n) -> (n, D), sample_gallery(looks (n, D)) -> (n, K, D)) from a run or synthetic."""
    if run_dir:
        from pipeline.outputs.write import load_all_tracklets, read_run_file
        cams = [c["name"] for c in read_run_file(Path(run_dir))["cameras"]]
        real = [t for t in load_all_tracklets(Path(run_dir), cams)[0] if t.has_features and len(t.features) >= 2]
        means = np.stack([t.features.mean(0) for t in real])                      # (R, D)
        resid = np.concatenate([t.features - t.features.mean(0) for t in real])   # (N, D)
        mu, between = means.mean(0), (means - means.mean(0)) / np.sqrt(len(means))
        within = resid / np.sqrt(len(resid))

        def people(n):
            return mu + rng.normal(size=(n, len(between))) @ between

        def gallery(looks):
            noise = rng.normal(size=(len(looks), GALLERY, len(within))) @ within
            return looks[:, None, :] + noise
    else:
        dim, rank = 512, 8
        common = rng.normal(size=dim)
        common /= np.linalg.norm(common)                          # what all people share
        basis = rng.normal(size=(rank, dim))                      # few directions people differ in
        basis /= np.linalg.norm(basis, axis=1, keepdims=True) * np.sqrt(rank)

        def people(n):
            return common + rng.normal(size=(n, rank)) @ basis

        def gallery(looks):
            view = VIEW * rng.normal(size=(len(looks), 1, dim)) / np.sqrt(dim)         # this tracklet's view
            return looks[:, None, :] + view + CROP * rng.normal(size=(len(looks), GALLERY, dim)) / np.sqrt(dim)
    return people, gallery


def synthetic(n: int, seed: int = 0, run_dir: str | None = None, attributes: bool = False):
    """n tracklets (see module docstring) and their true person ids."""
    from pipeline.tracklet import Tracklet

    rng = np.random.default_rng(seed)
    people, gallery = feature_model(run_dir, rng)
    n_people = max(2, n // 8)
    look = people(n_people)
    attr = rng.uniform(size=(n_people, 30)) if attributes else None
    rows, clock = [], rng.uniform(0, HOUR, n_people)
    cam = rng.integers(0, CAMS, n_people)
    side = rng.choice([-1, 1], n_people)
    while len(rows) < n:
        p = int(rng.integers(n_people))
        x = rng.uniform(50, 1870)
        for _ in range(int(rng.integers(1, 4))):                  # pieces of one visit
            dur = rng.uniform(2, 15)
            rows.append((p, int(cam[p]), clock[p], clock[p] + dur, x))
            clock[p] += dur + rng.uniform(0.3, 2.0)
            x = float(np.clip(x + rng.normal(0, 40), 50, 1870))
        clock[p] += rng.uniform(1, 8)                             # handoff to the next camera
        if not 0 <= cam[p] + side[p] < CAMS:
            side[p] *= -1
        cam[p] += side[p]
    rows = sorted(rows[:n], key=lambda r: r[2])
    feats = np.concatenate([gallery(look[[r[0] for r in rows[k:k + 500]]]).astype(np.float32)
                            for k in range(0, n, 500)])         # (n, K, D) in chunks: low peak
    feats /= np.linalg.norm(feats, axis=2, keepdims=True)
    tracklets, counters = [], [0] * CAMS
    for (p, c, t0, t1, x), f in zip(rows, feats):
        counters[c] += 1
        box = np.array([x - 30, 400, x + 30, 600], np.float32)
        tracklets.append(Tracklet(f"cam{c}", counters[c], int(t0 * 10), int(t1 * 10), t0, t1, n_boxes=int((t1 - t0) * 10),
                                  features=f, weights=np.ones(GALLERY, np.float32),
                                  attributes=None if attr is None else attr[p].astype(np.float32),
                                  attribute_names=tuple(f"attr{k}" for k in range(30)) if attr is not None else (),
                                  first_box=box, last_box=box + np.float32(rng.normal(0, 20)),
                                  footprints=walk(rng, t0, t1, x)))
    return tracklets, np.array([r[0] for r in rows])


def walk(rng, t0: float, t1: float, x: float, points: int = 64) -> np.ndarray:
    """(points, 4) foot points of a straight walk from (x, 600) in a random direction, 200 px boxes."""
    t = np.linspace(t0, t1, points)
    v = rng.normal(0, 40, 2)
    return np.column_stack([t, x + v[0] * (t - t0), 600 + v[1] * (t - t0), np.full(points, 200.0)]).astype(np.float32)


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def child(n: int, run_dir: str | None, attributes: bool) -> dict:
    """One size, in this process: build, associate, score. ``assoc_mb``: peak of the memory the
    association allocates (tracemalloc, numpy arrays included) on top of its input."""
    import tracemalloc

    from pipeline.association.associate import associate_detailed
    from pipeline.association.config import AssociationConfig
    from pipeline.evaluation.clusters import cluster_scores

    tracklets, truth = synthetic(n, run_dir=run_dir, attributes=attributes)
    base = rss_mb()
    tracemalloc.start()
    t0 = time.perf_counter()
    res = associate_detailed(tracklets, AssociationConfig())
    secs = time.perf_counter() - t0
    assoc_mb = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    s = cluster_scores(res.global_ids, truth)
    q = res.stats["calibration"]["negative_quantiles"]
    return {"T": n, "seconds": secs, "peak_mb": rss_mb(), "input_mb": base, "assoc_mb": assoc_mb, "purity": s["purity"],
            "completeness": s["completeness"], "ids": s["clusters"], "true": s["identities"],
            "links": res.stats.get("links", 0), "neg_q10": q.get("q10"), "neg_q50": q.get("q50"),
            "pos_med": res.stats["calibration"]["positive_median"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 3000, 10000])
    ap.add_argument("--from-run", help="a finished mcmt run whose tracklet features give the statistics")
    ap.add_argument("--attributes", action="store_true", help="30 attribute probabilities per tracklet")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child(a.child, a.from_run, a.attributes)))
        return 0
    print(f"{'T':>6} {'assoc s':>8} {'peak MB':>8} {'input MB':>8} {'assoc MB':>8} {'purity':>6} {'compl.':>6} {'ids':>6} "
          f"{'true':>6} {'links':>6} {'neg q10':>7} {'neg q50':>7} {'pos med':>7}")
    for n in a.sizes:
        cmd = [sys.executable, __file__, "--child", str(n)] + (["--from-run", a.from_run] if a.from_run else []) \
            + (["--attributes"] if a.attributes else [])
        out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
        if out.returncode != 0:
            print(out.stderr[-2000:])
            return 1
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{r['T']:6d} {r['seconds']:8.2f} {r['peak_mb']:8.0f} {r['input_mb']:8.0f} {r['assoc_mb']:8.0f} {r['purity']:6.3f} "
              f"{r['completeness']:6.3f} {r['ids']:6d} {r['true']:6d} {r['links']:6d} {r['neg_q10']:7.3f} "
              f"{r['neg_q50']:7.3f} {r['pos_med']:7.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The speed part of bench/search.py (``python bench/search.py --parts speed``): a synthetic index of
``total`` tracklets (runs of 10,000, ``dim`` dimensions, the common attribute schema); time to add a run of
10,000 tracklets from a run folder (in-process and as 'mcmt index add'), to add 10,000 as arrays, and query
times (appearance, attributes, both, with filters) in-process and as the 'mcmt search' command.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def synthetic_gallery(n: int, dim: int, n_attr: int, seed: int, names):
    from pipeline.search.gallery import Gallery, Vectors

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    ident = np.sort(rng.integers(0, n // 4, n)).astype(np.int32)
    gids, ident = np.unique(ident, return_inverse=True)
    start = rng.uniform(0, 3600, n)
    attrs = rng.dirichlet(np.ones(n_attr), n).astype(np.float32) * 3
    return Gallery(run=f"synthetic{seed}", run_dir=None, cameras=[f"cam{i}" for i in range(8)],
                   camera=rng.integers(0, 8, n).astype(np.int16), track_id=np.arange(n), ident=ident.astype(np.int32),
                   gids=gids.astype(np.int64) + 1, start=start, end=start + rng.uniform(1, 60, n),
                   n_boxes=rng.integers(5, 300, n).astype(np.int32), vectors=Vectors(x),
                   has_feature=np.ones(n, bool), attributes=np.clip(attrs, 0, 1), has_attributes=np.ones(n, bool),
                   attribute_names=tuple(names), model={"name": "synthetic", "dim": dim, "sha256": "0" * 64})


def synthetic_run_folder(root: Path, n: int, dim: int, names) -> Path:
    """A run folder of n tracklets (4 gallery features each) written like 'mcmt run' writes it."""
    from pipeline.outputs.writers import build_identities, write_identities
    from pipeline.runfolder.cache import save_tracklets
    from core.atomic import atomic_write_json
    from pipeline.tracklet import Tracklet

    rng = np.random.default_rng(1)
    cams = [{"name": f"cam{i}"} for i in range(8)]
    ts = []
    for i in range(n):
        f = rng.standard_normal((4, dim)).astype(np.float32)
        f /= np.linalg.norm(f, axis=1, keepdims=True)
        ts.append(Tracklet(camera=f"cam{i % 8}", track_id=i // 8 + 1, start_frame=i, end_frame=i + 50,
                           start_time=i / 10, end_time=i / 10 + 5, n_boxes=50, features=f,
                           weights=np.ones(4, np.float32), attributes=rng.random(len(names)).astype(np.float32),
                           attribute_names=tuple(names)))
    for c in cams:
        mine = [t for t in ts if t.camera == c["name"]]
        save_tracklets(root / "cache" / c["name"], mine, {})
        atomic_write_json(root / "cache" / c["name"] / "track.json", {"complete": True})
    gids = np.arange(len(ts)) // 3 + 1
    write_identities(root, build_identities(cams, ts, gids, {}, names, {}))
    atomic_write_json(root / "run.json", {"cameras": cams, "config": {"reid": {"checkpoint": "synthetic.pt"}}})
    return root


def timed(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def speed(total: int, dim: int, workdir: Path) -> list[tuple[str, float]]:
    from pipeline.search.attributes import parse_attributes
    from pipeline.search.index import SearchIndex
    from pipeline.search.rank import Query, rank
    from reid.data.schemas import COMMON

    names = COMMON.output_names
    ix = SearchIndex(workdir / "index", create=True)
    per_run, out = 10_000, []
    run = synthetic_run_folder(workdir / "run10k", per_run, dim, names)
    from pipeline.search.gallery import load_run
    model = load_run(run).model
    t0 = time.perf_counter()
    ix.add_run(run)
    out.append(("add a 10,000-tracklet run folder (index add, in-process)", time.perf_counter() - t0))
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pipeline.cli", "-q", "index", "add", str(run), "--index",
                    str(workdir / "cli-index")], check=True, cwd=REPO)
    out.append(("add a 10,000-tracklet run folder ('mcmt index add' command)", time.perf_counter() - t0))
    adds = []
    for k in range(1, total // per_run):
        g = synthetic_gallery(per_run, dim, len(names), k, names)
        g.model = model
        t0 = time.perf_counter()
        ix.add_gallery(g, f"/synthetic/{k}", f"synthetic{k}", str(k))
        adds.append(time.perf_counter() - t0)
    out.append((f"add 10,000 tracklets as arrays (median of {len(adds)})", float(np.median(adds)) if adds else 0.0))
    q = np.random.default_rng(9).standard_normal(dim).astype(np.float32)
    q /= np.linalg.norm(q)
    terms = tuple(parse_attributes("female backpack upper_color=red", names))
    n = sum(r["n_tracklets"] for r in ix.runs())
    for label, query in (("appearance", Query(embedding=q)), ("attributes", Query(terms=terms)),
                         ("appearance + attributes", Query(embedding=q, terms=terms)),
                         ("appearance, 2 cameras, 10 min window", Query(embedding=q, cameras=("cam1", "cam2"),
                                                                        t_from=600, t_to=1200))):
        out.append((f"query over {n:,} tracklets: {label}", timed(lambda: rank(ix.galleries(), query))))
    for label, args in (("attributes", ["--attributes", "female backpack"]),
                        ("example", ["--example", "synthetic1:5"])):
        cmd = [sys.executable, "-m", "pipeline.cli", "-q", "search", "--index", str(workdir / "index"), *args]
        out.append((f"'mcmt search' command over {n:,} tracklets: {label}",
                    timed(lambda: subprocess.run(cmd, check=True, cwd=REPO, capture_output=True))))
    return out

#!/usr/bin/env python
"""The multi-camera bench: every footage we have, one table, and the mean over footages.

For each footage (bench/footages.py: the two-camera sample, the three-camera cut, EPFL terrace, and
the sample whose second camera differs as real cameras do), runs ``mcmt run`` once (stage caches are
reused: a rerun of the table takes seconds per footage), then redoes the association in memory from
the run's cache and scores it against the ground truth (bench/assoc_eval.py):

  per-camera MOTA / IDF1   mean over the footage's cameras, with the defaults' global ids
  MC-IDF1                  cross-camera IDF1 of the defaults (what ``mcmt eval`` prints for the run)
  handoffs ok/mis/wr       true handoffs between cameras correct / missed, predicted ones wrong
  ids                      predicted / true identities
  oracle                   every tracklet given its true identity: the association's ceiling for these tracks
  no feat.                 tracklets without a ReID feature (no crop of theirs was embedded: score, size, overlap)
  no assoc.                each tracklet its own identity (association off): association must never be below

``--variants`` adds a second table: cross-camera IDF1 of each association change (bench/multicam_pets.py's
VARIANTS plus the real-camera decisions) on every footage, with the mean and the worst loss against the
defaults: a default changes only when the mean rises and no footage loses more than 1 point.

  python bench/mtmc.py                                   # all footages, defaults
  python bench/mtmc.py --footages sample epfl mild       # a subset ("variants", "mild", "strong", "all")
  python bench/mtmc.py --footages low-fps                # every K-th frame: sample@2 ... epfl@8 (3.5 / 3.1 fps)
  python bench/mtmc.py --variants                        # + the association on/off table
  python bench/mtmc.py --reid PATH --detector PATH       # other models (runs under their own folder)
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(REPO))

from bench.footages import Footage, expand, footage  # noqa: E402

VARIANTS = {
    "- linking": {"link_window": 0.0},
    "- clustering": {"threshold": 0.0},
    "+ zones": {"zones": True},
    "- overlap geometry": {"overlap_geometry": False},
    "- overlap motion": {"overlap_motion": False},
    "- overlap one-to-one": {"overlap_one_to_one": False},
    "- overlap link check": {"overlap_link_check": False},
    "- motion, - one-to-one": {"overlap_motion": False, "overlap_one_to_one": False},
    "same-cam ratio 0.5": {"same_camera_ratio": 0.5},
    "same-cam ratio 0": {"same_camera_ratio": 0.0},
    "- attributes": {"attribute_weight": 0.0},
    "+ camera normalise": {"camera_normalise": True},
    "- camera pair scale": {"camera_pair_scale": False},
    "+ mutual links": {"mutual_links": True},
    "- handoff geometry": {"handoff_geometry": False},
    "- insert links": {"insert_links": False},
    "- interpolation": None,            # not association: the output's filled gaps left out (output.interpolate)
    "+ camera centre": {"camera_centre": True},
    "+ rerank": {"rerank": True},
}


def run_tag(detector: str, reid: str, sets: list[str]) -> str:
    """Folder name of one model / settings combination ("default" for the defaults)."""
    if detector == "default" and reid == "default" and not sets:
        return "default"
    text = json.dumps([detector, reid, sorted(sets)])
    return f"{Path(detector).stem}_{Path(reid).stem}_{hashlib.sha1(text.encode()).hexdigest()[:6]}"


def seed_cache(run_dir: Path, fp: Footage, root: Path) -> None:
    """Copy the stage cache of cameras this footage shares with another footage's run (same input)."""
    for cam, other in fp.reuse.items():
        src, dst = root / other / "cache" / cam, run_dir / "cache" / cam
        meta = src / "track.json"
        if not meta.is_file() or '"complete": true' not in meta.read_text():
            continue                                               # nothing finished to reuse
        if (dst / "track.json").is_file() and (dst / "track.json").read_text() == meta.read_text():
            continue                                               # already the same stage
        shutil.rmtree(dst, ignore_errors=True)
        shutil.copytree(src, dst)


def mcmt_run(fp: Footage, run_dir: Path, detector: str, reid: str, sets: list[str]) -> float:
    """``mcmt run`` of one footage in its own process; wall seconds (cached stages make reruns fast). The
    folder is the bench's cache: --replace recomputes a camera whose stage another default (or a cache
    seed_cache copied with other keys) made."""
    args = [sys.executable, "-m", "pipeline.cli", "run", "--videos", *fp.videos, "--out", str(run_dir),
            "--detector", detector, "--reid", reid, "--no-progress", "--replace"]
    if fp.stride > 1:
        args += ["--stride", str(fp.stride)]
    for s in sets:
        args += ["--set", s]
    t0 = time.perf_counter()
    proc = subprocess.run(args, cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"mcmt run failed on {fp.name}:\n{proc.stderr[-2000:]}")
    return time.perf_counter() - t0


def score_footage(fp: Footage, run_dir: Path, variants: dict) -> dict:
    """Scores of the defaults, oracle, no association and each association variant on one run."""
    from bench.assoc_eval import RunData
    from bench.multicam_pets import constrained_oracle
    from pipeline.association.associate import associate_detailed
    from pipeline.association.config import AssociationConfig

    run = RunData.load(run_dir, Path(fp.gt))
    base = AssociationConfig()
    res = associate_detailed(run.tracklets, base)
    out = {"defaults": run.score(res.global_ids), "stats": res.stats,
           "oracle": run.score(run.oracle_ids(), per_camera=False),
           "oracle, no overlap": run.score(constrained_oracle(run), per_camera=False),
           "no association": run.score(np.arange(1, len(run.tracklets) + 1), per_camera=False),
           "tracklets": len(run.tracklets), "variants": {}}
    for name, kw in variants.items():
        if kw is None:                  # "- interpolation": the default association on the boxes as tracked
            out["variants"][name] = run.tracked().score(res.global_ids, per_camera=False)["cross"]
            continue
        ids = associate_detailed(run.tracklets, replace(base, **kw)).global_ids
        out["variants"][name] = run.score(ids, per_camera=False)["cross"]
    return out


def _mean(vals) -> float:
    vals = [v for v in vals if v is not None]
    return float(np.mean(vals)) if vals else float("nan")


def main_table(results: dict) -> list[str]:
    head = (f"{'footage':<20} {'cams':>4} {'MOTA':>5} {'IDF1':>5} {'MC-IDF1':>7} {'handoffs ok/mis/wr':>18} "
            f"{'ids':>7} {'oracle':>6} {'no assoc.':>9} {'tracklets':>9} {'no feat.':>8} {'run s':>6}")
    lines = [head, "-" * len(head)]
    for name, r in results.items():
        d, pc = r["defaults"]["cross"], r["defaults"]["per_camera"]
        mota, idf1 = _mean(v["MOTA"] for v in pc.values()), _mean(v["IDF1"] for v in pc.values())
        ho = f"{d['handoffs_correct']}/{d['handoffs_missed']}/{d['handoffs_wrong']} of {d['handoffs_true']}"
        lines.append(f"{name:<20} {len(pc):>4} {mota:5.1f} {idf1:5.1f} {d['IDF1']:7.1f} {ho:>18} "
                     f"{d['pred_ids']:>3}/{d['true_ids']:<3} {r['oracle']['cross']['IDF1']:6.1f} "
                     f"{r['no association']['cross']['IDF1']:9.1f} {r['tracklets']:>9} "
                     f"{r['stats'].get('without_features', 0):>8} {r['seconds']:6.0f}")
    rs = list(results.values())
    lines.append("-" * len(head))
    lines.append(f"{'mean':<20} {'':>4} {_mean(_mean(v['MOTA'] for v in r['defaults']['per_camera'].values()) for r in rs):5.1f} "
                 f"{_mean(_mean(v['IDF1'] for v in r['defaults']['per_camera'].values()) for r in rs):5.1f} "
                 f"{_mean(r['defaults']['cross']['IDF1'] for r in rs):7.1f} {'':>18} {'':>7} "
                 f"{_mean(r['oracle']['cross']['IDF1'] for r in rs):6.1f} "
                 f"{_mean(r['no association']['cross']['IDF1'] for r in rs):9.1f}")
    return lines


def variant_table(results: dict) -> list[str]:
    names = list(results)
    short = [n.replace("sample~", "~").replace("epfl~", "E~")[:11] for n in names]
    head = f"{'variant':<22} " + " ".join(f"{s:>11}" for s in short) + f" {'mean':>6} {'worst':>6}"
    lines = [head, "-" * len(head)]
    base = [results[n]["defaults"]["cross"]["IDF1"] for n in names]
    lines.append(f"{'defaults':<22} " + " ".join(f"{b:11.1f}" for b in base) + f" {_mean(base):6.1f} {0:6.1f}")
    for v in next(iter(results.values()))["variants"]:
        vals = [results[n]["variants"][v]["IDF1"] for n in names]
        worst = min(a - b for a, b in zip(vals, base))
        lines.append(f"{v:<22} " + " ".join(f"{x:11.1f}" for x in vals) + f" {_mean(vals):6.1f} {worst:+6.1f}")
    return lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--footages", nargs="+", default=["all"],
                   help="names (sample, three-views, epfl, pets09, sample~KIND-STRENGTH, epfl~KIND-STRENGTH) or groups: "
                        "all, variants, mild, strong, epfl-jitter, epfl-variants, epfl-mild, epfl-strong, check (sensor "
                        "noise, low light, motion blur on the sample), epfl-check, low-fps (NAME@K: every K-th frame)")
    p.add_argument("--detector", default="default")
    p.add_argument("--reid", default="default")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="settings for every mcmt run (part of the runs' folder name)")
    p.add_argument("--out", default=str(REPO / "runs" / "bench_mtmc"))
    p.add_argument("--variants", action="store_true", help="also the association on/off table")
    p.add_argument("--only", nargs="+", metavar="VARIANT", help="the association table with only these variants")
    p.add_argument("--score-only", action="store_true",
                   help="score the existing run folders again (no mcmt run: after an association change)")
    p.add_argument("--json", help="write every number to this JSON file")
    a = p.parse_args(argv)
    out = Path(a.out)
    root = out / run_tag(a.detector, a.reid, a.sets)
    results = {}
    for name in expand(a.footages):
        try:
            fp = footage(name, out)
        except FileNotFoundError as e:
            print(f"skipping {name}: {e}", flush=True)
            continue
        run_dir = root / name
        seed_cache(run_dir, fp, root)
        try:
            secs = 0.0 if a.score_only else mcmt_run(fp, run_dir, a.detector, a.reid, a.sets)
        except RuntimeError as e:
            print(f"skipping {name}: {e}", flush=True)
            continue
        chosen = {k: v for k, v in VARIANTS.items() if not a.only or k in a.only} if a.variants or a.only else {}
        results[name] = {**score_footage(fp, run_dir, chosen), "seconds": secs}
        print(f"{name}: MC-IDF1 {results[name]['defaults']['cross']['IDF1']:.1f} ({secs:.0f} s)", flush=True)
    print(f"\nmulti-camera bench, detector {a.detector}, ReID {a.reid}" + (f", {' '.join(a.sets)}" if a.sets else ""))
    print("\n".join(main_table(results)))
    if (a.variants or a.only) and results:
        print("\ncross-camera IDF1 of each association change (worst = largest loss against the defaults)")
        print("\n".join(variant_table(results)))
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())

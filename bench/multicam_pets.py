#!/usr/bin/env python
"""Two-camera benchmark on real footage: the association against its ORACLE, for several ReID models.

For each ReID model, runs the full ``mcmt run`` pipeline once on samples/pets_left.mp4 and
samples/pets_right.mp4 (offline int8 YOLOv8n, default settings, no topology), then redoes only the
association in memory from the run's cache (bench/assoc_eval.py) for each variant and scores it
against samples/gt in the same process:

  oracle            every tracklet given the ground-truth identity it overlaps most: the ceiling
                    of the association (oracle -> 100 = the per-camera trackers' errors)
  oracle, no overlap  the same, but one camera's tracklets that overlap in time split apart (what
                    any association has to respect: the ceiling under the hard constraint)
  no association    association.enabled=false: each camera's ids kept apart (the peer baseline)
  defaults          what ``mcmt run`` wrote (linking + zones + clustering, thresholds calibrated)
  previous          the settings before calibration: threshold 0.45, no linking, same camera = threshold
  - X / + X         the defaults with one change switched off / on (see VARIANTS)
  topology          the defaults with samples/topology.yaml

Prints, per model, cross-camera IDF1 (AI City), handoffs correct / missed / wrong of the true ones,
predicted / true identities, and the per-camera IDF1; then the thresholds each model's run chose.

  python bench/multicam_pets.py                                  # the three models found in ../shared
  python bench/multicam_pets.py --reid default --max-frames 300  # one model, a quick look
  python bench/multicam_pets.py --three-views --reid default      # the second footage (below)

``--three-views`` scores a second cut of the same video: samples/make_pets_multicam.py --third-view
(made under --out when missing, from ../shared/data/pets09-s2l1) adds a centre camera at another
scale and colour response that overlaps both side cameras, so people are seen by two cameras at
once and look different in one of them (56 true handoffs); its topology is samples/topology_3views.yaml.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(REPO))                 # bench/pipeline.py must not hide the pipeline package
SHARED = Path(os.environ.get("MCMT_SHARED", REPO.parent / "shared"))
DETECTOR = SHARED / "models" / "yolov8n_saved_model" / "yolov8n_full_integer_quant.tflite"
MODELS = {"default": REPO / "reid" / "weights" / "default.pt",
          "intel0286": SHARED / "models" / "openvino" / "person-reidentification-retail-0286" / "FP16"
          / "person-reidentification-retail-0286.xml",
          "osnet_x0_25": SHARED / "models" / "osnet_x0_25_msmt17.onnx"}

# name -> AssociationConfig overrides on top of the defaults
VARIANTS = {
    "defaults": {},
    "previous": {"threshold": 0.45, "same_camera_threshold": None, "link_window": 0.0},
    "- linking": {"link_window": 0.0},
    "- clustering": {"threshold": 0.0},
    "- zones": {"zones": False},
    "- overlap geometry": {"overlap_geometry": False},
    "- same-cam links": {"same_camera_window": 0.0},
    "- same-cam joins": {"same_camera_ratio": 0.0},
    "- quality weights": {"quality_weights": False},
    "- attributes": {"attribute_weight": 0.0},
    "+ attr. reliability": {"attribute_reliability": True},
    "+ camera normalise": {"camera_normalise": True},
    "+ rerank": {"rerank": True},
    "+ refine": {"refine": True},
}


def mcmt(*args: str) -> float:
    """Run the mcmt CLI in a subprocess (as a user would); returns wall seconds, exits on failure."""
    t0 = time.perf_counter()
    print("$ mcmt " + " ".join(args), flush=True)
    if subprocess.run([sys.executable, "-m", "pipeline.cli", *args], cwd=REPO, check=False).returncode != 0:
        raise SystemExit(f"mcmt {args[0]} failed")
    return time.perf_counter() - t0


def constrained_oracle(run) -> np.ndarray:
    """Oracle ids, with each identity's tracklets of one camera that overlap in time split apart
    (longest first keeps the identity)."""
    from pipeline.association.constraints import cannot_link_matrix, tracklet_times

    cannot = cannot_link_matrix(*tracklet_times(run.tracklets))
    orc, out, nxt = run.oracle_ids(), np.zeros(len(run.tracklets), np.int64), 1
    for g in np.unique(orc):
        groups: list[list[int]] = []
        for i in sorted(np.flatnonzero(orc == g), key=lambda k: -run.tracklets[k].n_boxes):
            home = next((grp for grp in groups if not cannot[i, grp].any()), None)
            groups.append([i]) if home is None else home.append(i)
        for grp in groups:
            out[grp] = nxt
            nxt += 1
    return out


def evaluate(run_dir: Path, gt: Path, topology: str, max_frames: int | None) -> tuple[dict, dict]:
    """{variant: scores} and the thresholds of the defaults."""
    from dataclasses import replace

    from bench.assoc_eval import RunData
    from pipeline.association.associate import associate_detailed
    from pipeline.association.config import AssociationConfig
    from pipeline.association.topology import load_topology

    run = RunData.load(run_dir, gt, max_frames)
    n = len(run.tracklets)
    out = {"oracle": run.score(run.oracle_ids()), "oracle, no overlap": run.score(constrained_oracle(run)),
           "no association": run.score(np.arange(1, n + 1))}
    base = AssociationConfig()
    stats = {}
    for name, kw in VARIANTS.items():
        res = associate_detailed(run.tracklets, replace(base, **kw))
        out[name] = run.score(res.global_ids)
        stats[name] = res.stats
    res = associate_detailed(run.tracklets, base, load_topology(topology))
    out["topology"] = run.score(res.global_ids)
    return out, stats["defaults"]


def three_view_cut(folder: Path) -> tuple[list[str], str, str]:
    """(videos, gt, topology) of the three-camera cut in ``folder``, made there first when missing."""
    videos = [str(folder / f"pets_{s}.mp4") for s in ("left", "right", "third")]
    if not all(Path(v).is_file() for v in videos) or not (folder / "gt" / "mtmc.txt").is_file():
        video = SHARED / "data" / "pets09-s2l1" / "vtest.avi"
        if not video.is_file():
            raise SystemExit(f"--three-views needs {video} (set MCMT_SHARED)")
        subprocess.run([sys.executable, str(REPO / "samples" / "make_pets_multicam.py"), "--video", str(video),
                        "--out", str(folder), "--third-view"], check=True)
    return videos, str(folder / "gt"), str(REPO / "samples" / "topology_3views.yaml")


def print_table(model: str, results: dict) -> None:
    from bench.assoc_eval import HEADER, summary_row

    print(f"\n== {model}")
    print(HEADER)
    for name, res in results.items():
        print(summary_row(name, res))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--videos", nargs="+", default=[str(REPO / "samples" / f"pets_{s}.mp4") for s in ("left", "right")])
    p.add_argument("--gt", default=str(REPO / "samples" / "gt"), help="ground truth (per-camera folders or mtmc.txt)")
    p.add_argument("--topology", default=str(REPO / "samples" / "topology.yaml"))
    p.add_argument("--detector", default=str(DETECTOR), help="detector model (offline int8 YOLOv8n by default)")
    p.add_argument("--reid", nargs="+", help="model names (" + ", ".join(MODELS) + ") or paths; default: all found")
    p.add_argument("--out", default=str(REPO / "runs" / "bench_multicam_pets"))
    p.add_argument("--max-frames", type=int, help="analyse only the first N frames of each camera")
    p.add_argument("--json", help="also write all numbers to this JSON file")
    p.add_argument("--three-views", action="store_true",
                   help="the three-camera cut (overlapping centre view, other colours) instead of the sample")
    a = p.parse_args(argv)
    if a.three_views:
        a.videos, a.gt, a.topology = three_view_cut(Path(a.out) / "pets_3views")
    models = {m: str(MODELS.get(m, m)) for m in (a.reid or [k for k, v in MODELS.items() if v.is_file()])}
    everything, chosen = {}, {}
    for name, path in models.items():
        run_dir = Path(a.out) / Path(name).stem
        args = ["run", "--videos", *a.videos, "--out", str(run_dir), "--detector", a.detector, "--reid", path,
                "--no-progress", "--replace"] + (["--max-frames", str(a.max_frames)] if a.max_frames else [])
        secs = mcmt(*args)
        results, stats = evaluate(run_dir, Path(a.gt), a.topology, a.max_frames)
        print_table(f"{name} ({secs:.0f} s for mcmt run)", results)
        everything[name], chosen[name] = results, stats
    print("\nthresholds chosen by the defaults (calibrated on each run; negatives = same camera, same time)")
    print(f"{'model':<14} {'link':>6} {'merge':>6} {'same cam':>8} {'negatives':>9} {'neg q10':>7} {'neg q50':>7} "
          f"{'pos med':>7} {'links':>5}")
    for name, st in chosen.items():
        c = st["calibration"]
        print(f"{name:<14} {st['link_threshold']:6.3f} {st['threshold']:6.3f} {st['same_camera_threshold']:8.3f} "
              f"{c['negatives']:9d} {c['negative_quantiles']['q10']:7.3f} {c['negative_quantiles']['q50']:7.3f} "
              f"{c['positive_median'] or 0:7.3f} {st.get('links', 0):5d}")
    if a.json:
        Path(a.json).write_text(json.dumps({"results": everything, "thresholds": chosen}, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())

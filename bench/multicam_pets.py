#!/usr/bin/env python
"""Two-camera benchmark on real footage: the full ``mcmt run`` pipeline on the PETS 2009 sample.

Runs detection + tracking + ReID + cross-camera association once on samples/pets_left.mp4 and
samples/pets_right.mp4 (offline int8 YOLOv8n, an available ReID model), then redoes only the
association (``mcmt associate``, from the run's cache) for the alternatives, and scores every
variant against samples/gt in the same run:

  full             association with appearance + attributes (+ the sample's camera topology)
  no_association   association.enabled=false: each camera's ids kept separate (the peer baseline)
  appearance_only  association.attribute_weight=0: attributes off
  no_topology      full, without the topology file
  same_cam_*       full with association.same_camera_threshold = 0 (a camera's tracklets never
                   join), 0.1, 0.2 or null (the cross-camera threshold)

Prints per-camera HOTA / MOTA / IDF1 and cross-camera IDF1 / handoffs, with the cross-camera IDF1
ratio against no_association. Example (about 2-5 minutes on 2 CPU cores):

  python bench/multicam_pets.py
  python bench/multicam_pets.py --max-frames 200 --reid ../shared/models/osnet_x0_25_msmt17.onnx
  python samples/make_pets_multicam.py --out /tmp/pets3 --third-view     # three cameras:
  python bench/multicam_pets.py --videos /tmp/pets3/pets_{left,right,third}.mp4 --gt /tmp/pets3/gt \
      --topology samples/topology_3views.yaml
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("MCMT_SHARED", REPO.parent / "shared"))
DETECTOR = SHARED / "models" / "yolov8n_saved_model" / "yolov8n_full_integer_quant.tflite"
REID_CANDIDATES = (REPO / "reid" / "weights" / "default.pt",
                   SHARED / "models" / "openvino" / "person-reidentification-retail-0286" / "FP16"
                   / "person-reidentification-retail-0286.xml",
                   SHARED / "models" / "osnet_x0_25_msmt17.onnx")

# name -> (overrides for `mcmt associate`, use the topology file)
VARIANTS = {
    "full": ([], True),
    "no_association": (["association.enabled=false"], True),
    "appearance_only": (["association.attribute_weight=0"], True),
    "no_topology": ([], False),
    "same_cam_off": (["association.same_camera_threshold=0"], True),
    "same_cam_0.1": (["association.same_camera_threshold=0.1"], True),
    "same_cam_0.2": (["association.same_camera_threshold=0.2"], True),
    "same_cam_any": (["association.same_camera_threshold=null"], True),
}


def mcmt(*args: str) -> float:
    """Run the mcmt CLI in a subprocess (as a user would); returns wall seconds, exits on failure."""
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "pipeline.cli", *args]
    print("$ mcmt " + " ".join(args), flush=True)
    res = subprocess.run(cmd, cwd=REPO)
    if res.returncode != 0:
        raise SystemExit(f"mcmt {args[0]} failed with exit code {res.returncode}")
    return time.perf_counter() - t0


def score(run_dir: Path, gt_dir: Path, max_frames: int | None = None) -> dict:
    """Per-camera (mot_eval) and cross-camera (mtmc_eval) metrics of one run folder."""
    from pipeline.mot_eval import evaluate_mot
    from pipeline.mtmc_eval import evaluate_multicam
    from pipeline.mtmc_io import align_cameras, load_tracks

    gt_names, gt = load_tracks(gt_dir)
    if max_frames:  # only the analysed frames count
        gt = {k: v[v[:, 0] <= max_frames] for k, v in gt.items()}
    pred_names, pred = load_tracks(run_dir)
    mapping = align_cameras(gt_names, pred_names)
    per_cam = {g: evaluate_mot(gt[g], pred[p]) for g, p in mapping.items()}
    return {"per_camera": per_cam, "cross": evaluate_multicam(gt, pred, mapping)}


def print_tables(results: dict, seconds: dict) -> None:
    print("\nper camera (single-camera metrics, ids as written by the run)")
    print(f"{'variant':<16} {'camera':<11} {'HOTA':>6} {'MOTA':>6} {'IDF1':>6} {'IDsw':>5} {'FP':>5} {'FN':>5}")
    for name, r in results.items():
        for cam, m in r["per_camera"].items():
            print(f"{name:<16} {cam:<11} {m['HOTA']:6.1f} {m['MOTA']:6.1f} {m['IDF1']:6.1f} "
                  f"{m['num_switches']:5d} {m['num_false_positives']:5d} {m['num_misses']:5d}")
    base = results.get("no_association", {}).get("cross", {}).get("IDF1", 0.0)
    print("\ncross-camera (AI City multi-camera IDF1; handoffs = a person leaving one camera for the other)")
    print(f"{'variant':<16} {'MC-IDF1':>7} {'IDP':>6} {'IDR':>6} {'x base':>6} {'ids':>9} {'multi':>7} "
          f"{'handoffs ok/missed/wrong':>25} {'secs':>6}")
    for name, r in results.items():
        m = r["cross"]
        ratio = f"{m['IDF1'] / base:6.2f}" if base else "   n/a"
        ids = f"{m['pred_ids']}/{m['true_ids']}"
        multi = f"{m['pred_multicam_ids']}/{m['true_multicam_ids']}"
        ho = f"{m['handoffs_correct']}/{m['handoffs_missed']}/{m['handoffs_wrong']} of {m['handoffs_true']}"
        print(f"{name:<16} {m['IDF1']:7.1f} {m['IDP']:6.1f} {m['IDR']:6.1f} {ratio} {ids:>9} {multi:>7} "
              f"{ho:>25} {seconds.get(name, 0.0):6.1f}")
    print("x base: MC-IDF1 / MC-IDF1 of no_association; ids and multi: predicted/true identities "
          "(multi = seen in more than one camera);\nsecs: wall time of the command (full: the whole mcmt run, others: "
          "mcmt associate on a copy of it)")


def pick_reid(arg: str | None) -> str:
    if arg:
        return arg
    for cand in REID_CANDIDATES:
        if cand.is_file():
            return str(cand)
    raise SystemExit("no ReID model found: pass --reid path/to/model (.pt, .onnx or OpenVINO .xml)")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--videos", nargs="+", default=[str(REPO / "samples" / f"pets_{s}.mp4") for s in ("left", "right")])
    p.add_argument("--gt", default=str(REPO / "samples" / "gt"), help="ground truth (per-camera folders or mtmc.txt)")
    p.add_argument("--topology", default=str(REPO / "samples" / "topology.yaml"))
    p.add_argument("--detector", default=str(DETECTOR), help="detector model (offline int8 YOLOv8n by default)")
    p.add_argument("--reid", help="ReID model (default: the first available of " +
                   ", ".join(c.name for c in REID_CANDIDATES) + ")")
    p.add_argument("--out", default=str(REPO / "runs" / "bench_multicam_pets"))
    p.add_argument("--max-frames", type=int, help="analyse only the first N frames of each camera")
    p.add_argument("--json", help="also write all numbers to this JSON file")
    a = p.parse_args(argv)
    out = Path(a.out)
    run_args = ["run", "--videos", *a.videos, "--out", str(out / "full"), "--detector", a.detector,
                "--reid", pick_reid(a.reid), "--topology", a.topology, "--no-progress"]
    if a.max_frames:
        run_args += ["--max-frames", str(a.max_frames)]
    seconds = {"run": mcmt(*run_args)}  # the full variant: the whole pipeline
    results = {}
    for name, (overrides, use_topology) in VARIANTS.items():
        run_dir = out / name
        if name != "full":
            shutil.rmtree(run_dir, ignore_errors=True)
            shutil.copytree(out / "full", run_dir, ignore=shutil.ignore_patterns("videos", "report.html"))
            args = ["associate", "--run", str(run_dir)]
            for o in overrides:
                args += ["--set", o]
            args += ["--topology", a.topology] if use_topology else ["--set", "association.topology=null"]
            seconds[name] = mcmt(*args)
        results[name] = score(run_dir, Path(a.gt), a.max_frames)
    seconds["full"] = seconds.pop("run")
    print(f"\nmcmt run (detect + track + ReID + associate, {len(a.videos)} cameras): {seconds['full']:.1f} s")
    print_tables(results, seconds)
    attrs = json.loads((out / "full" / "identities.json").read_text()).get("attribute_names", [])
    if not attrs:
        print("note: the ReID model gives no attributes, so appearance_only is the same as full")
    if a.json:
        Path(a.json).write_text(json.dumps({"seconds": seconds, "results": results}, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())

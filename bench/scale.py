"""Benchmark: the per-camera stage spread over Ray workers against the serial run, in one bench run.

Four cameras (the two sample clips, each twice under another name) go through ``mcmt run``:

  serial (all cores)   the local backend: one process, cameras batched, detector and ReID threads
                       sharing every core
  ray 1 worker         --backend ray --workers 1: one single-threaded task at a time
  ray 2 workers        --backend ray --workers 2: two single-threaded tasks at once

Each job runs in a fresh output folder (nothing cached) and in its own process. The table gives wall
time, analysed frames per second, the speed-up over the 1-worker run, and the wall time per
camera-hour of footage (how long one hour of one camera takes with that setup). "stage s" is the
per-camera stage alone (run.json: Ray start-up, tasks and stitching, or the serial loop), without
the process start, the association and the outputs. ``--check`` also
asserts that every job wrote the serial run's MOT files. The projection printed at the end scales
the 1-worker cost linearly (a projection, not a measurement). The "plain process" rows run the same
four single-threaded units in 1 and 2 ordinary processes without Ray (stage time only): the speed-up
this machine itself gives to two processes, against which Ray's is measured.

  python bench/scale.py [--frames 400] [--check]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# bench/pipeline.py would shadow the pipeline package in the worker processes
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
CLIPS = [REPO / "samples" / "pets_left.mp4", REPO / "samples" / "pets_right.mp4"]
JOBS = {"serial (all cores)": [], "ray 1 worker": ["--backend", "ray", "--workers", "1"],
        "ray 2 workers": ["--backend", "ray", "--workers", "2"]}


def run_job(out: Path, frames: int, extra: list[str]) -> dict:
    videos = [str(c) for c in CLIPS] * 2
    cmd = [sys.executable, "-m", "pipeline.cli", "run", "--videos", *videos, "--names", "a", "b", "c", "d",
           "--out", str(out), "--max-frames", str(frames), "--no-progress", "-q", *extra]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env={**os.environ, "YOLO_OFFLINE": "1"})
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} exited with {proc.returncode}:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    run = json.loads((out / "run.json").read_text())
    footage_s = sum(c["analysed_frames"] * c["stride"] / c["fps"] for c in run["cameras"])
    return {"wall": wall, "stage": run["stats"]["stage_seconds"], "frames": run["stats"]["frames"], "footage_s": footage_s,
            "mot": {p.name: p.read_bytes() for p in sorted((out / "mot").glob("*.txt"))}}


def _unit(args) -> float:
    """One camera as one single-threaded unit in this process (what a Ray task runs), no Ray."""
    import dataclasses

    from pipeline.run.backend import run_unit
    from pipeline.config import RunConfig
    from pipeline.run.video import VideoSource

    video, name, frames, out = args
    cfg = RunConfig()
    cfg = dataclasses.replace(cfg, detector=dataclasses.replace(cfg.detector, device="cpu"),
                              reid=dataclasses.replace(cfg.reid, device="cpu"))
    return run_unit(VideoSource(video, name, max_frames=frames), cfg, out, None, 1)["seconds"]


def plain_processes(out: Path, frames: int, workers: int) -> dict:
    """The four units in ``workers`` plain processes (no Ray): what the machine itself gives."""
    from concurrent.futures import ProcessPoolExecutor

    units = [(str(v), n, frames, str(out)) for v, n in zip([*CLIPS, *CLIPS], "abcd")]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(workers) as ex:
        list(ex.map(_unit, units))
    return {"stage": time.perf_counter() - t0}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, default=400, help="analysed frames per camera")
    p.add_argument("--check", action="store_true", help="assert that every job wrote the serial run's MOT files")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    a = p.parse_args()
    res = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, extra in JOBS.items():
            res[name] = run_job(Path(tmp) / name.replace(" ", "_"), a.frames, extra)
            print(f"  {name}: {res[name]['wall']:.1f} s", file=sys.stderr, flush=True)
        plain = {w: plain_processes(Path(tmp) / f"plain{w}", a.frames, w)["stage"] for w in (1, 2)}
    base, base_stage = res["ray 1 worker"]["wall"], res["ray 1 worker"]["stage"]
    print(f"4 cameras x {a.frames} frames ({res['serial (all cores)']['footage_s'] / 60:.1f} camera-minutes of "
          f"footage), {os.cpu_count()} cores")
    print(f"{'job':<20} {'wall s':>8} {'stage s':>8} {'frames/s':>9} {'vs 1 worker':>12} {'stage vs 1':>11} "
          f"{'wall per camera-hour':>21}")
    for name, r in res.items():
        per_hour = r["wall"] / (r["footage_s"] / 3600.0)
        print(f"{name:<20} {r['wall']:>8.1f} {r['stage']:>8.1f} {r['frames'] / r['wall']:>9.1f} "
              f"{base / r['wall']:>11.2f}x {base_stage / r['stage']:>10.2f}x {per_hour / 60:>17.1f} min")
    for w, sec in plain.items():
        print(f"{f'{w} plain process' + ('es' if w > 1 else ''):<20} {'-':>8} {sec:>8.1f} {4 * a.frames / sec:>9.1f} "
              f"{'-':>12} {plain[1] / sec:>10.2f}x {'-':>21}")
    print(f"Ray's efficiency at 2 workers (stage speed-up / plain processes' speed-up): "
          f"{(base_stage / res['ray 2 workers']['stage']) / (plain[1] / plain[2]):.2f}")
    same = all(r["mot"] == res["serial (all cores)"]["mot"] for r in res.values())
    print(f"same MOT files as the serial run: {'yes' if same else 'NO'}")
    one = res["ray 1 worker"]
    task_hours_per_camera_hour = one["wall"] / one["footage_s"]         # one single-threaded task
    cam_hours = 100 * 24
    print(f"projection (linear in tasks, from the 1-worker run): 100 cameras x 24 h = {cam_hours} camera-hours "
          f"need {cam_hours * task_hours_per_camera_hour:.0f} single-core task-hours; on N nodes of C cores "
          f"about {cam_hours * task_hours_per_camera_hour:.0f} / (N x C) hours")
    if a.json:
        Path(a.json).write_text(json.dumps({k: {kk: vv for kk, vv in v.items() if kk != "mot"} for k, v in res.items()},
                                           indent=1))
    if a.check and not same:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

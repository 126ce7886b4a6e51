"""Benchmark: OpenVINO threads pinned to cores or not, in ``mcmt run`` of the two-camera sample.

``mcmt run`` runs the detector on the main thread and the ReID trunk on a background thread, each an
OpenVINO network with one inference thread on a 2-core machine. OpenVINO pins a compiled network's threads
to cores by default (``ENABLE_CPU_PINNING``), each network on its own, so both threads may land on the
same core while the other idles. core/device.py's ``openvino_config`` turns pinning off; this bench runs
the same job with it on (``pinned``: the config patched in the child) and off (``default``), alternated,
``--repeat`` times each, and prints frames/s (frames of both cameras / wall time of ``mcmt run``, the
fastest run), CPU-seconds (user + system of the child), the ratio to ``pinned`` and whether the outputs
(mot/*.txt, mtmc.txt) are byte-identical. The machine may be shared: compare the ratio, not the numbers.

A second table: the embedded detector, one inference thread, 30 calls on one 480 x 864 input, in one
process alone and in two processes at once (what two single-CPU Ray tasks on one node do, or two `mcmt run`
jobs on one machine), pinned and not: pinned, each process pins its thread on its own and both may take the
same core.

--emulate-avx2: oneDNN limited to AVX2 (a CPU without VNNI, as in bench/pipeline.py).

Usage: python bench/ov_pinning.py [--repeat 2] [--emulate-avx2] [--reid default|MODEL] [--skip-run]
"""
from __future__ import annotations

import argparse
import filecmp
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(REPO))

from bench.children import run_child  # noqa: E402
from bench.detectors import EMULATE_AVX2  # noqa: E402

SAMPLE = [str(REPO / "samples" / "pets_left.mp4"), str(REPO / "samples" / "pets_right.mp4")]
OUTPUTS = ("mot/pets_left.txt", "mot/pets_right.txt", "mtmc.txt")


def child(arm: str, reid: str, out: str) -> dict:
    import core.device as device

    if arm == "pinned":                        # OpenVINO's own default, before any network is compiled
        plain = device.openvino_config

        def pinned(ov_device, num_threads):
            cfg = plain(ov_device, num_threads)
            if ov_device == "CPU":
                cfg["ENABLE_CPU_PINNING"] = True
            return cfg

        device.openvino_config = pinned
    import openvino  # noqa: F401  (imports outside the timing)

    from pipeline.cli import main

    t0 = time.perf_counter()
    code = main(["run", "--videos", *SAMPLE, "--out", out, "--reid", reid, "--device", "cpu", "--no-progress", "-q"])
    wall = time.perf_counter() - t0
    use = resource.getrusage(resource.RUSAGE_SELF)
    stats = json.loads((Path(out) / "run.json").read_text())["stats"]
    return {"code": code, "wall": wall, "cpu": use.ru_utime + use.ru_stime, "frames": stats["frames"],
            "detect_s": stats["detect_seconds"], "reid_s": stats["reid_seconds"]}


def detector_calls(pin: bool, calls: int = 30) -> float:
    """Seconds of ``calls`` inferences of the embedded detector with one thread (after one warm-up call)."""
    import numpy as np
    import openvino as ov

    from core.device import openvino_config
    from pipeline.run.detectors import DEFAULT_MODEL

    core = ov.Core()
    model = core.read_model(str(DEFAULT_MODEL))
    compiled = core.compile_model(model, "CPU", {**openvino_config("CPU", 1), "ENABLE_CPU_PINNING": pin})
    x = np.zeros(tuple(d.get_length() for d in model.inputs[0].get_partial_shape()), np.float32)
    compiled(x)
    t0 = time.perf_counter()
    for _ in range(calls):
        compiled(x)
    return time.perf_counter() - t0


def processes_table() -> None:
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    print("\nthe embedded detector, one OpenVINO thread, 30 calls: seconds in one process alone and in each of "
          "two at once")
    print("| OpenVINO threads | one process | two processes (each) | slowdown |")
    print("|---|---|---|---|")
    for pin in (True, False):
        one = min(detector_calls(pin) for _ in range(2))
        with ctx.Pool(2) as pool:
            two = pool.map(detector_calls, [pin, pin])
        label = "pinned (OpenVINO's default)" if pin else "not pinned (mcmt's default)"
        print(f"| {label} | {one:.2f} | {two[0]:.2f} / {two[1]:.2f} | {max(two) / one:.2f}x |")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeat", type=int, default=2, help="runs per arm, alternated; the fastest is reported")
    p.add_argument("--reid", default="default", help="ReID model of mcmt run (default: the shipped checkpoint)")
    p.add_argument("--emulate-avx2", action="store_true", help="oneDNN limited to AVX2 (a CPU without VNNI)")
    p.add_argument("--skip-run", action="store_true", help="only the two-process table")
    p.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        print(json.dumps(child(*a.child)))
        return 0
    if a.emulate_avx2:                         # the two-process table in this process's children too
        os.environ.update(EMULATE_AVX2)
    if a.skip_run:
        processes_table()
        return 0
    env = EMULATE_AVX2 if a.emulate_avx2 else None
    arms = ("pinned", "default")
    best: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(a.repeat):
            for arm in arms:
                out = str(Path(tmp) / f"{arm}{k}")
                r = run_child(__file__, [arm, a.reid, out], env)
                if r["code"]:
                    raise SystemExit(f"mcmt run failed ({arm}): exit {r['code']}")
                if arm not in best or r["wall"] < best[arm]["wall"]:
                    best[arm] = {**r, "out": out}
        same = all(filecmp.cmp(Path(best["pinned"]["out"]) / f, Path(best["default"]["out"]) / f, shallow=False)
                   for f in OUTPUTS)
        print(f"mcmt run of the two-camera sample, ReID {a.reid}"
              f"{', oneDNN limited to AVX2' if a.emulate_avx2 else ''}; fastest of {a.repeat} per arm")
        print("| OpenVINO threads | frames/s | wall s | CPU s | detect s | ReID s | x pinned |")
        print("|---|---|---|---|---|---|---|")
        base = best["pinned"]["frames"] / best["pinned"]["wall"]
        for arm in arms:
            r = best[arm]
            fps = r["frames"] / r["wall"]
            label = "pinned (OpenVINO's default)" if arm == "pinned" else "not pinned (mcmt's default)"
            print(f"| {label} | {fps:.1f} | {r['wall']:.1f} | {r['cpu']:.1f} | {r['detect_s']:.1f} | "
                  f"{r['reid_s']:.1f} | {fps / base:.2f} |")
        print(f"outputs identical: {'yes' if same else 'NO'}")
    processes_table()
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())

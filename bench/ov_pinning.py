"""Benchmark: OpenVINO threads pinned to cores or not, in ``mcmt run`` of the two-camera sample.

``mcmt run`` runs the detector on the main thread and the ReID trunk on a background thread, each an
OpenVINO network with one inference thread on a 2-core machine. OpenVINO pins a compiled network's threads
to cores by default (``ENABLE_CPU_PINNING``), each network on its own, so both threads may land on the
same core while the other idles. core/device.py's ``openvino_config`` turns pinning off; this bench runs
the same job with it on (``pinned``: the config patched in the child) and off (``default``), alternated,
``--repeat`` times each, and prints frames/s (frames of both cameras / wall time of ``mcmt run``, the
fastest run), CPU-seconds (user + system of the child), the ratio to ``pinned`` and whether the outputs
(mot/*.txt, mtmc.txt) are byte-identical. The machine may be shared: compare the ratio, not the numbers.

--emulate-avx2: oneDNN limited to AVX2 (a CPU without VNNI, as in bench/pipeline.py).

Usage: python bench/ov_pinning.py [--repeat 2] [--emulate-avx2] [--reid default|MODEL]
"""
from __future__ import annotations

import argparse
import filecmp
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(REPO))

from bench.children import run_child  # noqa: E402

SAMPLE = [str(REPO / "samples" / "pets_left.mp4"), str(REPO / "samples" / "pets_right.mp4")]
EMULATE_AVX2 = {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}
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


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeat", type=int, default=2, help="runs per arm, alternated; the fastest is reported")
    p.add_argument("--reid", default="default", help="ReID model of mcmt run (default: the shipped checkpoint)")
    p.add_argument("--emulate-avx2", action="store_true", help="oneDNN limited to AVX2 (a CPU without VNNI)")
    p.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        print(json.dumps(child(*a.child)))
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
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())

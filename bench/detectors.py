"""Benchmark of the detector candidates for ``mcmt run``'s embedded default, on this machine.

Speed (always): ms per frame of one detector call (preprocessing, inference, decoding and NMS
included) at 1 and 2 inference threads, on real frames: PETS09-S2L1 ``vtest.avi`` (768x576, one
frame per call) and the two-camera sample (258x384, both cameras' frames in one call, as
``mcmt run`` batches them). Candidates and threads are interleaved over --rounds rounds and the
median round is reported, since the machine may be shared. The CPU's int8 support is printed from
/proc/cpuinfo: without avx512_vnni / avx_vnni (or AMX) int8 models are slow.

Tracking (--track): for each candidate, ``mcmt run`` (default tracker and ReID) in its own process on
PETS09-S2L1 (795 frames, one camera; MOTA / IDF1 / HOTA against MOT15 gt) and on the two-camera sample
(2 x 795 frames; per-camera and cross-camera IDF1 against samples/gt), with each run's frames/s.

Candidates: default (the embedded detector: Intel pedestrian-detection-adas-0002 FP16-INT8 on OpenVINO),
the same network in FP16, YOLOX-Nano ONNX (OpenVINO and onnxruntime), YOLOv8n int8 TFLite (ultralytics,
LiteRT); the files other than the default come from --shared.

Usage: python bench/detectors.py [--rounds 5] [--calls 10] [--track] [--only NAME ...] [--shared ../shared]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(REPO))

from bench.children import run_child  # noqa: E402

ADAS = "models/openvino/pedestrian-detection-adas-0002/{0}/pedestrian-detection-adas-0002.xml"
# name -> (model: "default" or a path under --shared, runtime for YOLOX/SSD files, what it is)
CANDIDATES = {
    "default": ("default", "auto", "embedded: Intel pedestrian-detection-adas-0002 FP16-INT8, 672x384, OpenVINO"),
    "adas-0002 FP16": (ADAS.format("FP16"), "auto", "the same network in float, OpenVINO"),
    "yolox-nano": ("models/yolox_nano.onnx", "auto", "YOLOX-Nano 416x416 float, OpenVINO"),
    "yolox-nano/onnxruntime": ("models/yolox_nano.onnx", "onnxruntime", "the same file on onnxruntime"),
    "yolov8n int8 tflite": ("models/yolov8n_saved_model/yolov8n_full_integer_quant.tflite", "auto",
                            "ultralytics YOLOv8n 640 int8, LiteRT"),
}
INT8_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


def cpu_info() -> dict:
    """Model name, core count and the SIMD flags that matter for int8 / bf16 inference."""
    flags, name = set(), "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
            elif line.startswith("model name") and name == "unknown":
                name = line.split(":", 1)[1].strip()
    except OSError:
        pass
    wanted = ("avx2", "avx512f", *INT8_FLAGS, "avx512_bf16")
    return {"name": name, "cores": os.cpu_count(), "flags": [f for f in wanted if f in flags],
            "int8_fast": any(f in flags for f in INT8_FLAGS)}


def model_path(name: str, shared: Path) -> str:
    model = CANDIDATES[name][0]
    return model if model == "default" else str(shared / model)


def build(name: str, shared: Path, threads: int):
    from pipeline.run.config import DetectorConfig
    from pipeline.run.detectors import build_detector
    from pipeline.run.detectors.yolox import YoloxDetector

    model, backend = model_path(name, shared), CANDIDATES[name][1]
    if backend != "auto":
        return YoloxDetector(model, backend=backend, threads=threads)
    return build_detector(DetectorConfig(model=model, device="cpu", threads=threads))


def read_frames(shared: Path) -> dict:
    import cv2

    def first(path, n=1):
        cap = cv2.VideoCapture(str(path))
        imgs = [cap.read()[1] for _ in range(n)]
        cap.release()
        return imgs

    return {"pets 768x576": first(shared / "data/pets09-s2l1/vtest.avi"),
            "sample 2x258x384": [first(REPO / "samples" / f"pets_{s}.mp4")[0] for s in ("left", "right")]}


def speed(names: list[str], shared: Path, rounds: int, calls: int) -> dict:
    """{(name, threads, input): median ms per frame}."""
    frames = read_frames(shared)
    dets = {(n, t): build(n, shared, t) for n in names for t in (1, 2)}
    for det in dets.values():                       # warm-up (first calls compile / allocate)
        for imgs in frames.values():
            det(imgs)
    times: dict = {}
    for _ in range(rounds):
        for (n, t), det in dets.items():
            for label, imgs in frames.items():
                t0 = time.perf_counter()
                for _ in range(calls):
                    det(imgs)
                ms = (time.perf_counter() - t0) * 1000 / calls / len(imgs)
                times.setdefault((n, t, label), []).append(ms)
    return {k: statistics.median(v) for k, v in times.items()}


# ---- tracking accuracy: one mcmt run per child process ---------------------------------------------
def child_run(videos: list[str], model: str, out: str, frames: int) -> dict:
    import openvino  # noqa: F401  (imports outside the timing)
    import ultralytics  # noqa: F401

    from pipeline.cli import main

    t0 = time.perf_counter()
    code = main(["run", "--videos", *videos, "--out", out, "--detector", model, "--device", "cpu",
                 "--no-progress", "-q", "--max-frames", str(frames)])
    stats = json.loads((Path(out) / "run.json").read_text())["stats"]
    return {"code": code, "wall": time.perf_counter() - t0, "frames": stats["frames"]}


def track(names: list[str], shared: Path, frames: int) -> dict:
    from pipeline.evaluation.scores import evaluate_folders

    pets = shared / "data/pets09-s2l1"
    sample = [str(REPO / "samples" / f"pets_{s}.mp4") for s in ("left", "right")]
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            if CANDIDATES[name][1] != "auto":        # the same network as another candidate
                continue
            model = model_path(name, shared)
            row = {}
            for label, videos, gt in (("pets", [str(pets / "vtest.avi")], pets),
                                      ("sample", sample, REPO / "samples/gt")):
                run_dir = Path(tmp) / f"{name.replace(' ', '_')}_{label}"
                res = run_child(__file__, ["run", ",".join(videos), model, str(run_dir), str(frames)])
                scores = evaluate_folders(run_dir, gt)
                row[label] = {"fps": res["frames"] / res["wall"], "wall": res["wall"], **scores["combined"],
                              "cross": scores.get("multi_camera", {}).get("metrics", {})}
            out[name] = row
    return out


def print_speed(cpu: dict, names: list[str], ms: dict, rounds: int, calls: int) -> None:
    print(f"\nCPU {cpu['name']}, {cpu['cores']} cores, flags: {' '.join(cpu['flags']) or 'none of interest'}; "
          f"int8 VNNI: {'yes' if cpu['int8_fast'] else 'NO (int8 models are slow here)'}; "
          f"load {os.getloadavg()[0]:.1f}")
    print(f"ms per frame, median of {rounds} rounds x {calls} calls (preprocess + inference + decode + NMS)")
    labels = sorted({k[2] for k in ms})
    head = "".join(f"{f'{lab} {t}T':>22}" for lab in labels for t in (1, 2))
    print(f"{'candidate':22}{head}  what")
    for n in names:
        cells = "".join(f"{ms[(n, t, lab)]:22.1f}" for lab in labels for t in (1, 2))
        print(f"{n:22}{cells}  {CANDIDATES[n][2]}")


def print_track(rows: dict) -> None:
    print("\nmcmt run (botsort + default ReID) per candidate; PETS09-S2L1 one camera and the two-camera sample")
    print(f"{'candidate':22} {'PETS MOTA':>9} {'IDF1':>6} {'HOTA':>6} {'fps':>6} | {'sample MOTA':>11} {'IDF1':>6} "
          f"{'cross IDF1':>10} {'fps':>6}")
    for n, r in rows.items():
        p, s = r["pets"], r["sample"]
        print(f"{n:22} {p['MOTA']:9.1f} {p['IDF1']:6.1f} {p['HOTA']:6.1f} {p['fps']:6.1f} | {s['MOTA']:11.1f} "
              f"{s['IDF1']:6.1f} {s['cross'].get('IDF1', float('nan')):10.1f} {s['fps']:6.1f}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shared", default=os.environ.get("MCMT_SHARED", str(REPO.parent / "shared")))
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--calls", type=int, default=10, help="detector calls per candidate and round")
    p.add_argument("--only", nargs="+", choices=list(CANDIDATES), metavar="NAME", help="candidates to measure")
    p.add_argument("--track", action="store_true", help="also run mcmt run + eval per candidate (minutes)")
    p.add_argument("--frames", type=int, default=795, help="frames per camera of the --track runs")
    p.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        _, videos, model, out, frames = a.child
        print(json.dumps(child_run(videos.split(","), model, out, int(frames))))
        return 0
    shared = Path(a.shared)
    if not (shared / "data/pets09-s2l1/vtest.avi").is_file():
        print(f"needs {shared}/data/pets09-s2l1 (set --shared)", file=sys.stderr)
        return 2
    names = [n for n in (a.only or CANDIDATES) if n == "default" or Path(model_path(n, shared)).is_file()]
    cpu = cpu_info()
    ms = speed(names, shared, a.rounds, a.calls)
    print_speed(cpu, names, ms, a.rounds, a.calls)
    if a.track:
        print_track(track(names, shared, a.frames))
    return 0


if __name__ == "__main__":
    sys.exit(main())

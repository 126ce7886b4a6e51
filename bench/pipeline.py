"""Benchmark of ``mcmt run`` on two cameras against detection alone and ultralytics' own tracking.

Two camera views are cut from PETS09-S2L1 ``vtest.avi`` (left x 0..352 and right x 416..768, as in
tests/test_run_pipeline.py); with --sample also the repository's two-camera sample
(samples/pets_left.mp4 + pets_right.mp4, 2 x 795 frames). Each measurement runs in its own process
(clean peak memory, ru_maxrss) on the same videos:

* ``mcmt run``     : decode + detect (``--detector``, the embedded default unless told otherwise) +
                     BoT-SORT-style tracking + ReID (``--reid``: the shipped default checkpoint unless told
                     otherwise) + association + all outputs
* ``mcmt bytetrack``: the same with ``tracker.name=bytetrack`` (IoU only; crops embedded every few frames)
* ``mcmt int8 yolov8n``: ``mcmt run`` with the int8 TFLite YOLOv8n, the detector ultralytics runs below
* ``detect only``  : decode + our batched detector calls (``--detector``), nothing else
* ``ultralytics``  : ``model.track(frame, persist=True, tracker="bytetrack.yaml")`` with the int8 TFLite
                     YOLOv8n, one model per camera, as ultralytics ships it (its LiteRT interpreter gets CPU
                     cores - 1 threads: 1 of 2 here)
* ``ultralytics all cores``: the same with ultralytics' ``NUM_THREADS`` set to all cores, as ``mcmt run``
                     does for a .tflite detector (``detector.threads: 0``)

The CPU's int8 support (avx512_vnni / avx_vnni / amx_int8 in /proc/cpuinfo) is printed: the int8 model
is fast only with it, so the ratios to ultralytics depend on it.

frames/s = frames of both cameras / wall time of the job (model loading included, imports not; the
fastest of --repeat runs, since the machine may be shared).

--emulate-avx2 measures what a CPU without VNNI would do, on a CPU with it: every job runs with oneDNN
(used by OpenVINO and PyTorch) limited to AVX2 (ONEDNN_MAX_CPU_ISA=AVX2, ATEN_CPU_CAPABILITY=avx2). On
this 2-core VNNI machine that makes the embedded int8 detector 2.5-3x slower per frame, about what
the issue measured on an AVX2-only AMD EPYC. ultralytics' LiteRT (XNNPACK) ignores the limit and keeps
this CPU's VNNI speed, so under emulation its ratios are lower bounds of the ratios on a CPU without
VNNI (there the int8 peer itself is about 10x slower).
Memory of ``mcmt run`` is measured for the clip and for a 4x longer input: the peak (ru_maxrss, set by
the busiest frames) and what the process holds when the run returns (VmRSS); both must stay flat.

Usage: python bench/pipeline.py [--frames 100] [--sample] [--shared ../shared] [--skip-long]
                                [--detector default|MODEL] [--reid default|MODEL]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# this file is named pipeline.py: keep bench/ off the import path so `import pipeline` is the package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(REPO))

from bench.children import run_child  # noqa: E402
from bench.detectors import cpu_info  # noqa: E402

VIEWS = {"left": (0, 352), "right": (416, 768)}


def make_views(video: Path, frames: int, out: Path) -> list[Path]:
    import cv2

    cap = cv2.VideoCapture(str(video))
    writers = {n: cv2.VideoWriter(str(out / f"{n}.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (x1 - x0, 576))
               for n, (x0, x1) in VIEWS.items()}
    for _ in range(frames):
        ok, img = cap.read()
        if not ok:
            break
        for n, (x0, x1) in VIEWS.items():
            writers[n].write(img[:, x0:x1].copy())
    for w in writers.values():
        w.release()
    cap.release()
    return [out / f"{n}.avi" for n in VIEWS]


# ---- children: one measurement each ------------------------------------------------------------
def child_pipeline(videos, det, reid, out, tracker: str = "botsort") -> dict:
    import openvino  # noqa: F401  (imports are outside the timing, as for ultralytics below)
    import ultralytics  # noqa: F401

    from pipeline.cli import main

    t0 = time.perf_counter()
    code = main(["run", "--videos", *videos, "--out", out, "--detector", det, "--reid", reid, "--device", "cpu",
                 "--no-progress", "-q", "--set", f"tracker.name={tracker}"])
    wall = time.perf_counter() - t0
    stats = json.loads((Path(out) / "run.json").read_text())["stats"]
    return {"code": code, "wall": wall, "frames": stats["frames"], "detect_s": stats["detect_seconds"],
            "reid_s": stats["reid_seconds"], "crops": stats["embedded_crops"]}


def child_detect(videos, det) -> dict:
    import openvino  # noqa: F401
    import ultralytics  # noqa: F401

    from pipeline.run.config import DetectorConfig
    from pipeline.run.detectors import build_detector
    from pipeline.run.video import open_sources

    t0 = time.perf_counter()
    detector = build_detector(DetectorConfig(model=det, device="cpu"))
    iters = [iter(s) for s in open_sources(videos)]
    frames = 0
    while True:
        batch = [f.image for f in (next(it, None) for it in iters) if f is not None]
        if not batch:
            break
        detector(batch)
        frames += len(batch)
    return {"code": 0, "wall": time.perf_counter() - t0, "frames": frames}


def child_ultralytics(videos, det, all_cores: bool = False) -> dict:
    from pipeline.run.detectors import litert_threads

    with litert_threads(os.cpu_count() if all_cores else None):
        return _ultralytics_loop(videos, det)


def _ultralytics_loop(videos, det) -> dict:
    import cv2
    from ultralytics import YOLO

    t0 = time.perf_counter()
    models = [YOLO(det, task="detect") for _ in videos]          # one tracker state per camera
    caps = [cv2.VideoCapture(v) for v in videos]
    frames = 0
    while True:
        active = 0
        for model, cap in zip(models, caps):
            ok, img = cap.read()
            if not ok:
                continue
            model.track(img, persist=True, tracker="bytetrack.yaml", classes=[0], conf=0.1, device="cpu",
                        verbose=False)
            frames += 1
            active += 1
        if not active:
            break
    return {"code": 0, "wall": time.perf_counter() - t0, "frames": frames}



def current_rss_mb() -> float:
    """Resident memory now (Linux /proc; NaN elsewhere): what the run still holds when it returns."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


LABELS = {"pipeline": "mcmt run", "pipeline_bytetrack": "mcmt bytetrack", "pipeline_int8": "mcmt int8 yolov8n",
          "detect": "detect only", "ultralytics": "ultralytics", "ultralytics_all": "ultralytics all cores"}


def child(kind: str, rest: list[str], det: str, int8: str, reid: str) -> int:
    videos = rest[0].split(",")
    reid = rest[2] if len(rest) > 2 else reid
    out = {"pipeline": lambda: child_pipeline(videos, det, reid, rest[1]),
           "pipeline_bytetrack": lambda: child_pipeline(videos, det, reid, rest[1], "bytetrack"),
           "pipeline_int8": lambda: child_pipeline(videos, int8, reid, rest[1]),
           "detect": lambda: child_detect(videos, det),
           "ultralytics": lambda: child_ultralytics(videos, int8),
           "ultralytics_all": lambda: child_ultralytics(videos, int8, all_cores=True)}[kind]()
    out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["end_mb"] = current_rss_mb()
    print(json.dumps(out))
    return 0


def inputs(a, video: Path, tmp: Path) -> list[tuple[str, str]]:
    """(name, comma-separated videos): the cut views, 4x longer views, the repository's sample."""
    out = []
    for name, n in [("clip", a.frames)] + ([] if a.skip_long else [("4x", 4 * a.frames)]):
        d = tmp / name
        d.mkdir()
        out.append((name, ",".join(map(str, make_views(video, n, d)))))
    if a.sample:
        out.append(("sample", ",".join(str(REPO / "samples" / f"pets_{s}.mp4") for s in ("left", "right"))))
    return out


EMULATE_AVX2 = {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}


def print_table(rows: list, det: str, reid: str, emulated: bool = False) -> None:
    cpu = cpu_info()
    print(f"\ntwo cameras (clip/4x: {', '.join(f'{k} x{v[0]}..{v[1]}' for k, v in VIEWS.items())} of vtest.avi; "
          f"sample: samples/pets_*.mp4), {cpu['cores']} CPUs ({cpu['name']}; {' '.join(cpu['flags'])}; int8 VNNI "
          f"{'yes' if cpu['int8_fast'] else 'NO'}), load {os.getloadavg()[0]:.1f}")
    print(f"mcmt detector {Path(det).name}, ReID {Path(reid).name}; ultralytics and 'mcmt int8 yolov8n': int8 TFLite "
          "YOLOv8n; frames/s = frames of both cameras / wall time of the job (model loading included)")
    if emulated:
        print("EMULATED CPU WITHOUT VNNI: oneDNN (OpenVINO, PyTorch) limited to AVX2 "
              f"({' '.join(f'{k}={v}' for k, v in EMULATE_AVX2.items())}); ultralytics' LiteRT ignores the limit "
              "and runs at this CPU's VNNI speed, so the ratios to it are lower bounds for a CPU without VNNI")
    print(f"{'input':6} {'job':22} {'frames':>6} {'wall s':>7} {'frames/s':>9} {'peak MB':>8} {'end MB':>7}  notes")
    base = {n: r for n, k, r in rows if k == "ultralytics"}
    like = {n: r for n, k, r in rows if k == "ultralytics_all"}
    for name, kind, r in rows:
        fps = r["frames"] / r["wall"]
        note = f"{fps / (base[name]['frames'] / base[name]['wall']):.2f}x ultralytics"
        if name in like and kind != "ultralytics_all":
            note += f", {fps / (like[name]['frames'] / like[name]['wall']):.2f}x all cores"
        if kind.startswith("pipeline"):
            note += f"; detect {r['detect_s']:.1f} s, reid {r['reid_s']:.1f} s ({r['crops']} crops)"
        print(f"{name:6} {LABELS[kind]:22} {r['frames']:6d} {r['wall']:7.1f} {fps:9.1f} {r['peak_mb']:8.0f} "
              f"{r['end_mb']:7.0f}  {note}")
    mem = {n: r for n, k, r in rows if k == "pipeline"}
    if "4x" in mem:
        print(f"mcmt run memory 4x / clip: peak {mem['4x']['peak_mb'] / mem['clip']['peak_mb']:.2f}, "
              f"at the end of the run {mem['4x']['end_mb'] / mem['clip']['end_mb']:.2f} (peaks follow the "
              "busiest frames; growth with length would show at the end)")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, default=100, help="frames per camera of the clip")
    p.add_argument("--sample", action="store_true", help="also run on samples/pets_{left,right}.mp4 (2 x 795 frames)")
    p.add_argument("--shared", default=os.environ.get("MCMT_SHARED", str(REPO.parent / "shared")))
    p.add_argument("--skip-long", action="store_true", help="skip the 4x longer memory run")
    p.add_argument("--repeat", type=int, default=2, help="runs per job; the fastest is reported")
    p.add_argument("--detector", default="default", help="detector of mcmt run (default: the embedded one)")
    p.add_argument("--reid", default="default", help="ReID model of mcmt run (default: the shipped checkpoint; "
                                                     "'0286' = the Intel OpenVINO model under --shared)")
    p.add_argument("--emulate-avx2", action="store_true",
                   help="run every job with oneDNN limited to AVX2: a CPU without VNNI (see above)")
    p.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    a = p.parse_args()
    shared = Path(a.shared)
    int8 = str(shared / "models/yolov8n_saved_model/yolov8n_full_integer_quant.tflite")
    reid = a.reid
    if reid == "0286":
        reid = str(shared / "models/openvino/person-reidentification-retail-0286/FP16/"
                   "person-reidentification-retail-0286.xml")
    if a.child:
        return child(a.child[0], a.child[1:], a.detector, int8, reid)
    video = shared / "data/pets09-s2l1/vtest.avi"
    if not video.is_file() or not Path(int8).is_file():
        print(f"needs {video} and {int8} (set --shared)")
        return 1
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, vids in inputs(a, video, Path(tmp)):
            kinds = (["pipeline", "ultralytics"] if name == "4x" else
                     ["pipeline", "pipeline_bytetrack", "pipeline_int8", "detect", "ultralytics", "ultralytics_all"])
            for kind in kinds:   # best of --repeat runs: the machine is shared, take the least disturbed
                runs = [run_child(__file__, [kind, vids, str(Path(tmp) / f"run_{name}_{kind}_{i}"), reid,
                                             "--detector", a.detector],
                                  EMULATE_AVX2 if a.emulate_avx2 else None) for i in range(a.repeat)]
                rows.append((name, kind, min(runs, key=lambda r: r["wall"])))
    print_table(rows, a.detector, reid, a.emulate_avx2)
    return 0


if __name__ == "__main__":
    sys.exit(main())

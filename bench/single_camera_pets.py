"""Benchmark: ``mcmt run`` vs ultralytics' own ``model.track`` on one real camera (PETS09-S2L1).

All jobs read ``vtest.avi`` (795 frames, 768x576); ultralytics runs the offline int8 TFLite YOLOv8n
under --shared, ``mcmt run`` its embedded default detector (``--detector`` to change) and, as
``mcmt int8 yolov8n``, the same int8 model as ultralytics. All outputs are scored by the code behind
``mcmt eval`` (pipeline.evaluation.scores.evaluate_folders: motmetrics CLEAR-MOT / IDF1 at IoU 0.5,
plus HOTA) against the MOT15 ground truth, in the same run:

  ultralytics      YOLO(int8).track(frame, persist=True, tracker="bytetrack.yaml"), defaults otherwise
                   (its LiteRT interpreter gets CPU cores - 1 threads)
  ultralytics all cores   the same with ultralytics' NUM_THREADS = all cores, as mcmt run uses for a
                   .tflite detector (detector.threads: 0)
  mcmt defaults    mcmt run: the default detector, BoT-SORT-style tracking (appearance of the --reid
                   model, detections embedded lazily) + association of one camera's tracklets
  mcmt int8 yolov8n   mcmt defaults with the int8 YOLOv8n detector: today's numbers of the old default
  mcmt bytetrack   the same with tracker.name=bytetrack (IoU only in the per-camera tracker)
  mcmt no same-cam join   association.same_camera_threshold=0: the association never joins two
                   tracklets of one camera (what the tracker split stays split)
  mcmt no-assoc    the tracker alone (association.enabled=false)

Each job runs in its own process; frames/s = 795 / wall time of the job (model loading included).
Prints one table with the ratio of each job's IDF1 / MOTA / frames/s to ultralytics', and the CPU's
int8 support (VNNI flags; the int8 model is slow without them).

Usage: python bench/single_camera_pets.py [--shared ../shared] [--detector default|MODEL] [--reid default|MODEL]
                                          [--frames N] [--jobs JOB ...]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(REPO))

from bench.children import run_child  # noqa: E402
from bench.detectors import cpu_info  # noqa: E402

ULTRALYTICS = ("ultralytics", "ultralytics all cores")
JOBS = {
    "ultralytics": None,
    "ultralytics all cores": None,
    "mcmt defaults": [],
    "mcmt int8 yolov8n": [],
    "mcmt bytetrack": ["tracker.name=bytetrack"],
    "mcmt no same-cam join": ["association.same_camera_threshold=0"],
    "mcmt no-assoc": ["association.enabled=false"],
}


def child_mcmt(video: str, det: str, reid: str, out: str, frames: int, sets: list[str]) -> dict:
    import openvino  # noqa: F401  (imports outside the timing, as for ultralytics below)
    import ultralytics  # noqa: F401

    from pipeline.cli import main

    t0 = time.perf_counter()
    args = ["run", "--videos", video, "--out", out, "--detector", det, "--reid", reid, "--device", "cpu",
            "--no-progress", "-q", "--max-frames", str(frames)]
    for s in sets:
        args += ["--set", s]
    code = main(args)
    if code:
        raise RuntimeError(f"mcmt run exited with {code}")
    return {"wall": time.perf_counter() - t0, "pred": out}


def child_ultralytics(video: str, det: str, out: str, frames: int, all_cores: bool = False) -> dict:
    from pipeline.run.detectors import litert_threads

    with litert_threads(os.cpu_count() if all_cores else None):
        return _ultralytics_loop(video, det, out, frames)


def _ultralytics_loop(video: str, det: str, out: str, frames: int) -> dict:
    import cv2
    import numpy as np
    from ultralytics import YOLO

    t0 = time.perf_counter()
    model = YOLO(det, task="detect")
    cap = cv2.VideoCapture(video)
    rows = []
    for frame in range(1, frames + 1):
        ok, img = cap.read()
        if not ok:
            break
        res = model.track(img, persist=True, tracker="bytetrack.yaml", classes=[0], device="cpu", verbose=False)[0]
        if res.boxes is None or res.boxes.id is None:
            continue
        xyxy, ids, conf = res.boxes.xyxy.numpy(), res.boxes.id.numpy(), res.boxes.conf.numpy()
        for (x1, y1, x2, y2), i, c in zip(xyxy, ids, conf):
            rows.append((frame, int(i), x1, y1, x2 - x1, y2 - y1, c, -1, -1, -1))
    wall = time.perf_counter() - t0
    path = Path(out) / "ultralytics.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savetxt(path, np.array(rows, dtype=np.float64).reshape(-1, 10), fmt="%.2f", delimiter=",")
    return {"wall": wall, "pred": str(path)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shared", default=os.environ.get("MCMT_SHARED", str(REPO.parent / "shared")))
    p.add_argument("--reid", default="default", help="ReID model of mcmt run (default: the shipped checkpoint)")
    p.add_argument("--detector", default="default", help="detector of mcmt run (default: the embedded one)")
    p.add_argument("--frames", type=int, default=795, help="frames of vtest.avi to process (default: all)")
    p.add_argument("--jobs", nargs="+", default=list(JOBS), choices=list(JOBS), metavar="JOB",
                   help=f"jobs to run (default: all of {', '.join(JOBS)})")
    p.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    a = p.parse_args()
    shared = Path(a.shared)
    seq = shared / "data/pets09-s2l1"
    video = str(seq / "vtest.avi")
    int8 = str(shared / "models/yolov8n_saved_model/yolov8n_full_integer_quant.tflite")
    if a.child:
        name, out = a.child[0], a.child[1]
        det = int8 if name == "mcmt int8 yolov8n" else a.detector
        res = (child_ultralytics(video, int8, out, a.frames, name == "ultralytics all cores") if name in ULTRALYTICS
               else child_mcmt(video, det, a.reid, out, a.frames, JOBS[name]))
        print(json.dumps(res))
        return 0
    if not Path(video).is_file() or not Path(int8).is_file():
        print(f"needs {video} and {int8} (set --shared)", file=sys.stderr)
        return 2

    import numpy as np

    from pipeline.evaluation.scores import evaluate_folders
    from pipeline.formats.mot import read_mot

    gt_frames = read_mot(seq / "gt" / "gt.txt")
    gt_cut = seq if a.frames >= int(gt_frames[:, 0].max()) else None
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        if gt_cut is None:                                    # score only the frames processed
            gt_cut = Path(tmp) / "gt.txt"
            np.savetxt(gt_cut, gt_frames[gt_frames[:, 0] <= a.frames], fmt="%.2f", delimiter=",")
        for name in a.jobs:
            res = run_child(__file__, [name, str(Path(tmp) / name.replace(" ", "_")), "--reid", a.reid,
                             "--detector", a.detector, "--frames", str(a.frames), "--shared", a.shared])
            m = evaluate_folders(res["pred"], gt_cut)["combined"]
            rows[name] = {**m, "fps": a.frames / res["wall"], "wall": res["wall"]}
    cpu = cpu_info()
    print(f"\nPETS09-S2L1 vtest.avi, {a.frames} frames, {cpu['cores']} CPUs ({cpu['name']}; {' '.join(cpu['flags'])}; "
          f"int8 VNNI {'yes' if cpu['int8_fast'] else 'NO'}), load {os.getloadavg()[0]:.1f}")
    print(f"mcmt detector {Path(a.detector).name}; ultralytics and 'mcmt int8 yolov8n': int8 TFLite YOLOv8n; "
          f"ReID {Path(a.reid).name}; scored at IoU 0.5")
    print(f"{'job':21} {'HOTA':>6} {'MOTA':>6} {'IDF1':>6} {'IDsw':>5} {'FP':>5} {'FN':>5} {'frames/s':>9}"
          f"  vs ultralytics (IDF1 / MOTA / frames/s)")
    base = rows.get("ultralytics")
    for name, r in rows.items():
        ratio = (f"  {r['IDF1'] / base['IDF1']:.2f}x / {r['MOTA'] / base['MOTA']:.2f}x / {r['fps'] / base['fps']:.2f}x"
                 if base and name != "ultralytics" else "")
        print(f"{name:21} {r['HOTA']:6.1f} {r['MOTA']:6.1f} {r['IDF1']:6.1f} {r['num_switches']:5d} "
              f"{r['num_false_positives']:5d} {r['num_misses']:5d} {r['fps']:9.1f}{ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""GPU check: the two-camera sample through ``mcmt run`` and a short 256x128 ReID training, on ``cuda``.

1. ``mcmt run --videos samples/pets_left.mp4 samples/pets_right.mp4 --device cuda`` (the CLI code path):
   the ReID network runs on the GPU in fp16; the detector is ``--detector`` (default: the embedded one,
   which runs on OpenVINO on the CPU; an ultralytics ``.pt`` file runs on the GPU in half precision; a
   YOLOX .onnx uses onnxruntime's CUDA provider when onnxruntime-gpu is installed). Prints frames/s.
2. The default ReID model alone on ``cuda``: which engine runs its trunk (torch on an NVIDIA GPU, the IR
   converted by reid/ir_torch.py), crops/s, and the minimum cosine of its features to the CPU's float IR.
3. ``mcmt train-reid`` with configs/reid/smoke_cpu.yaml moved to ``cuda`` at 256x128 with AMP on the
   Market-1501 mini set under --shared, a few epochs of a few batches. Prints images/s of the last epoch.

Without CUDA it says so and exits 0 (nothing to check). ``--device cpu`` runs the same steps on the CPU
(to try the script itself; slow).

Usage: python bench/gpu_check.py [--detector default|MODEL] [--frames N] [--epochs 3] [--shared ../shared]
                                 [--device cuda|cpu]
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
sys.path.insert(0, str(REPO))


def check_run(out: Path, detector: str, frames: int | None, device: str) -> dict:
    from pipeline.cli import main

    args = ["run", "--videos", str(REPO / "samples/pets_left.mp4"), str(REPO / "samples/pets_right.mp4"),
            "--out", str(out), "--device", device, "--detector", detector, "--no-progress", "-q"]
    if frames:
        args += ["--max-frames", str(frames)]
    t0 = time.perf_counter()
    code = main(args)
    wall = time.perf_counter() - t0
    if code:
        raise SystemExit(f"mcmt run failed with exit code {code}")
    stats = json.loads((out / "run.json").read_text())["stats"]
    return {"frames": stats["frames"], "wall_s": wall, "fps": stats["frames"] / wall,
            "stage_fps": stats["frames"] / max(stats["stage_seconds"], 1e-9),
            "detect_s": stats["detect_seconds"], "reid_s": stats["reid_seconds"],
            "crops": stats["embedded_crops"]}


def check_training(out: Path, shared: Path, epochs: int, device: str) -> dict:
    from pipeline.cli import main

    data = shared / "data" / "market1501-mini"
    if not data.is_dir():
        return {"skipped": f"no training data at {data}"}
    sets = [f"device={device}", f"amp={str(device != 'cpu').lower()}", "model.input_size=[256,128]",
            f"schedule.epochs={epochs}",
            "data.num_ids=8", "data.num_instances=4", f"out={out}"]
    args = ["train-reid", "--config", str(REPO / "configs/reid/smoke_cpu.yaml"), "--data-root", str(data),
            "--no-progress", "-q"]
    for s in sets:
        args += ["--set", s]
    code = main(args)
    if code:
        raise SystemExit(f"mcmt train-reid failed with exit code {code}")
    last = json.loads((out / "history.json").read_text())["history"][-1]
    images = last["batches"] * 8 * 4
    return {"epochs": epochs, "batches_last_epoch": last["batches"], "images_per_s": images / max(last["time_s"], 1e-9)}


def check_reid(device: str, n: int = 256) -> dict:
    """The default ReID model on ``device``: which engine runs its trunk, crops/s, and its features against the
    CPU's float IR (cosine) on real crops cut from the sample's first frame."""
    import cv2
    import numpy as np

    from reid import ReIDEncoder

    cap = cv2.VideoCapture(str(REPO / "samples/pets_left.mp4"))
    ok, frame = cap.read()
    if not ok:
        raise SystemExit("cannot read samples/pets_left.mp4")
    h, w = frame.shape[:2]
    rng = np.random.default_rng(0)
    crops = []
    for _ in range(n):
        ch = int(rng.integers(h // 6, h // 2))
        y, x = int(rng.integers(0, h - ch)), int(rng.integers(0, w - ch // 2))
        crops.append(frame[y:y + ch, x:x + ch // 2].copy())
    enc = ReIDEncoder.from_checkpoint("default", device=device)
    enc.embed(crops[:32])                                                   # warm-up
    t0 = time.perf_counter()
    feats, _ = enc.embed(crops)
    wall = time.perf_counter() - t0
    ref, _ = ReIDEncoder.from_checkpoint("default", precision="fp32").embed(crops[:32])
    cos = (feats[:32] * ref).sum(1)
    backend = enc.backend
    return {"engine": getattr(backend, "engine", "torch"), "precision": getattr(backend, "precision", "-"),
            "crops_per_s": n / max(wall, 1e-9), "min_cos_to_cpu_fp32": float(cos.min())}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--detector", default="default", help="detector of mcmt run (default: the embedded one)")
    p.add_argument("--frames", type=int, help="analyse only the first N frames of each camera (default: all)")
    p.add_argument("--epochs", type=int, default=3, help="training epochs (the first one warms up)")
    p.add_argument("--shared", default=os.environ.get("MCMT_SHARED", str(REPO.parent / "shared")))
    p.add_argument("--device", default="cuda", help="cuda (default) or cpu (to try the script without a GPU)")
    a = p.parse_args()
    import torch

    if a.device != "cpu" and not torch.cuda.is_available():
        print("gpu_check: no CUDA device found (torch.cuda.is_available() is False); nothing to check")
        return 0
    name = torch.cuda.get_device_name(0) if a.device != "cpu" else "CPU"
    print(f"gpu_check: {name}, torch {torch.__version__}, CUDA {torch.version.cuda}")
    with tempfile.TemporaryDirectory() as tmp:
        run = check_run(Path(tmp) / "run", a.detector, a.frames, a.device)
        print(f"mcmt run, two-camera sample, --device {a.device}, detector {a.detector}: {run['frames']} frames in "
              f"{run['wall_s']:.1f} s = {run['fps']:.1f} frames/s (per-camera stage {run['stage_fps']:.1f} frames/s; "
              f"detect {run['detect_s']:.1f} s, ReID {run['reid_s']:.1f} s for {run['crops']} crops)")
        reid = check_reid(a.device)
        print(f"default ReID on {a.device}: trunk on {reid['engine']} ({reid['precision']}), "
              f"{reid['crops_per_s']:.0f} crops/s, features vs the CPU's float IR: min cosine "
              f"{reid['min_cos_to_cpu_fp32']:.4f}")
        train = check_training(Path(tmp) / "train", Path(a.shared), a.epochs, a.device)
        if "skipped" in train:
            print(f"mcmt train-reid: skipped ({train['skipped']})")
        else:
            print(f"mcmt train-reid 256x128 on {a.device}: {train['images_per_s']:.0f} images/s "
                  f"(last of {train['epochs']} epochs, {train['batches_last_epoch']} batches of 32)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Choosing the compute device: one rule for the detector, the ReID network and training."""
from __future__ import annotations

from core.errors import UserError

VALID = "auto, cpu, cuda, cuda:N"


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:          # torch is a dependency; without it only the CPU is there
        return False
    return bool(torch.cuda.is_available())


def resolve_device(name: str) -> str:
    """``auto`` -> ``cuda:0`` when CUDA is available, else ``cpu``; ``cuda``/``cuda:N`` without CUDA is
    an error that says how to fix it; anything else is an error listing the valid names."""
    name = str(name).strip().lower()
    if name == "auto":
        return "cuda:0" if cuda_available() else "cpu"
    if name == "cpu":
        return name
    if name == "cuda" or (name.startswith("cuda:") and name[5:].isdigit()):
        if not cuda_available():
            raise UserError(f"device {name!r} requested but CUDA is not available here; "
                            "use --device cpu (or auto)")
        return "cuda:0" if name == "cuda" else name
    raise UserError(f"unknown device {name!r}; valid: {VALID}")


def openvino_config(ov_device: str, num_threads: int | None) -> dict:
    """``compile_model`` settings of every OpenVINO network we run (detector, ReID trunk, external IRs): on
    the CPU float32 inference, since OpenVINO's default on CPUs with bfloat16 units (AMD Zen 4, recent
    Xeons) is bfloat16, whose rounding moved the ReID embedding by up to 0.05 and so a run's boxes, tracks
    and identities against other CPUs; threads not pinned to cores, since each compiled network pins its
    threads on its own and the detector (main thread) and the ReID (background thread), one thread each,
    then share one core while the other idles (``python bench/ov_pinning.py``: the two-camera sample
    1.3x faster unpinned, the same outputs); and the thread count when given. Nothing for another device."""
    if ov_device != "CPU":
        return {}
    config = {"INFERENCE_PRECISION_HINT": "f32", "ENABLE_CPU_PINNING": False}
    if num_threads:
        config["INFERENCE_NUM_THREADS"] = int(num_threads)
    return config

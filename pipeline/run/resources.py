"""What one process of ``mcmt run`` runs with: CPU threads of the detector and the ReID network, and
the ReID encoder. Used by the serial run (``pipeline/commands/run.py``) and by every Ray task
(``pipeline/run/backend.py``)."""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import UserError

if TYPE_CHECKING:
    from pipeline.config import RunConfig


def reid_threads(threads: int) -> int:
    """CPU threads of the ReID network: ``threads``, or for 0 half the cores (at least 1)."""
    from pipeline.run.detectors.runtime import available_cores

    return int(threads) if threads and threads > 0 else max(1, available_cores() // 2)


def detector_threads(threads: int, reid_cpu_threads: int) -> int:
    """CPU threads of the detector: ``threads``, or for 0 the cores the ReID network leaves (at least
    1; all cores when no ReID runs on the CPU). The ReID worker thread embeds step t's crops while the
    main thread detects step t + 1, so together they must not ask for more threads than there are
    cores (more is slower in total; bench/pipeline.py measures it)."""
    from pipeline.run.detectors.runtime import available_cores

    if threads and threads > 0:
        return int(threads)
    return max(1, available_cores() - reid_cpu_threads)


def load_encoder(checkpoint: str, device: str, batch_size: int = 32, threads: int = 0):
    """The ReID encoder, or None for 'none'; a clear error when the model cannot be used. ``threads``:
    CPU threads of an ONNX / OpenVINO model (a PyTorch model follows ``torch_threads``)."""
    if checkpoint.lower() == "none":
        return None
    if checkpoint != "default" and not Path(checkpoint).exists():
        raise UserError(f"ReID model not found: {checkpoint} (pass --reid path/to/model.pt|.onnx|.xml, "
                        "or --reid none to run without appearance features)")
    from core.device import resolve_device
    from reid import ReIDEncoder

    return ReIDEncoder.from_checkpoint(checkpoint, device=resolve_device(device), batch_size=batch_size,
                                       num_threads=threads)


def on_cpu(device: str) -> bool:
    from core.device import resolve_device

    return resolve_device(device) == "cpu"


def torch_thread_count(cfg: RunConfig, reid: int, detects: bool) -> int:
    """PyTorch threads of the run: the ReID network's, unless PyTorch also runs the detector (an
    ultralytics .pt model on the CPU), which then gets ``detector.threads`` (0: all cores)."""
    from pipeline.run.detectors import model_kind
    from pipeline.run.detectors.runtime import cpu_threads

    model = cfg.detector.model
    torch_detector = detects and model_kind(model) == "ultralytics" and Path(model).suffix.lower() in (".pt", ".pth")
    if torch_detector and on_cpu(cfg.detector.device):
        return cpu_threads(cfg.detector.threads)
    return reid


@contextlib.contextmanager
def torch_threads(n: int):
    """PyTorch's intra-op threads (ReID on the CPU, an ultralytics .pt detector) set to ``n`` for the
    run and restored after it; threads started meanwhile (the ReID worker) take ``n`` on first use."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)

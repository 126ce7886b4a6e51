"""Person detectors for ``mcmt run``: a list of BGR frames (all cameras' frames of one step) in, one
float32 array (N, 6) x1, y1, x2, y2, score, cls (cls 0 = person) per frame out, boxes down to
``detector.conf`` (ByteTrack's second stage uses the low-score ones).

:func:`build_detector` picks the backend from the model:

* ``default``: the detector embedded in ``weights/`` (see ``weights/MODEL_NOTE.md``); runs offline;
* an ONNX file with YOLOX's raw grid output (``yolox_nano.onnx``): :class:`YoloxDetector`;
* an OpenVINO IR / ONNX file with SSD ``[1, 1, N, 7]`` rows (pedestrian-detection-adas-0002): :class:`SsdDetector`;
* an OpenVINO IR / ONNX file with ``boxes`` [N, 5] + ``labels`` [N] outputs (person-vehicle-bike-detection-2003):
  :class:`BoxesDetector`;
* anything else (``.pt``, ``.tflite``, ultralytics exports, released names): ultralytics, :class:`YoloDetector`.

YOLOX and SSD models run on OpenVINO, onnxruntime or OpenCV (see :mod:`.runtime`) with
``detector.threads`` inference threads (0: all cores).
"""
from __future__ import annotations

import hashlib
import logging
from functools import lru_cache
from pathlib import Path

from core.errors import UserError
from pipeline.run.detectors.boxes import BoxesDetector, is_boxes_labels
from pipeline.run.detectors.files import FileDetections, detection_files
from pipeline.run.detectors.ssd import SsdDetector
from pipeline.run.detectors.ultralytics import YoloDetector, litert_threads, released_name
from pipeline.run.detectors.yolox import YoloxDetector, grid_cells

log = logging.getLogger(__name__)

__all__ = ["DEFAULT", "DEFAULT_MODEL", "BoxesDetector", "FileDetections", "SsdDetector", "YoloDetector", "YoloxDetector",
           "build_detector", "check_model_path", "default_fingerprint", "detection_files", "litert_threads",
           "model_kind", "released_name", "resolve_model"]

DEFAULT = "default"
WEIGHTS = Path(__file__).resolve().parent / "weights"
DEFAULT_MODEL = WEIGHTS / "person-vehicle-bike-detection-2003.xml"   # embedded (weights/MODEL_NOTE.md), + .bin
DEFAULT_KIND = "boxes"
NETWORK_SUFFIXES = (".onnx", ".xml")


def resolve_model(model: str) -> Path | str:
    """``default`` -> the embedded model file; anything else unchanged."""
    if str(model).strip().lower() != DEFAULT:
        return model
    if not DEFAULT_MODEL.is_file() or not DEFAULT_MODEL.with_suffix(".bin").is_file():
        raise UserError(f"the embedded detector ({DEFAULT_MODEL}) is missing from this installation; "
                        "reinstall mcmt, or pass --detector with a model file")
    return DEFAULT_MODEL


def check_model_path(model: str) -> None:
    """A clear error before any work when a model that must be a local file is missing."""
    model = str(model)
    if model.strip().lower() == DEFAULT:
        resolve_model(model)
        return
    path = Path(model)
    looks_local = path.suffix.lower() in (".tflite", ".onnx", ".engine", ".xml", ".mlpackage") \
        or "/" in model or path.is_dir()
    if looks_local and not path.exists():
        raise UserError(f"detector model not found: {model} (--detector default is the embedded detector; "
                        "or a file ultralytics loads, or a YOLOX / SSD .onnx / .xml)")


def model_kind(model: str | Path) -> str:
    """``yolox``, ``ssd``, ``boxes`` or ``ultralytics`` (see the module docstring), from the model's outputs."""
    if str(model).strip().lower() == DEFAULT or Path(model) == DEFAULT_MODEL:
        return DEFAULT_KIND
    path = Path(model)
    if path.suffix.lower() not in NETWORK_SUFFIXES or not path.is_file():
        return "ultralytics"
    return _kind_from_file(str(path.resolve()), path.stat().st_mtime_ns)


@lru_cache(maxsize=16)
def _kind_from_file(path: str, _mtime: int) -> str:
    from pipeline.run.detectors.runtime import io_shapes

    try:
        inp, outs = io_shapes(path)
    except UserError:
        raise
    except Exception as exc:  # a file the runtime cannot parse
        raise UserError(f"cannot read detector model {path}: {exc}") from None
    if len(outs) == 1 and len(outs[0]) == 4 and outs[0][-1] == 7:
        return "ssd"
    if is_boxes_labels(outs):
        return "boxes"
    if len(outs) == 1 and len(outs[0]) == 3 and len(inp) == 4 and outs[0][-1] > 5 \
            and outs[0][1] == grid_cells(inp[2], inp[3]):
        return "yolox"
    if Path(path).suffix.lower() == ".xml" and not (Path(path).parent / "metadata.yaml").is_file():
        raise UserError(f"{path}: an OpenVINO model that is neither SSD ([1,1,N,7]) nor YOLOX (raw grid "
                        "output) nor an ultralytics export (folder with metadata.yaml)")
    return "ultralytics"


def _setting(cfg, name: str, default):
    value = getattr(cfg, name, None)
    return default if value is None else value


def build_detector(cfg, **overrides):
    """The detector for a :class:`~pipeline.run.config.DetectorConfig`, or any object with its fields
    (argparse namespace); ``overrides`` win (e.g. ``device="cpu"``)."""
    from pipeline.run.config import DetectorConfig

    base = DetectorConfig()
    s = {k: overrides.get(k, _setting(cfg, k, getattr(base, k)))
         for k in ("model", "conf", "iou", "imgsz", "device", "batch", "threads")}
    check_model_path(s["model"])
    path, kind = resolve_model(s["model"]), model_kind(s["model"])
    name = DEFAULT if path == DEFAULT_MODEL else str(path)
    device = _device(s["device"]) if kind != "ultralytics" else s["device"]
    if kind == "yolox":
        return YoloxDetector(str(path), conf=s["conf"], iou=s["iou"], device=device, batch=s["batch"],
                             threads=s["threads"], name=name)
    if kind == "boxes":
        return BoxesDetector(str(path), conf=s["conf"], device=device, threads=s["threads"], name=name)
    if kind == "ssd":
        return SsdDetector(str(path), conf=s["conf"], device=device, batch=s["batch"], threads=s["threads"],
                           name=name)
    return YoloDetector(str(path), conf=s["conf"], iou=s["iou"], imgsz=s["imgsz"], device=s["device"],
                        batch=s["batch"], threads=s["threads"])


def _device(name: str) -> str:
    """``auto`` -> ``cuda:0`` with CUDA, else ``cpu``; a CUDA name without CUDA stays (the runtime
    then uses the CPU): the network backends never fail for want of a GPU."""
    from core.device import cuda_available

    name = str(name).strip().lower()
    if name == "auto":
        return "cuda:0" if cuda_available() else "cpu"
    return name


def default_fingerprint() -> dict:
    """Identity of the embedded detector for the stage cache: its file name and the content hash of its
    files (.xml and .bin; a few milliseconds for a few MB; no modification time, which installs do not keep)."""
    path = resolve_model(DEFAULT)
    digest = hashlib.sha256()
    for part in (path, path.with_suffix(".bin")):
        with open(part, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return {"embedded": path.name, "sha256": digest.hexdigest()}

"""An OpenVINO IR person-ReID model (Intel Open Model Zoo) as the frozen trunk of our network.

Intel's person-reidentification-retail models (0277, 0286, 0288) end in the same way::

    ... last feature map (N, C, 16, 8), ReLU
        -> global depthwise convolution (a learned weighting of the 16 x 8 cells) -> (N, C)
        -> fully connected + batch norm + PReLU -> the 256-d "reid_embedding"

:class:`IRTrunk` runs the IR unchanged (its own embedding is reproduced exactly: it *is* the IR)
and adds the last feature map as a second output (found by topology: the input of the depthwise
convolution whose kernel covers the whole map). Our multi-task heads (reid/model.py, backbone
``ir_map``) then work on that map reduced to its upper and lower halves (:func:`reduce_map`), so
that training can run on features computed once and cached (reid/trunk_cache.py).
"""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Mapping

import numpy as np

from core.errors import UserError
from reid.preprocess import OMZ_BGR_255, Preprocess, normalize_numpy

log = logging.getLogger(__name__)

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


def resolve_ir_path(path: str | Path, near: str | Path | None = None) -> Path:
    """An IR ``.xml`` path as given (absolute or relative to the working directory), else relative to
    ``near`` (a checkpoint's folder), else relative to the package's ``reid/weights`` folder."""
    p = Path(path)
    candidates = [p] if p.is_absolute() else [p, *([Path(near) / p] if near else []), WEIGHTS_DIR / p]
    for c in candidates:
        if c.is_file():
            return c.resolve()
    raise UserError(f"OpenVINO trunk {path!s} not found (looked in: {', '.join(str(c) for c in candidates)}); "
                    "give the .xml file of an Intel person-reidentification-retail model with its .bin")


def ir_files(xml: Path) -> dict:
    """The IR's files' contents, to be carried inside a checkpoint (``IRTrunk`` reads them back)."""
    return {"name": xml.name, "xml": xml.read_text(), "bin": xml.with_suffix(".bin").read_bytes()}


def ir_fingerprint(xml: Path) -> str:
    """A short hash of the IR's .xml and .bin (cache keys)."""
    h = hashlib.sha1()
    for f in (xml, xml.with_suffix(".bin")):
        h.update(f.read_bytes())
    return h.hexdigest()[:12]


def find_feature_map(model):
    """The output feeding the global depthwise convolution (kernel = the whole map) -> ov Output."""
    for op in reversed(model.get_ordered_ops()):
        if op.get_type_name() != "GroupConvolution":
            continue
        x, w = op.input(0).get_partial_shape(), op.input(1).get_partial_shape()
        if x.rank.get_length() == 4 and x[2].is_static and w[-2] == x[2] and w[-1] == x[3]:
            return op.input(0).get_source_output()
    raise UserError("this OpenVINO model has no global depthwise pooling layer: only Intel's "
                    "person-reidentification-retail models (0277, 0286, 0288) can be used as a trunk")


class IRTrunk:
    """``(N, h, w, 3)`` BGR uint8 crops (already resized) -> (IR embedding (N, D), map (N, C, h', w'))."""

    def __init__(self, xml: str | Path | Mapping, num_threads: int = 0, device: str = "cpu"):
        """``xml``: the IR's .xml path (its .bin beside it), or its files' contents
        ``{"name", "xml": text, "bin": bytes}`` as a checkpoint carries them (reid/checkpoint.py)."""
        try:
            import openvino as ov
        except ImportError:
            raise UserError("the OpenVINO trunk needs openvino: pip install openvino") from None
        core = ov.Core()
        self.path = Path(xml["name"]) if isinstance(xml, Mapping) else Path(xml)
        try:
            model = (core.read_model(model=xml["xml"], weights=ov.Tensor(np.frombuffer(xml["bin"], np.uint8)))
                     if isinstance(xml, Mapping) else core.read_model(str(self.path)))
        except Exception as exc:
            raise UserError(f"{self.path}: OpenVINO cannot read this model ({exc})") from None
        fmap = find_feature_map(model)
        shape = model.inputs[0].get_partial_shape()
        h, w = shape[2].get_length(), shape[3].get_length()
        self.preprocess = Preprocess((h, w), **OMZ_BGR_255)
        model.add_outputs([fmap])
        model.reshape({model.inputs[0].get_any_name(): ov.PartialShape([-1, 3, h, w])})
        self.channels = int(fmap.get_partial_shape()[1].get_length())
        ov_device = "GPU" if str(device).startswith("cuda") and "GPU" in core.available_devices else "CPU"
        config = {"INFERENCE_NUM_THREADS": int(num_threads)} if num_threads and ov_device == "CPU" else {}
        self.compiled = core.compile_model(model, ov_device, config)
        self.emb_out, self.map_out = self.compiled.outputs[0], self.compiled.outputs[-1]
        self.dim = int(self.emb_out.get_partial_shape()[1].get_length())

    def __call__(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        res = self.compiled(normalize_numpy(batch, self.preprocess))
        emb = np.asarray(res[self.emb_out], np.float32).reshape(len(batch), -1)
        return emb, np.asarray(res[self.map_out], np.float32)


def reduce_map(fmap: np.ndarray, pooling: str) -> np.ndarray:
    """(N, C, H, W) map -> (N, C, 2, 1): its upper and lower halves, each average or max pooled.

    Everything the heads pool (the whole map, its halves) follows exactly from these two cells
    (whole = mean / max of the halves), so the heads on the reduced map equal the heads on the map."""
    n, c, h, w = fmap.shape
    if h % 2:
        raise ValueError(f"feature map height {h} is odd: cannot split it into halves")
    halves = fmap.reshape(n, c, 2, (h // 2) * w)
    out = halves.mean(axis=3) if pooling == "avg" else halves.max(axis=3)
    return out[..., None].astype(np.float32)

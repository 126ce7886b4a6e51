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

A checkpoint may also carry an int8 copy of the IR (``trunk_files_int8``, NNCF post-training
quantization, reid/quantize.py); :func:`pick_trunk_files` chooses which one runs.
"""
from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Mapping

import numpy as np

from core.device import openvino_config
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


PRECISIONS = ("auto", "int8", "fp32")


def pick_trunk_files(files: Mapping | None, files_int8: Mapping | None, precision: str = "auto"):
    """``(files, precision)``: the IR a model on an external trunk runs with. ``auto`` takes the int8
    IR when the checkpoint carries one (measured faster on CPUs with and without VNNI, reid/MODEL_CARD.md),
    else the IR as shipped (``fp32``: the FP16 IR, computed in float32 on the CPU)."""
    if precision not in PRECISIONS:
        raise UserError(f"trunk precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "int8" and not files_int8:
        raise UserError("this checkpoint carries no int8 trunk (trunk_files_int8); write one with "
                        "'mcmt export-reid --checkpoint CKPT --out OUT.pt --int8 --data-root ../shared/data'")
    if files_int8 and precision in ("auto", "int8"):
        return files_int8, "int8"
    return files, "fp32"


def find_feature_map(model):
    """The output feeding the global depthwise convolution (kernel = the whole map) -> ov Output.
    In an int8 IR a FakeQuantize sits in front of that convolution: the map is the FakeQuantize's input
    (the ReLU's float output, as in the float IR)."""
    for op in reversed(model.get_ordered_ops()):
        if op.get_type_name() != "GroupConvolution":
            continue
        x, w = op.input(0).get_partial_shape(), op.input(1).get_partial_shape()
        if x.rank.get_length() == 4 and x[2].is_static and w[-2] == x[2] and w[-1] == x[3]:
            src = op.input(0).get_source_output()
            while src.get_node().get_type_name() == "FakeQuantize":
                src = src.get_node().input(0).get_source_output()
            return src
    raise UserError("this OpenVINO model has no global depthwise pooling layer: only Intel's "
                    "person-reidentification-retail models (0277, 0286, 0288) can be used as a trunk")


# ONEDNN_MAX_CPU_ISA values below AVX-512: bench/pipeline.py --emulate-avx2 (a CPU without VNNI on one with it)
_AVX2_LIMITS = {"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2"}


def emulating_avx2() -> bool:
    """Whether oneDNN is limited below AVX-512 on this process (``ONEDNN_MAX_CPU_ISA``)."""
    return os.environ.get("ONEDNN_MAX_CPU_ISA", "").strip().upper() in _AVX2_LIMITS


def decompose_mvn(model) -> int:
    """Replace every MVN node by reductions and element-wise ops (the same function); returns how many.

    Only for ``ONEDNN_MAX_CPU_ISA`` below AVX-512 on an AVX-512 CPU: OpenVINO 2026.4's CPU MVN kernel
    crashes (segmentation fault) in that emulation, on Intel 0277 / 0286 and their int8 copies. Sums
    times 1/n, not means, so that OpenVINO's MVN fusion does not put the MVN back. MVN runs on small
    tensors in these models: the cost of the emulated run is that of the IR."""
    import openvino.opset13 as ops

    n = 0
    for node in list(model.get_ordered_ops()):
        if node.get_type_name() != "MVN":
            continue
        attrs = node.get_attributes()
        x, axes = node.input(0).get_source_output(), node.input(1).get_source_output()
        shape = x.get_partial_shape()
        rank = shape.rank.get_length()
        dims = [int(a) % rank for a in axes.get_node().get_data().ravel()]
        inv = ops.constant(np.float32(1.0 / float(np.prod([shape[d].get_length() for d in dims]))))
        d = ops.subtract(x, ops.multiply(ops.reduce_sum(x, axes, keep_dims=True), inv))
        out = d
        if attrs["normalize_variance"]:
            var = ops.multiply(ops.reduce_sum(ops.multiply(d, d), axes, keep_dims=True), inv)
            eps = ops.constant(np.float32(attrs["eps"]))
            den = (ops.sqrt(ops.add(var, eps)) if str(attrs["eps_mode"]).upper() == "INSIDE_SQRT"
                   else ops.add(ops.sqrt(var), eps))
            out = ops.divide(d, den)
        node.output(0).replace(out.output(0))
        n += 1
    if n:
        model.validate_nodes_and_infer_types()
    return n


def _node_output(model, name: str):
    for op in model.get_ordered_ops():
        if op.get_friendly_name() == name:
            return op.output(0)
    raise UserError(f"no node named {name!r} in this OpenVINO model")


class IRTrunk:
    """``(N, h, w, 3)`` BGR uint8 crops (already resized) -> (IR embedding (N, D), map (N, C, h', w'))."""

    def __init__(self, xml: str | Path | Mapping, num_threads: int = 0, device: str = "cpu",
                 map_node: str | None = None):
        """``xml``: the IR's .xml path (its .bin beside it), or its files' contents
        ``{"name", "xml": text, "bin": bytes}`` as a checkpoint carries them (reid/checkpoint.py).
        ``map_node``: the node (friendly name) whose output is returned as the map instead of the last
        feature map (reid/trunk_tune.py: the input of the last block)."""
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
        if emulating_avx2() and decompose_mvn(model):
            log.info("%s: MVN decomposed (ONEDNN_MAX_CPU_ISA=%s emulation)", self.path.name,
                     os.environ.get("ONEDNN_MAX_CPU_ISA"))
        fmap = find_feature_map(model) if map_node is None else _node_output(model, map_node)
        shape = model.inputs[0].get_partial_shape()
        h, w = shape[2].get_length(), shape[3].get_length()
        self.preprocess = Preprocess((h, w), **OMZ_BGR_255)
        model.add_outputs([fmap])
        model.reshape({model.inputs[0].get_any_name(): ov.PartialShape([-1, 3, h, w])})
        self.channels = int(fmap.get_partial_shape()[1].get_length())
        ov_device = "GPU" if str(device).startswith("cuda") and "GPU" in core.available_devices else "CPU"
        self.compiled = core.compile_model(model, ov_device, openvino_config(ov_device, num_threads))
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

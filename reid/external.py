"""ONNX (onnxruntime) and OpenVINO IR backends for :class:`reid.encoder.ReIDEncoder`.

Each backend is a callable ``(N, h, w, 3) uint8 batch -> (features (N, D), attributes (N, A))``
float32 numpy arrays (features not yet normalised) with attributes ``preprocess``, ``dim``,
``attribute_names`` and ``batch_size`` (the largest batch the model takes; 0 = any).

ONNX files exported by ``mcmt export-reid`` carry their preprocessing and attribute names as
metadata; for other ONNX files the torchreid convention is assumed (RGB, ImageNet mean/std,
input size read from the model). OpenVINO IR models follow Intel's Open Model Zoo convention
(BGR, 0-255).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from core.errors import UserError
from reid.preprocess import OMZ_BGR_255, Preprocess, normalize_numpy

log = logging.getLogger(__name__)

ONNX_META_KEY = "mcmt_reid"     # metadata_props key holding our JSON description


def _static_hw(shape, default=(256, 128)) -> tuple[int, int]:
    h, w = shape[2], shape[3]
    return (h, w) if isinstance(h, int) and isinstance(w, int) and h > 0 and w > 0 else default


def _fixed_batch(dim) -> int:
    return dim if isinstance(dim, int) and dim > 0 else 0


class OnnxBackend:
    def __init__(self, path: str | Path, device: str = "cpu", preprocess: Preprocess | None = None,
                 num_threads: int = 0):
        try:
            import onnxruntime as ort
        except ImportError:
            raise UserError("ONNX ReID models need onnxruntime: pip install onnxruntime") from None
        providers = ["CPUExecutionProvider"]
        if str(device).startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        opts = ort.SessionOptions()
        if num_threads:
            opts.intra_op_num_threads = num_threads
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=providers)
        except Exception as exc:
            raise UserError(f"{path}: onnxruntime cannot load this model ({exc})") from None
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.output_names = [o.name for o in self.session.get_outputs()]
        meta = self.session.get_modelmeta().custom_metadata_map.get(ONNX_META_KEY)
        self.meta = json.loads(meta) if meta else None
        if preprocess is None:
            preprocess = (Preprocess.from_dict(self.meta["preprocess"]) if self.meta
                          else Preprocess(_static_hw(inp.shape)))
        self.preprocess = preprocess
        self.batch_size = _fixed_batch(inp.shape[0])
        self.attribute_names = tuple(self.meta.get("attribute_names", ())) if self.meta else ()
        self.dim = self.meta["dim"] if self.meta else self._probe_dim()

    def _probe_dim(self) -> int:
        h, w = self.preprocess.input_size
        feats, _ = self(np.zeros((1, h, w, 3), np.uint8))
        return int(feats.shape[1])

    def __call__(self, batch: np.ndarray):
        x = normalize_numpy(batch, self.preprocess)
        outs = self.session.run(None, {self.input_name: x})
        feats = np.asarray(outs[0], np.float32).reshape(len(x), -1)
        if self.attribute_names and len(outs) > 1:
            attrs = np.asarray(outs[1], np.float32).reshape(len(x), -1)
        else:
            attrs = np.zeros((len(x), 0), np.float32)
        return feats, attrs


class OpenVINOBackend:
    def __init__(self, path: str | Path, device: str = "cpu", preprocess: Preprocess | None = None,
                 num_threads: int = 0):
        try:
            import openvino as ov
        except ImportError:
            raise UserError("OpenVINO ReID models need openvino: pip install openvino") from None
        core = ov.Core()
        try:
            model = core.read_model(str(path))
        except Exception as exc:
            raise UserError(f"{path}: OpenVINO cannot read this model ({exc}); give the .xml file with its .bin "
                            "next to it") from None
        from core.device import openvino_config
        from reid.ir_trunk import decompose_mvn, emulating_avx2

        if emulating_avx2():
            decompose_mvn(model)      # OpenVINO's MVN kernel crashes in that emulation (reid/ir_trunk.py)
        shape = model.inputs[0].get_partial_shape()
        dims = [d.get_length() if d.is_static else -1 for d in shape]
        if len(dims) != 4:
            raise UserError(f"{path}: expected an image input (N, 3, H, W), got shape {shape}")
        self.preprocess = preprocess or Preprocess(_static_hw(dims), **OMZ_BGR_255)
        h, w = self.preprocess.input_size
        self.batch_size = 0
        try:   # let the model take any batch size
            model.reshape({model.inputs[0].get_any_name(): ov.PartialShape([-1, 3, h, w])})
        except Exception as exc:  # some IRs have a hard-coded batch: run image by image
            log.debug("OpenVINO model %s keeps its static batch (%s)", path, exc)
            self.batch_size = max(dims[0], 1)
        ov_device = "GPU" if str(device).startswith("cuda") and "GPU" in core.available_devices else "CPU"
        self.compiled = core.compile_model(model, ov_device, openvino_config(ov_device, num_threads))
        self.output = self.compiled.outputs[0]
        self.attribute_names = ()
        self.dim = int(self(np.zeros((1, h, w, 3), np.uint8))[0].shape[1])

    def __call__(self, batch: np.ndarray):
        x = normalize_numpy(batch, self.preprocess)
        feats = np.asarray(self.compiled(x)[self.output], np.float32).reshape(len(x), -1)
        return feats, np.zeros((len(x), 0), np.float32)


def find_model_file(path: Path) -> Path:
    """A folder of an exported model -> its .xml (preferring FP32, then FP16) or single .onnx file."""
    xmls = sorted(path.rglob("*.xml"), key=lambda p: ("FP32" not in str(p), "INT8" in str(p), str(p)))
    onnx = sorted(path.rglob("*.onnx"))
    if xmls:
        return xmls[0]
    if len(onnx) == 1:
        return onnx[0]
    raise UserError(f"{path}: found {len(onnx)} .onnx and no .xml files; give the model file itself")

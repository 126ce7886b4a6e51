"""``ReIDEncoder``: person crops in, L2-normalised embeddings and attribute probabilities out.

One interface over our PyTorch checkpoints (``.pt``), ONNX files (``.onnx``, ours or external such
as torchreid's OSNet) and OpenVINO IR models (``.xml``, e.g. Intel's person-reidentification-retail
models)::

    enc = ReIDEncoder.from_checkpoint("model.pt")            # or .onnx / .xml / a model folder
    feats, attrs = enc.embed([crop_bgr, ...])                 # (N, D) float32, (N, A) float32
    enc.dim, enc.attribute_names, enc.input_size, enc.name

External models give features and no attributes (``A == 0``, ``attribute_names == ()``).
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from core.errors import UserError
from reid.preprocess import Preprocess, resize_crops
from reid.schema import AttributeSchema

log = logging.getLogger(__name__)

DEFAULT_CHECKPOINT = Path(__file__).resolve().parent / "weights" / "default.pt"


class TorchBackend:
    """Our :class:`~reid.model.MultiTaskReID` in eval mode; fp16 on CUDA.

    ``owned=False`` (a model borrowed from a training loop) never changes the model: its train/eval
    mode is restored after each call and fp16 uses autocast instead of converting the weights.
    """

    def __init__(self, model: torch.nn.Module, preprocess: Preprocess, device: str = "cpu", owned: bool = True):
        self.device = torch.device(device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise UserError(f"device {device!r} requested but CUDA is not available; use device='cpu'")
        self.half = self.device.type == "cuda"
        self.owned = owned
        # channels_last: faster convolutions on CPU (oneDNN) and on tensor cores
        self.memory_format = torch.channels_last if owned else torch.contiguous_format
        self.dim = int(model.embedding_dim)
        self.attribute_names = tuple(model.attribute_names)
        if owned:
            model = _fuse_conv_bn(model.eval()).to(self.device, memory_format=self.memory_format)
            if self.half:
                model = model.half()
        self.model = model
        self.preprocess = preprocess
        self.batch_size = 0
        a, b = preprocess.scale_shift()
        self._a = torch.from_numpy(a).view(1, 3, 1, 1).to(self.device)
        self._b = torch.from_numpy(b).view(1, 3, 1, 1).to(self.device)

    def __call__(self, batch: np.ndarray):
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.inference_mode():
                x = torch.from_numpy(batch).to(self.device, non_blocking=True)
                x = x.permute(0, 3, 1, 2).float() * self._a + self._b     # (N,3,h,w) normalised
                x = x.contiguous(memory_format=self.memory_format)
                if self.half and self.owned:
                    out = self.model(x.half())
                else:
                    with torch.autocast("cuda", dtype=torch.float16, enabled=self.half):
                        out = self.model(x)
                feats = out.embedding.float().cpu().numpy()
                attrs = out.attributes.float().cpu().numpy()
        finally:
            self.model.train(was_training)
        return feats, attrs


def _fuse_conv_bn(model: torch.nn.Module) -> torch.nn.Module:
    """Fold eval-mode BatchNorm into the preceding convolutions of the trunk and both branches, in
    place (same outputs; with channels_last, faster on CPU). A part that torch.fx cannot trace
    stays as it is."""
    from torch.fx.experimental.optimization import fuse

    for name in ("trunk", "global_branch", "part_branch"):
        part = getattr(model, name)
        custom = [m for m in part.modules() if hasattr(m, "fuse_bn")]   # e.g. EfficientNet-Lite blocks
        for m in custom:
            m.fuse_bn()
        if custom:
            continue
        try:
            setattr(model, name, fuse(part))
        except Exception as exc:  # pragma: no cover - depends on the torch version
            log.debug("conv-bn fusion of %s skipped (%s)", name, exc)
    return model


def _l2_normalize(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norm, 1e-12)).astype(np.float32)


class ReIDEncoder:
    """See the module docstring. Build with :meth:`from_checkpoint` or :meth:`from_model`."""

    def __init__(self, backend: Callable, *, name: str, batch_size: int = 32,
                 schema: AttributeSchema | None = None):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.backend = backend
        self.name = name
        self.schema = schema
        fixed = getattr(backend, "batch_size", 0)
        self.batch_size = min(batch_size, fixed) if fixed else batch_size

    # ---- construction ----------------------------------------------------------------------
    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, device: str = "cpu", batch_size: int = 32,
                        preprocess: Preprocess | None = None, num_threads: int = 0,
                        embedding: str | None = None, precision: str = "auto") -> "ReIDEncoder":
        """Load ``path``: our ``.pt`` checkpoint, an ``.onnx`` file, an OpenVINO ``.xml`` (or a folder
        holding one) or ``"default"`` (the checkpoint shipped with mcmt). ``preprocess`` overrides the
        input convention of external models; ``embedding`` the appearance feature of a model on an
        OpenVINO IR trunk (ir / heads / concat, see reid/trunk_backend.py); ``precision`` which of its
        IRs runs (auto: the int8 copy when the checkpoint carries one | int8 | fp32)."""
        if str(path) == "default":
            if not DEFAULT_CHECKPOINT.is_file():
                raise UserError("the default ReID checkpoint (reid/weights/default.pt) is missing from this "
                                "installation; reinstall mcmt or pass a model file instead, e.g. a checkpoint from 'mcmt train-reid', "
                                "an .onnx file or ../shared/models/openvino/person-reidentification-retail-0286")
            path = DEFAULT_CHECKPOINT
        path = Path(path)
        if path.is_dir():
            from reid.external import find_model_file
            path = find_model_file(path)
        if not path.exists():
            raise UserError(f"ReID model not found: {path}")
        suffix = path.suffix.lower()
        if suffix in (".pt", ".pth"):
            from reid.checkpoint import load_checkpoint
            model, meta = load_checkpoint(path, map_location="cpu")
            return cls.from_model(model, meta, device=device, batch_size=batch_size, _owned=True,
                                  num_threads=num_threads, embedding=embedding, precision=precision)
        if suffix == ".onnx":
            from reid.external import OnnxBackend
            backend = OnnxBackend(path, device, preprocess, num_threads)
            schema = backend.meta.get("schema") if backend.meta else None
            return cls(backend, name=path.stem, batch_size=batch_size,
                       schema=AttributeSchema.from_dict(schema) if schema else None)
        if suffix == ".xml":
            from reid.external import OpenVINOBackend
            return cls(OpenVINOBackend(path, device, preprocess, num_threads), name=path.stem, batch_size=batch_size)
        raise UserError(f"{path}: unknown ReID model type {suffix!r}; expected .pt/.pth (ours), .onnx or "
                        ".xml (OpenVINO IR)")

    @classmethod
    def from_model(cls, model: torch.nn.Module, meta: dict | None = None, device: str = "cpu",
                   batch_size: int = 32, _owned: bool = False, num_threads: int = 0,
                   embedding: str | None = None, precision: str = "auto") -> "ReIDEncoder":
        """Wrap an in-memory :class:`~reid.model.MultiTaskReID` (e.g. during training; the model's
        weights, dtype and train/eval mode are left as they are). A model on an OpenVINO IR trunk
        (``external_trunk``) runs with that IR (reid/trunk_backend.py); ``embedding`` overrides its
        choice of appearance feature (ir / heads / concat)."""
        cfg = (meta or {}).get("model_config") or model.config
        if cfg.get("external_trunk"):
            from reid.trunk_backend import TrunkHeadsBackend

            near = Path(meta["path"]).parent if meta and meta.get("path") else None
            backend = TrunkHeadsBackend(model, near, device, num_threads, embedding, (meta or {}).get("trunk_files"),
                                        (meta or {}).get("trunk_files_int8"), precision)
            name = Path(meta["path"]).stem if meta and meta.get("path") else Path(cfg["external_trunk"]["ir"]).stem
            return cls(backend, name=name, batch_size=batch_size, schema=model.schema)
        pp = Preprocess(tuple(cfg["input_size"]), True, tuple(cfg["mean"]), tuple(cfg["std"]))
        backend = TorchBackend(model, pp, device, owned=_owned)
        name = Path(meta["path"]).stem if meta and meta.get("path") else cfg["backbone"]
        return cls(backend, name=name, batch_size=batch_size, schema=model.schema)

    # ---- properties ------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return int(self.backend.dim)

    @property
    def attribute_names(self) -> tuple[str, ...]:
        return tuple(self.backend.attribute_names)

    @property
    def input_size(self) -> tuple[int, int]:
        return tuple(self.backend.preprocess.input_size)

    def __repr__(self) -> str:
        return (f"ReIDEncoder(name={self.name!r}, dim={self.dim}, input_size={self.input_size}, "
                f"attributes={len(self.attribute_names)})")

    # ---- inference -------------------------------------------------------------------------
    def embed(self, crops: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """BGR uint8 crops (any sizes) -> (features (N, D) float32 L2-normalised, attributes (N, A) float32)."""
        n = len(crops)
        feats = np.zeros((n, self.dim), np.float32)
        attrs = np.zeros((n, len(self.attribute_names)), np.float32)
        pp = self.backend.preprocess
        for start in range(0, n, self.batch_size):
            batch = resize_crops(crops[start:start + self.batch_size], pp.input_size, pp.rgb)
            f, a = self.backend(batch)
            feats[start:start + len(batch)] = f
            if attrs.shape[1]:
                attrs[start:start + len(batch)] = a
        return _l2_normalize(feats), attrs

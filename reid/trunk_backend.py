"""``ReIDEncoder`` backend of a model on an OpenVINO IR trunk (backbone ``ir_map``, reid/model.py).

One IR call per batch gives the IR's own embedding and its last feature map; our heads (PyTorch,
a few small matrices) turn the map's two halves into the multi-task features and the attribute
probabilities. The appearance feature is chosen by the model's ``external_trunk["embedding"]``:

- ``ir``: the IR's embedding (256-d for Intel 0277), exactly as the IR alone gives it;
- ``heads``: our FC features (5 x d);
- ``concat``: both, each L2-normalised first, so that they weigh the same in a distance.
"""
from __future__ import annotations

import logging

import numpy as np
import torch

from core.errors import UserError
from reid.colour import colour_halves
from reid.ir_torch import TorchIRTrunk
from reid.ir_trunk import IRTrunk, pick_trunk_files, reduce_map, resolve_ir_path

log = logging.getLogger(__name__)

EMBEDDINGS = ("ir", "heads", "concat")


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def combine(ir: np.ndarray, heads: np.ndarray, mode: str) -> np.ndarray:
    """The appearance feature (N, D) from the IR embedding and the heads' features (see the module doc)."""
    if mode == "ir":
        return ir
    if mode == "heads":
        return heads
    if mode == "concat":
        return np.concatenate([_unit(ir), _unit(heads)], axis=1).astype(np.float32)
    raise UserError(f"trunk embedding must be one of {', '.join(EMBEDDINGS)}, got {mode!r}")


def trunk_engine(device) -> str:
    """``torch`` on a CUDA device that torch sees (OpenVINO does not run on NVIDIA GPUs), else ``openvino``."""
    return "torch" if str(device).startswith("cuda") and torch.cuda.is_available() else "openvino"


class TrunkHeadsBackend:
    """Callable ``(N, h, w, 3) uint8 BGR batch -> (features (N, D), attributes (N, A))``.

    ``files``: the IR's contents carried by the checkpoint (else the IR file is looked up; ``near``: folder
    of the checkpoint, where a relative IR path is looked up too). ``embedding``
    overrides the model's choice (measurements). A borrowed model (training) keeps its mode.
    ``files_int8``: the int8 copy of the IR the checkpoint carries; ``precision`` (auto | int8 | fp32)
    picks which IR runs (:func:`reid.ir_trunk.pick_trunk_files`; ``self.precision`` says which did)."""

    def __init__(self, model: torch.nn.Module, near=None, device: str = "cpu", num_threads: int = 0,
                 embedding: str | None = None, files: dict | None = None, files_int8: dict | None = None,
                 precision: str = "auto"):
        ext = model.config.get("external_trunk")
        if not ext:
            raise UserError("this model has no external trunk (model.config['external_trunk'])")
        self.engine = trunk_engine(device)
        if self.engine == "torch":                       # an NVIDIA GPU: the float IR converted (reid/ir_torch.py)
            if precision == "int8":
                raise UserError("the int8 trunk runs on the CPU (OpenVINO); on a CUDA device use "
                                "--precision fp32 or auto")
            files, self.precision = pick_trunk_files(files, None, "fp32")
            self.trunk = TorchIRTrunk(files or resolve_ir_path(ext["ir"], near), str(device))
            log.info("ReID trunk %s: float IR converted to torch, on %s", self.trunk.path.name, device)
        else:
            files, self.precision = pick_trunk_files(files, files_int8, precision)
            self.trunk = IRTrunk(files or resolve_ir_path(ext["ir"], near), num_threads, device)
        self.model = model
        self.mode = embedding or ext.get("embedding", "concat")
        if self.mode not in EMBEDDINGS:
            raise UserError(f"trunk embedding must be one of {', '.join(EMBEDDINGS)}, got {self.mode!r}")
        self.pooling = model.config.get("pooling", "max")
        self.preprocess = self.trunk.preprocess
        self.batch_size = 0
        heads = int(model.embedding_dim)
        self.dim = {"ir": self.trunk.dim, "heads": heads, "concat": self.trunk.dim + heads}[self.mode]
        self.attribute_names = tuple(model.attribute_names)
        self.device = next((p.device for p in model.parameters()), torch.device("cpu"))

    def __call__(self, batch: np.ndarray):
        emb, fmap = self.trunk(batch)
        x = torch.from_numpy(reduce_map(fmap, self.pooling)).to(self.device)
        if self.model.config.get("colour_features"):     # the crop halves' colour descriptors (reid/colour.py)
            x = torch.cat([x, colour_halves(torch.from_numpy(np.ascontiguousarray(batch)).to(self.device))], 1)
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.inference_mode():
                out = self.model(x)
        finally:
            self.model.train(was_training)
        heads = out.embedding.float().cpu().numpy()
        return combine(emb, heads, self.mode), out.attributes.float().cpu().numpy()

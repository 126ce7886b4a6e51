"""ONNX export of the multi-task ReID network, with a numerical parity check against PyTorch.

The exported graph takes ``images`` (N, 3, H, W) float32, normalised as described in its metadata,
and returns ``embedding`` (N, 5*d, not normalised) and ``attributes`` (N, A) probabilities; the
batch axis is dynamic. The JSON under metadata key ``mcmt_reid`` (preprocessing, dim, attribute
names, schema, backbone) lets :class:`reid.encoder.ReIDEncoder` use the file with no other input.
"""
from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from core.atomic import atomic_write
from reid.external import ONNX_META_KEY
from reid.model import MultiTaskReID, clone_for_inference
from reid.preprocess import Preprocess

log = logging.getLogger(__name__)


def onnx_metadata(model: MultiTaskReID) -> dict:
    cfg = model.config
    pp = Preprocess(tuple(cfg["input_size"]), True, tuple(cfg["mean"]), tuple(cfg["std"]))
    return {"kind": "mcmt-reid", "backbone": cfg["backbone"], "dim": model.embedding_dim,
            "attribute_names": list(model.attribute_names), "schema": cfg.get("schema"),
            "preprocess": pp.to_dict(), "feat_dim": cfg["feat_dim"]}


def export_onnx(model: MultiTaskReID, out_path: str | os.PathLike, *, opset: int = 17, check: bool = True,
                batch: int = 2, seed: int = 0) -> dict:
    """Export ``model`` (copied, in eval mode, fp32 on CPU) to ``out_path`` atomically.

    With ``check``, runs PyTorch and onnxruntime on the same random batch and returns
    ``{"path", "max_abs_diff_embedding", "max_abs_diff_attributes", "max_abs_diff"}``.
    """
    import onnx

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    net = clone_for_inference(model).float().cpu()
    h, w = net.config["input_size"]
    x = torch.randn(batch, 3, h, w, generator=torch.Generator().manual_seed(seed))

    def write(tmp: str) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(net, (x,), tmp, input_names=["images"], output_names=["embedding", "attributes"],
                              dynamic_axes={"images": {0: "batch"}, "embedding": {0: "batch"},
                                            "attributes": {0: "batch"}},
                              opset_version=opset, dynamo=False)
        proto = onnx.load(tmp)
        entry = proto.metadata_props.add()
        entry.key, entry.value = ONNX_META_KEY, json.dumps(onnx_metadata(net))
        onnx.checker.check_model(proto)
        onnx.save(proto, tmp)

    atomic_write(out_path, write, suffix=".tmp.onnx")
    result = {"path": str(out_path)}
    if check:
        result.update(onnx_parity(net, out_path, x))
    return result


def onnx_parity(model: MultiTaskReID, onnx_path: str | os.PathLike, x: torch.Tensor) -> dict:
    """Max abs differences between PyTorch (eval, fp32) and onnxruntime outputs on input ``x``."""
    import onnxruntime as ort

    net = clone_for_inference(model).float().cpu()
    with torch.inference_mode():
        ref = net(x)
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    emb, attrs = sess.run(["embedding", "attributes"], {"images": x.numpy()})
    d_emb = float(np.abs(emb - ref.embedding.numpy()).max()) if emb.size else 0.0
    d_attr = float(np.abs(attrs - ref.attributes.numpy()).max()) if attrs.size else 0.0
    scale = float(np.abs(ref.embedding.numpy()).max()) if emb.size else 0.0
    return {"max_abs_diff_embedding": d_emb, "max_abs_diff_attributes": d_attr,
            "max_abs_diff": max(d_emb, d_attr), "embedding_max_abs": scale}

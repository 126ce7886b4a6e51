"""Self-describing checkpoints of the multi-task ReID network.

A checkpoint is a ``torch.save`` dict of plain types and tensors (loadable with
``weights_only=True``)::

    {"kind": "mcmt-reid", "format": 1, "model_config": {...}, "state_dict": {...},
     "train_config": {...} | None, "metrics": {...} | None, "extra": {...} | None}

``model_config`` (``model.config``) holds backbone, num_ids, feat_dim, input_size, mean/std and
the attribute schema, so loading needs no other file.
"""
from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Any

import torch

from core.atomic import atomic_write
from core.errors import UserError
from reid.model import MultiTaskReID, build_model

log = logging.getLogger(__name__)

KIND = "mcmt-reid"
FORMAT = 1


def _plain(obj: Any) -> Any:
    """Dataclasses / tuples / numpy scalars -> plain dicts, lists, numbers (safe for weights_only)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        obj = obj.to_dict() if hasattr(obj, "to_dict") else dataclasses.asdict(obj)
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item") and getattr(obj, "ndim", 1) == 0:   # numpy / torch scalar
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)


def save_checkpoint(path: str | os.PathLike, model: MultiTaskReID, *, train_config: Any = None,
                    metrics: Any = None, extra: Any = None) -> Path:
    """Write ``model`` and its description to ``path`` atomically (tmp file + os.replace)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload = {"kind": KIND, "format": FORMAT, "model_config": _plain(model.config), "state_dict": state,
               "train_config": _plain(train_config), "metrics": _plain(metrics), "extra": _plain(extra)}
    return atomic_write(path, lambda tmp: torch.save(payload, tmp))


def _read(path: Path, map_location) -> dict:
    if not path.is_file():
        raise UserError(f"ReID checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise UserError(f"{path}: not a readable torch checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(payload, dict) or payload.get("kind") != KIND:
        kind = payload.get("kind") if isinstance(payload, dict) else type(payload).__name__
        raise UserError(f"{path}: not an mcmt ReID checkpoint (kind={kind!r}); expected a file written by "
                        "'mcmt train-reid' / reid.checkpoint.save_checkpoint (for ONNX/OpenVINO models use "
                        "ReIDEncoder.from_checkpoint)")
    if payload.get("format", 0) > FORMAT:
        raise UserError(f"{path}: checkpoint format {payload.get('format')} is newer than this version "
                        f"understands ({FORMAT}); upgrade mcmt")
    return payload


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu"):
    """Rebuild the model from a checkpoint -> ``(model in eval mode, meta)``.

    meta: ``model_config``, ``backbone``, ``input_size`` (h, w), ``mean``, ``std`` (RGB, 0-1 scale),
    ``schema`` (dict or None), ``num_ids``, ``feat_dim``, ``train_config``, ``metrics``, ``extra``, ``path``.
    """
    path = Path(path)
    payload = _read(path, map_location)
    cfg = dict(payload["model_config"])
    try:
        model = build_model(**{**cfg, "pretrained": "none"})
    except TypeError as exc:
        raise UserError(f"{path}: model config does not match this version of mcmt ({exc})") from None
    missing, unexpected = _load_state(model, payload["state_dict"], path)
    if missing or unexpected:
        raise UserError(f"{path}: weights do not match the model described in the checkpoint: "
                        f"missing {missing[:5]}, unexpected {unexpected[:5]}")
    model.to(map_location).eval()
    meta = {"model_config": cfg, "backbone": cfg["backbone"], "input_size": tuple(cfg["input_size"]),
            "mean": tuple(cfg["mean"]), "std": tuple(cfg["std"]), "schema": cfg.get("schema"),
            "num_ids": cfg["num_ids"], "feat_dim": cfg["feat_dim"], "train_config": payload.get("train_config"),
            "metrics": payload.get("metrics"), "extra": payload.get("extra"), "path": str(path),
            "trunk_files": payload.get("trunk_files"), "trunk_files_int8": payload.get("trunk_files_int8")}
    return model, meta


def _load_state(model: torch.nn.Module, state: dict, path: Path):
    own = model.state_dict()
    bad = [f"{k}: {tuple(v.shape)} vs {tuple(own[k].shape)}" for k, v in state.items()
           if k in own and v.shape != own[k].shape]
    if bad:
        raise UserError(f"{path}: tensor shapes do not match the model described in the checkpoint: "
                        f"{'; '.join(bad[:3])}")
    result = model.load_state_dict(state, strict=False)
    return list(result.missing_keys), list(result.unexpected_keys)


def update_checkpoint(src: str | os.PathLike, dst: str | os.PathLike, *, model_config: dict | None = None,
                      extra: dict | None = None) -> Path:
    """Write a copy of checkpoint ``src`` to ``dst`` (atomically) with keys of its model config and of
    its extra information replaced by ``model_config`` / ``extra``; weights and the rest unchanged."""
    payload = _read(Path(src), "cpu")
    payload["model_config"] = _plain({**payload["model_config"], **(model_config or {})})
    payload["extra"] = _plain({**(payload.get("extra") or {}), **(extra or {})})
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(dst, lambda tmp: torch.save(payload, tmp))


def slim_checkpoint(src: str | os.PathLike, dst: str | os.PathLike, half: bool = True,
                    int8_files: dict | None = None) -> Path:
    """Write an inference-only copy of checkpoint ``src``: no identity classifiers (not used for
    embedding), weights stored as float16 when ``half`` (loaded back into a float32 model), the
    training configuration, metrics and extra information kept. Outputs are unchanged up to fp16
    rounding of the weights. A model on an IR trunk carries the IR (``trunk_files``) and, when given
    ``int8_files`` (reid/quantize.py) or when ``src`` has one, its int8 copy (``trunk_files_int8``)."""
    src = Path(src)
    payload = _read(src, "cpu")
    cfg = {**payload["model_config"], "num_ids": 0}
    state = {k: v for k, v in payload["state_dict"].items() if not k.startswith("id_classifiers.")}
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    model = build_model(**{**cfg, "pretrained": "none"})
    missing, unexpected = _load_state(model, state, src)
    if missing or unexpected:
        raise UserError(f"{src}: cannot slim this checkpoint: missing {missing[:5]}, unexpected {unexpected[:5]}")
    extra = dict(payload.get("extra") or {})
    extra["slim"] = {"source": src.name, "num_ids_trained": payload["model_config"].get("num_ids"),
                     "dtype": "float16" if half else "float32"}
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    out = {"kind": KIND, "format": FORMAT, "model_config": _plain(cfg), "state_dict": state,
           "train_config": payload.get("train_config"), "metrics": payload.get("metrics"), "extra": _plain(extra)}
    out["trunk_files"] = payload.get("trunk_files") or _trunk_files(cfg, src.parent)
    if int8_files is not None or payload.get("trunk_files_int8"):
        out["trunk_files_int8"] = _plain_files(int8_files if int8_files is not None else payload["trunk_files_int8"])
    return atomic_write(dst, lambda tmp: torch.save(out, tmp))


def _plain_files(files: dict) -> dict:
    """IR files as a checkpoint stores them: the .bin as bytes, everything else plain types."""
    return {k: (v if isinstance(v, bytes) else _plain(v)) for k, v in files.items()}


def _trunk_files(cfg: dict, near: Path) -> dict | None:
    """The contents of the OpenVINO IR a model on an external trunk runs with, so that the exported
    checkpoint is one self-contained file (None for other models)."""
    ext = cfg.get("external_trunk")
    if not ext:
        return None
    from reid.ir_trunk import ir_files, resolve_ir_path

    return ir_files(resolve_ir_path(ext["ir"], near))

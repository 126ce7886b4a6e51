"""Tune the last block of an OpenVINO ReID trunk to see through worse cameras (``mcmt tune-trunk``).

A blurred, compressed, low-resolution, noisy or dark camera moves one person's embedding away from
the same person seen by a good camera: on EPFL terrace ground-truth crops (camera 0 against camera 1
altered as the bench alters it) Intel 0277's mAP falls from 78.3 to 65.3 under blur and 63.3 under
JPEG. The trunk's first layers stay as Intel trained them; its last residual block and what follows
(conv, global pooling, FC: 0.77 M of 2.1 M weights) are trained in torch (reid/ir_torch.py) so that
the embedding of a degraded crop (reid/degrade.py) comes close to the IR's own embedding of the
clean crop (its teacher, frozen):

    loss = (1 - cos(s(clean), t)) + (1 - cos(s(degraded), t)) [+ nce * InfoNCE(s(degraded), t / temperature)]

(t: the IR's clean embedding; the optional InfoNCE term, off by default, also pushes a degraded crop
away from the other people of the batch, other images of its identity left out: measured, it spread a
worse camera's crops apart, same person included, reid/MODEL_CARD.md). Nothing but the IR's own outputs
is imitated, so the clean embedding stays where Intel put it. The input of the last block is computed
once per image and view (clean, one degraded copy) with OpenVINO and cached in chunks (resumable);
training resumes from its last epoch; the result is the IR with the tuned weights written back
(``<out>/<ir name>-robust.xml/.bin``), which every trunk consumer takes as it takes the original.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from core.atomic import atomic_write_json
from core.errors import UserError
from reid.degrade import degrade
from reid.ir_torch import IRGraph, read_ir
from reid.ir_trunk import IRTrunk, ir_fingerprint, resolve_ir_path
from reid.preprocess import resize_crops
from reid.trunk_cache import cached_chunks, listing_hash, read_crops
from reid.train_config import DataSection, DatasetSpec

log = logging.getLogger(__name__)

CHUNK = 512


@dataclass(frozen=True)
class TuneConfig:
    trunk: str = ("../shared/models/openvino/person-reidentification-retail-0277/FP16/"
                  "person-reidentification-retail-0277.xml")
    data: tuple[DatasetSpec, ...] = (DatasetSpec("market1501"),)   # several -> combined, as in train-reid
    cache: str = "runs/reid/tune-cache"
    epochs: int = 2
    lr: float = 1.0e-4
    batch: int = 64
    nce_weight: float = 0.0             # 1.0 spread a worse camera's crops apart (reid/MODEL_CARD.md)
    temperature: float = 0.05
    seed: int = 0
    threads: int = 2
    out: str = "runs/reid/trunk_robust"

    def __post_init__(self):
        if self.epochs < 1 or self.batch < 2:
            raise ValueError(f"need epochs >= 1 and batch >= 2, got {self.epochs} and {self.batch}")
        if not (self.lr > 0 and self.temperature > 0 and self.nce_weight >= 0):
            raise ValueError("lr and temperature must be > 0 and nce_weight >= 0")


def last_block_input(model) -> str:
    """Friendly name of the node whose output enters the trunk's last residual block: the identity
    input of the last 4-D ``Add`` whose inputs are that node (a ``Relu``) and the block's branch."""
    for op in reversed(model.get_ordered_ops()):
        if op.get_type_name() != "Add" or op.output(0).get_partial_shape().rank.get_length() != 4:
            continue
        for inp in op.inputs():
            src = inp.get_source_output().get_node()
            if src.get_type_name() == "Relu":
                return src.get_friendly_name()
    raise UserError("this OpenVINO model has no residual block ending in Add(Relu, ...): only Intel's "
                    "person-reidentification-retail models can be tuned")


def cached_pairs(trunk: IRTrunk, paths: Sequence[str], folder: Path, seed: int) -> dict[str, np.ndarray]:
    """{"emb", "cut", "demb", "dcut"} of ``paths``: the IR's embedding and the input of its last block
    (``trunk``'s map: float16) for each image and for one seeded degraded copy of it, cached in chunks of
    CHUNK images (reid/trunk_cache.py)."""
    def compute(chunk: Sequence[str], _flip: bool, index: int) -> dict[str, np.ndarray]:
        imgs = read_crops(chunk, flip=False)
        rng = np.random.default_rng(seed * 100_003 + 1000 + index)
        out = {}
        for prefix, crops in (("", imgs), ("d", [degrade(i, rng) for i in imgs])):
            for s in range(0, len(crops), 32):
                emb, cut = trunk(resize_crops(crops[s:s + 32], trunk.preprocess.input_size, rgb=False))
                out.setdefault(prefix + "emb", []).append(emb)
                out.setdefault(prefix + "cut", []).append(cut.astype(np.float16))
        return {k: np.concatenate(v) for k, v in out.items()}

    data = cached_chunks(folder, paths, ("pairs",), compute, "tune cache", progress=True, chunk=CHUNK)
    return {k: v[0] for k, v in data.items()}


def tune_loss(clean: torch.Tensor, degraded: torch.Tensor, teacher: torch.Tensor, pids: torch.Tensor,
              nce_weight: float, temperature: float) -> torch.Tensor:
    """The module docstring's loss on unit vectors ``clean``, ``degraded`` (student) and ``teacher``."""
    loss = (1 - (clean * teacher).sum(1)).mean() + (1 - (degraded * teacher).sum(1)).mean()
    if nce_weight:
        n = len(pids)
        same = (pids[:, None] == pids[None, :]) & ~torch.eye(n, dtype=torch.bool)
        logits = (degraded @ teacher.T / temperature).masked_fill(same, -1e4)
        loss = loss + nce_weight * F.cross_entropy(logits, torch.arange(n))
    return loss


def _state_path(out: Path) -> Path:
    return out / "tune_state.pt"


def tune(cfg: TuneConfig, data_root: str | None = None, out_dir: str | None = None) -> Path:
    """Run the tuning; returns the tuned IR's .xml path."""
    import openvino as ov

    from reid.train_state import load_train_data

    out = Path(out_dir or cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    xml = resolve_ir_path(cfg.trunk)
    torch.set_num_threads(max(1, cfg.threads))
    torch.manual_seed(cfg.seed)
    samples = load_train_data(DataSection(train=tuple(cfg.data)), data_root).train
    paths = [str(s.path) for s in samples]
    pids = torch.as_tensor([s.pid for s in samples])
    model = read_ir(xml)
    if len(model.outputs) != 1 or model.outputs[0].get_partial_shape().rank.get_length() != 2:
        raise UserError(f"{xml}: not a person ReID model (one (N, D) embedding output expected); give an Intel "
                        "person-reidentification-retail IR such as 0277")
    cut = last_block_input(model)
    tail = IRGraph(model, start=cut)                      # unsupported ops fail here, before any caching
    listing = f"{ir_fingerprint(xml)}-{len(paths)}-{listing_hash(paths)}-s{cfg.seed}"
    data = cached_pairs(IRTrunk(xml, cfg.threads, map_node=cut), paths, Path(cfg.cache) / f"{xml.stem}-{listing}",
                        cfg.seed)
    teacher = F.normalize(torch.from_numpy(data["emb"]), dim=1)
    params = tail.train_from(tail.plan[0][0])
    opt = torch.optim.Adam(params, lr=cfg.lr)
    per_epoch = len(paths) // cfg.batch
    if per_epoch < 1:
        raise UserError(f"{len(paths)} training images is fewer than one batch of {cfg.batch}")
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.epochs * per_epoch)
    start, history = 0, []
    if _state_path(out).is_file():
        state = torch.load(_state_path(out), weights_only=False)
        tail.load_state_dict(state["tail"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        start, history = state["epoch"] + 1, state["history"]
        log.info("tune: resuming after epoch %d (%s)", start, _state_path(out))
    for epoch in range(start, cfg.epochs):
        rng = np.random.default_rng(cfg.seed * 7919 + epoch)
        perm, losses, t0 = rng.permutation(len(paths)), [], time.time()
        tail.train()
        for b in range(per_epoch):
            idx = np.sort(perm[b * cfg.batch:(b + 1) * cfg.batch])
            x = torch.from_numpy(np.concatenate([data["cut"][idx], data["dcut"][idx]]).astype(np.float32))
            s = F.normalize(tail(x), dim=1)
            loss = tune_loss(s[:len(idx)], s[len(idx):], teacher[idx], pids[idx], cfg.nce_weight, cfg.temperature)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
        history.append({"epoch": epoch, "loss": float(np.mean(losses)), "seconds": round(time.time() - t0, 1)})
        log.info("tune: epoch %d/%d loss %.4f (%.0f s)", epoch + 1, cfg.epochs, history[-1]["loss"],
                 history[-1]["seconds"])
        tmp = _state_path(out).with_suffix(".tmp")
        torch.save({"tail": tail.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                    "epoch": epoch, "history": history}, tmp)
        tmp.replace(_state_path(out))
    tuned = read_ir(xml)
    n = tail.eval().write_into(tuned)
    dst = out / f"{xml.stem}-robust.xml"
    tmp_xml = out / f".{xml.stem}-robust.tmp.xml"
    ov.save_model(tuned, str(tmp_xml), compress_to_fp16=False)
    tmp_xml.with_suffix(".bin").replace(dst.with_suffix(".bin"))
    tmp_xml.replace(dst)
    atomic_write_json(out / "history.json",
                      {"trunk": str(xml), "cut": cut, "replaced_constants": n, "history": history})
    log.info("tune: %d constants replaced; tuned IR -> %s", n, dst)
    return dst

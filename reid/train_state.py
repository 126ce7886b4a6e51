"""Pieces of the training loop that are pure or stateless: distributed setup, device, learning-rate
schedule, optimiser, seeding, data loading and the resumable training-state file.

A training checkpoint is two files in the output folder:

- ``last.pt``: the model, written by :func:`reid.checkpoint.save_checkpoint` (self-describing,
  loadable by ``ReIDEncoder``); its ``extra`` holds ``epoch`` and ``train_state`` (a file name);
- ``last.state-EEEE.pt``: optimizer, scheduler, sampler, AMP scaler and RNG states after epoch
  ``EEEE`` (``torch.save``). It is written *before* ``last.pt`` and older ones are deleted after,
  so an interrupted save never pairs a model with the wrong state.
"""
from __future__ import annotations

import logging
import os
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core import device as core_device
from core.atomic import atomic_write
from core.errors import UserError
from reid.train_config import DataSection, DatasetSpec, OptimSection, ScheduleSection

log = logging.getLogger(__name__)

_SEED_STRIDE = 1_000_003


@dataclass(frozen=True)
class DistInfo:
    """This process's place in a ``torchrun`` job (rank 0 of 1 without one)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str) -> DistInfo:
    """Join the process group that ``torchrun`` describes in the environment (nccl on CUDA, else gloo)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    import torch.distributed as dist

    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", os.environ["RANK"]))
    use_cuda = torch.cuda.is_available() and not device.startswith("cpu")
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return DistInfo(rank, world, local)


def resolve_device(name: str, info: DistInfo = DistInfo()) -> torch.device:
    """``auto`` -> cuda when available; each distributed process gets ``cuda:LOCAL_RANK``."""
    name = core_device.resolve_device(name)
    if name.startswith("cuda"):
        if info.enabled:
            name = f"cuda:{info.local_rank}"
        dev = torch.device(name)
        torch.cuda.set_device(dev)
        return dev
    return torch.device("cpu")


def lr_factor(epoch: int, s: ScheduleSection) -> float:
    """Multiplier of the base learning rate during 0-based ``epoch`` (see reid.train_config)."""
    f = 1.0
    if s.warmup_epochs > 0 and epoch < s.warmup_epochs:
        f = (epoch + 1) / s.warmup_epochs
    if s.decay == "exp" and epoch >= s.decay_start:
        span = max(1, s.epochs - s.decay_start)
        f *= s.decay_final ** ((epoch - s.decay_start) / span)
    elif s.decay == "step":
        f *= s.gamma ** sum(epoch >= m for m in s.milestones)
    return f


def build_optimizer(params, cfg: OptimSection) -> torch.optim.Optimizer:
    """SGD / Adam / AdamW from the ``optim`` section."""
    if cfg.name == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                               weight_decay=cfg.weight_decay)
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    if cfg.name == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    raise UserError(f"unknown optimiser {cfg.name!r}; valid: sgd, adam, adamw")


def seed_epoch(seed: int, epoch: int, rank: int = 0) -> int:
    """Seed python, numpy and torch for one epoch of one process; returns the seed used."""
    s = (seed * _SEED_STRIDE + epoch * 7919 + rank) % (2 ** 31)
    random.seed(s)
    np.random.seed(s)
    torch.manual_seed(s)
    return s


def resolve_root(root: str, data_root: str | None, what: str) -> str:
    """A data-set root from the config, completed by ``--data-root`` (empty or relative roots)."""
    if not root:
        if not data_root:
            raise UserError(f"{what}: no data folder; pass --data-root or set its 'root' in the config")
        return str(Path(data_root).expanduser())
    p = Path(root).expanduser()
    return str(Path(data_root).expanduser() / p) if data_root and not p.is_absolute() else str(p)


def load_dataset(spec: DatasetSpec, data_root: str | None):
    from reid.data import build_dataset

    return build_dataset(spec.name, resolve_root(spec.root, data_root, f"data set {spec.name!r}"),
                         **spec.options)


def load_train_data(section: DataSection, data_root: str | None):
    """ReIDData to train on: one data set, or several combined onto the common attribute schema."""
    datas = [load_dataset(s, data_root) for s in section.train]
    if len(datas) == 1:
        return datas[0]
    from reid.data import combine

    return combine(datas, schema="common")


def check_identities(samples) -> None:
    """UserError when no identity has two images (no positive pair for the triplet loss)."""
    counts: dict[int, int] = {}
    for s in samples:
        counts[s.pid] = counts.get(s.pid, 0) + 1
    if counts and max(counts.values()) < 2:
        raise UserError(f"every one of the {len(counts)} training identities has a single image: the "
                        "identity labels look wrong (an attribute-only set such as PETA/MIT?); "
                        "train on data with several images per identity")


def rng_states() -> dict:
    np_state = np.random.get_state()
    version, internal, gauss = random.getstate()
    out = {"torch": torch.get_rng_state(), "python": [version, torch.tensor(internal, dtype=torch.int64), gauss],
           "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]]}
    if torch.cuda.is_available():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def set_rng_states(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(int(v) for v in internal.tolist()), gauss))
    n = state["numpy"]
    np.random.set_state((n[0], n[1].numpy().astype(np.uint32), *n[2:]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def state_file_name(epoch: int) -> str:
    return f"last.state-{epoch:04d}.pt"


def atomic_torch_save(obj, path: Path) -> None:
    atomic_write(path, lambda tmp: torch.save(obj, tmp))


def read_train_state(ckpt_path: Path, meta: dict) -> dict:
    """The training state paired with checkpoint ``ckpt_path`` (clear errors when it is missing)."""
    extra = meta.get("extra") or {}
    name = extra.get("train_state")
    if "epoch" not in extra or not name:
        raise UserError(f"{ckpt_path}: not a resumable training checkpoint (no training state recorded); "
                        "resume from the 'last.pt' of a 'mcmt train-reid' output folder")
    path = ckpt_path.parent / name
    if not path.is_file():
        raise UserError(f"cannot resume: {path} (optimizer/sampler state of {ckpt_path.name}) is missing; "
                        "keep it next to the checkpoint")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if int(state.get("epoch", -1)) != int(extra["epoch"]):
        raise UserError(f"cannot resume: {path} is for epoch {state.get('epoch')} but {ckpt_path.name} "
                        f"for epoch {extra['epoch']}")
    return state

"""P x K identity sampler: every batch holds P identities with K images each (batch-hard triplets).

One epoch (as in torchreid's RandomIdentitySampler, but with a fixed length and a seeded,
epoch-derived generator):

1. each identity's images are shuffled and cut into chunks of K; a short last chunk is filled with
   other images of the same identity, and an identity with fewer than K images gets one chunk
   drawn with replacement;
2. ``num_batches = total chunks // P``; each batch takes one chunk from each of P distinct
   identities, drawn with probability proportional to their remaining chunks; when fewer than P
   identities have chunks left, the batch is completed with fresh chunks of other identities.

The plan of epoch ``e`` depends only on ``(seed, e)`` (``torch.Generator().manual_seed``), so
``state_dict()`` = ``{seed, epoch, ...}`` and a resumed run replays the same batches bit for bit.
With ``world_size > 1`` (DistributedDataParallel) rank ``r`` takes batches ``r, r + W, ...`` of the
same global plan, truncated so that every rank gets the same number.

Use it as ``DataLoader(ds, batch_size=sampler.batch_size, sampler=sampler, drop_last=True)``.
"""
from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Sampler

from core.errors import UserError

_SEED_STRIDE = 1_000_003


class PKSampler(Sampler[int]):
    """Yields sample indices, P identities x K images per consecutive ``batch_size`` block."""

    def __init__(self, pids: Sequence[int], p: int, k: int, seed: int = 0, rank: int = 0, world_size: int = 1):
        labels = np.asarray(pids, dtype=np.int64).reshape(-1)  # (N,) identity per sample
        if p < 1 or k < 1:
            raise UserError(f"P x K sampler needs P >= 1 and K >= 1, got P={p}, K={k}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} out of range for world_size {world_size}")
        self.p, self.k, self.seed = int(p), int(k), int(seed)
        self.rank, self.world_size = int(rank), int(world_size)
        self.epoch = 0
        self.num_samples = len(labels)
        ids, inverse = np.unique(labels, return_inverse=True)
        if len(ids) < self.p:
            raise UserError(f"the training set has {len(ids)} identities, fewer than P={self.p} per batch; "
                            "lower P (e.g. --set data.p=...) or add data")
        order = np.argsort(inverse, kind="stable")
        bounds = np.cumsum(np.bincount(inverse, minlength=len(ids)))[:-1]
        self.index_by_id = np.split(order, bounds)  # list of (n_i,) sample indices per identity
        n_chunks = sum(max(1, len(x) // self.k + (len(x) % self.k > 0)) for x in self.index_by_id)
        self.num_global_batches = n_chunks // self.p
        if self.num_global_batches // self.world_size < 1:
            raise UserError(f"the training set is too small for P={self.p}, K={self.k} on {self.world_size} "
                            f"process(es): {n_chunks} chunks of K images give no full batch per process")

    @property
    def batch_size(self) -> int:
        return self.p * self.k

    @property
    def num_batches(self) -> int:
        """Batches per epoch for this rank."""
        return self.num_global_batches // self.world_size

    def __len__(self) -> int:
        return self.num_batches * self.batch_size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[int]:
        plan = self.plan(self.epoch)  # (B_global, P*K)
        self.epoch += 1
        mine = plan[self.rank::self.world_size][: self.num_batches]
        return iter(mine.reshape(-1).tolist())

    # ---- the plan -------------------------------------------------------------------------------
    def _chunk(self, idx: np.ndarray, g: torch.Generator) -> np.ndarray:
        """One fresh chunk of K images of one identity (with replacement if it has fewer than K)."""
        if len(idx) < self.k:
            return idx[torch.randint(len(idx), (self.k,), generator=g).numpy()]
        return idx[torch.randperm(len(idx), generator=g)[: self.k].numpy()]

    def _chunks(self, idx: np.ndarray, g: torch.Generator) -> list[np.ndarray]:
        """All chunks of one identity for one epoch (step 1 of the module docstring)."""
        if len(idx) < self.k:
            return [self._chunk(idx, g)]
        perm = idx[torch.randperm(len(idx), generator=g).numpy()]
        full, rest = divmod(len(perm), self.k)
        out = [perm[i * self.k:(i + 1) * self.k] for i in range(full)]
        if rest:
            tail, others = perm[full * self.k:], perm[: full * self.k]
            fill = others[torch.randperm(len(others), generator=g)[: self.k - rest].numpy()]
            out.append(np.concatenate([tail, fill]))
        return out

    def plan(self, epoch: int) -> np.ndarray:
        """Global batch plan of one epoch: (num_global_batches, P*K) int64 sample indices."""
        g = torch.Generator().manual_seed((self.seed * _SEED_STRIDE + int(epoch)) % 2 ** 63)
        queues = [self._chunks(idx, g) for idx in self.index_by_id]
        left = np.array([len(q) for q in queues], dtype=np.int64)  # chunks left per identity
        batches = []
        for _ in range(self.num_global_batches):
            avail = int((left > 0).sum())
            if avail >= self.p:
                weights = torch.from_numpy(left.astype(np.float64))
                chosen = torch.multinomial(weights, self.p, replacement=False, generator=g).tolist()
            else:
                chosen = np.flatnonzero(left > 0).tolist()
                weights = torch.from_numpy((left == 0).astype(np.float64))
                chosen += torch.multinomial(weights, self.p - avail, replacement=False, generator=g).tolist()
            parts = []
            for i in chosen:
                if left[i] > 0:
                    parts.append(queues[i][len(queues[i]) - left[i]])
                    left[i] -= 1
                else:
                    parts.append(self._chunk(self.index_by_id[i], g))
            batches.append(np.concatenate(parts))
        return np.stack(batches).astype(np.int64)

    # ---- resume ---------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"seed": self.seed, "epoch": self.epoch, "p": self.p, "k": self.k,
                "num_samples": self.num_samples, "world_size": self.world_size}

    def load_state_dict(self, state: dict) -> None:
        for key in ("p", "k", "num_samples"):
            if int(state[key]) != getattr(self, key):
                raise UserError(f"cannot resume: the sampler's {key} was {state[key]} in the checkpoint and is "
                                f"{getattr(self, key)} now (same data set and P x K are needed to resume)")
        self.seed, self.epoch = int(state["seed"]), int(state["epoch"])

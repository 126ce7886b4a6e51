"""Torch ``Dataset`` over a list of :class:`~reid.data.base.Sample`.

``dataset[i] -> (image (3, h, w) float32, label int, camid int, attrs (G,) int64 tensor)`` where
``label`` is the pid relabelled to ``0..C-1`` (sorted pids, see :func:`relabel_pids`) and
``attrs`` the attribute targets (-1 = missing; all -1 for samples without attributes). With
per-sample ``targets`` (e.g. teacher embeddings for distillation) a fifth item ``targets[i]``
follows. The default ``DataLoader`` collate turns a batch into ``(N, 3, h, w)``, ``(N,)``, ``(N,)``, ``(N, G)`` tensors.
"""
from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from core.errors import UserError
from reid.data.base import Sample
from reid.data.transforms import read_image
from reid.schema import AttributeSchema


def relabel_pids(samples: Sequence[Sample]) -> dict[int, int]:
    """{pid: label} with labels 0..C-1 in increasing pid order."""
    return {pid: i for i, pid in enumerate(sorted({s.pid for s in samples}))}


def check_train_set(samples: Sequence[Sample], schema: AttributeSchema | None, name: str = "training set") -> None:
    """UserError for an empty or mislabeled training set (no images, one identity, junk ids, bad attrs)."""
    if not samples:
        raise UserError(f"the {name} is empty: check --data-root and the data set name")
    junk = [s.path for s in samples if s.pid < 0]
    if junk:
        raise UserError(f"the {name} has {len(junk)} image(s) with a negative (junk) pid, e.g. {junk[0]}; "
                        "junk images belong in the gallery only")
    if len({s.pid for s in samples}) < 2:
        raise UserError(f"the {name} has a single identity; identity and triplet losses need at least 2")
    if schema is not None:
        bad = [s.path for s in samples if s.attrs is not None and np.shape(s.attrs) != (schema.num_groups,)]
        if bad:
            raise UserError(f"the {name}: attribute rows do not match schema {schema.name!r} "
                            f"({schema.num_groups} attributes), e.g. {bad[0]}")
        if all(s.attrs is None or bool((np.asarray(s.attrs) < 0).all()) for s in samples):
            raise UserError(f"the {name} has no attribute labels for schema {schema.name!r}; "
                            "train without the attribute loss or fix the attribute file")


class ImageDataset(Dataset):
    """Images of ``samples`` through ``transform`` with relabelled pids and attribute targets."""

    def __init__(self, samples: Sequence[Sample], transform: Callable[[np.ndarray], torch.Tensor],
                 num_groups: int = 0, pid_map: Mapping[int, int] | None = None,
                 targets: np.ndarray | None = None):
        if not samples:
            raise UserError("cannot build an image data set from an empty list of samples")
        self.samples = list(samples)
        self.transform = transform
        self.num_groups = int(num_groups)
        self.pid_map = dict(pid_map) if pid_map is not None else relabel_pids(self.samples)
        unknown = sorted({s.pid for s in self.samples} - set(self.pid_map))
        if unknown:
            raise ValueError(f"pid_map lacks pids {unknown[:5]}")
        self.labels = np.array([self.pid_map[s.pid] for s in self.samples], dtype=np.int64)  # (N,)
        self._missing = torch.full((self.num_groups,), -1, dtype=torch.int64)
        if targets is not None and len(targets) != len(self.samples):
            raise ValueError(f"targets has {len(targets)} rows for {len(self.samples)} samples")
        self.targets = None if targets is None else torch.from_numpy(np.asarray(targets, dtype=np.float32))

    @property
    def num_ids(self) -> int:
        return len(self.pid_map)

    def __len__(self) -> int:
        return len(self.samples)

    def attr_targets(self, i: int) -> torch.Tensor:
        a = self.samples[i].attrs
        if a is None:
            return self._missing.clone()
        if len(a) != self.num_groups:
            raise ValueError(f"sample {self.samples[i].path} has {len(a)} attribute targets, expected {self.num_groups}")
        return torch.tensor(np.asarray(a), dtype=torch.int64)

    def __getitem__(self, i: int):
        s = self.samples[i]
        img = self.transform(read_image(s.path))
        if self.targets is not None:
            return img, int(self.labels[i]), int(s.camid), self.attr_targets(i), self.targets[i]
        return img, int(self.labels[i]), int(s.camid), self.attr_targets(i)

"""Data-set records shared by every loader: :class:`Sample`, :class:`ReIDData` and folder helpers.

A loader returns a :class:`ReIDData` with three lists of :class:`Sample` (``train``, ``query``,
``gallery``) and the data set's :class:`~reid.schema.AttributeSchema` (or ``None`` when it has no
attribute labels). ``pid``/``camid`` are the data set's own numbers (Market-1501: pid ``-1`` is junk,
``0`` a distractor); training relabels pids to ``0..C-1`` in :mod:`reid.data.image_dataset`.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

from core.errors import UserError
from reid.schema import AttributeSchema

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")


@dataclass(frozen=True, eq=False)
class Sample:
    """One image: file path, identity, camera, attribute targets ``(G,)`` int64 (-1 = missing) or None."""

    path: str
    pid: int
    camid: int
    attrs: np.ndarray | None = None
    tracklet: int = -1


@dataclass(frozen=True, eq=False)
class ReIDData:
    """A loaded data set: train / query / gallery samples plus the attribute schema."""

    name: str
    train: list[Sample]
    query: list[Sample]
    gallery: list[Sample]
    schema: AttributeSchema | None = None
    root: str = ""
    info: dict = field(default_factory=dict)

    @property
    def num_train_pids(self) -> int:
        return len({s.pid for s in self.train})

    def describe(self) -> dict:
        """Counts per split (images, identities, cameras) for logs and ``--json`` outputs."""
        out = {"name": self.name, "root": self.root,
               "schema": self.schema.name if self.schema else None,
               "num_attributes": self.schema.num_groups if self.schema else 0, **self.info}
        for split in ("train", "query", "gallery"):
            samples = getattr(self, split)
            out[split] = {"images": len(samples), "ids": len({s.pid for s in samples}),
                          "cameras": len({s.camid for s in samples})}
        return out

    def summary(self) -> str:
        d = self.describe()
        rows = [f"{k:8s} {d[k]['ids']:6d} ids {d[k]['images']:7d} images {d[k]['cameras']:3d} cameras"
                for k in ("train", "query", "gallery")]
        return f"data set {self.name} ({d['num_attributes']} attributes)\n" + "\n".join(rows)


def require_dir(path: Path, what: str, dataset: str) -> Path:
    """``path`` if it is a directory, else a UserError naming the missing folder."""
    if not path.is_dir():
        raise UserError(f"{dataset}: {what} folder not found: {path} "
                        f"(check --data-root; see `reid/data/{dataset}.py` for the expected layout)")
    return path


def list_images(folder: Path, recursive: bool = False) -> list[Path]:
    """Image files in ``folder`` (sorted by name; ``recursive`` also walks sub-folders)."""
    it = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in it if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())


def require_images(folder: Path, dataset: str, recursive: bool = False) -> list[Path]:
    """Like :func:`list_images` but an empty folder is a UserError naming it."""
    files = list_images(require_dir(folder, folder.name, dataset), recursive)
    if not files:
        raise UserError(f"{dataset}: no images ({', '.join(IMAGE_EXTENSIONS)}) in {folder}")
    return files


def check_targets(targets: np.ndarray, schema: AttributeSchema) -> np.ndarray:
    """Validate attribute targets ``(N, G)`` against ``schema``; returns them as int64."""
    t = np.asarray(targets, dtype=np.int64)
    if t.ndim != 2 or t.shape[1] != schema.num_groups:
        raise ValueError(f"attribute targets must have shape (N, {schema.num_groups}), got {t.shape}")
    hi = np.array([1 if g.is_binary else len(g.classes) - 1 for g in schema.groups], dtype=np.int64)
    bad = (t < -1) | (t > hi[None, :])
    if bad.any():
        i, j = map(int, np.argwhere(bad)[0])
        raise ValueError(f"schema {schema.name!r}: target {t[i, j]} out of range for attribute "
                         f"{schema.groups[j].name!r} (row {i}); allowed -1..{hi[j]}")
    return t


def attach_attrs(samples: Iterable[Sample], table: dict, num_groups: int) -> list[Sample]:
    """Samples with ``attrs`` looked up by pid in ``table`` (pid -> (G,) int64); missing -> all -1."""
    missing = np.full(num_groups, -1, dtype=np.int64)
    missing.setflags(write=False)
    for row in table.values():
        row.setflags(write=False)  # shared between the samples of one identity
    return [Sample(s.path, s.pid, s.camid, table.get(s.pid, missing), s.tracklet) for s in samples]

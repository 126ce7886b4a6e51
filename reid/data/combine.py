"""Combine several data sets into one training set mapped onto a shared attribute schema.

``combine([peta, market], schema="common")`` concatenates the sources' samples with identities and
cameras made unique per source (``pid -> source * PID_STRIDE + pid`` for pid > 0; junk -1 and
distractors 0 keep their meaning; ``camid -> source * CAM_STRIDE + camid``) and maps every
source's attribute targets onto the target schema through :func:`reid.data.schemas.to_common`
(attributes a source does not label become -1, ignored by the loss).

As a registered data set: ``build_dataset("combined", root, sources=...)`` where ``sources`` is a
list of ``{"name": ..., "root": ..., <loader options>}`` dicts (YAML) or a string
``"peta=/data/PETA,market1501=/data/Market-1501"`` (command line); relative source roots are taken
relative to ``root``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from core.errors import UserError
from reid.data.base import ReIDData, Sample
from reid.data.schemas import get_schema, to_common
from reid.schema import AttributeSchema

PID_STRIDE = 10_000_000
CAM_STRIDE = 1_000


def _map_attrs(samples: list[Sample], src: AttributeSchema | None, dst: AttributeSchema | None) -> list[np.ndarray | None]:
    """Attribute rows of ``samples`` expressed in schema ``dst`` (None when ``dst`` is None)."""
    if dst is None:
        return [None] * len(samples)
    if src is None or not samples:
        rows = np.full((len(samples), dst.num_groups), -1, dtype=np.int64)
    else:
        t = np.stack([s.attrs if s.attrs is not None else np.full(src.num_groups, -1, np.int64)
                      for s in samples])  # (N, G_src)
        if src.name == dst.name and src.to_dict() == dst.to_dict():
            rows = t.copy()
        elif dst.name == "common":
            rows = to_common(t, src)  # (N, G_common)
        else:
            raise UserError(f"cannot map attribute schema {src.name!r} onto {dst.name!r}; "
                            "combine onto 'common' or onto the sources' own schema")
    rows.setflags(write=False)
    return list(rows)


def _renumber(samples: list[Sample], i: int, attrs: list, tracklet_base: int) -> list[Sample]:
    out = []
    for s, a in zip(samples, attrs):
        pid = s.pid if s.pid <= 0 else i * PID_STRIDE + s.pid
        tr = s.tracklet if s.tracklet < 0 else tracklet_base + s.tracklet
        out.append(Sample(s.path, pid, i * CAM_STRIDE + s.camid, a, tr))
    return out


def combine(sources: Sequence[ReIDData], schema: AttributeSchema | str | None = "common",
            name: str = "combined") -> ReIDData:
    """One :class:`ReIDData` from several (see the module docstring); ``schema=None`` drops attributes."""
    if not sources:
        raise UserError("combine: no data sets given")
    dst = get_schema(schema) if isinstance(schema, str) else schema
    splits: dict[str, list[Sample]] = {"train": [], "query": [], "gallery": []}
    tracklet_base = 0
    for i, data in enumerate(sources):
        for split in splits:
            samples = getattr(data, split)
            splits[split] += _renumber(samples, i, _map_attrs(samples, data.schema, dst), tracklet_base)
        tracklets = [s.tracklet for sp in ("train", "query", "gallery") for s in getattr(data, sp)]
        tracklet_base += max(tracklets, default=-1) + 1
    info = {"sources": [d.describe() for d in sources]}
    return ReIDData(name, splits["train"], splits["query"], splits["gallery"], dst,
                    ";".join(d.root for d in sources), info)


def parse_sources(sources, root: str | Path | None) -> list[dict]:
    """Normalise ``sources`` (string ``"name=path,..."`` or list of dicts) to [{"name", "root", ...}]."""
    if isinstance(sources, str):
        items = []
        for part in (p.strip() for p in sources.split(",") if p.strip()):
            name, sep, path = part.partition("=")
            if not sep or not name or not path:
                raise UserError(f"combined: bad source {part!r}; write name=path, e.g. 'peta=/data/PETA'")
            items.append({"name": name.strip(), "root": path.strip()})
    elif isinstance(sources, Sequence) and all(isinstance(s, Mapping) for s in sources):
        items = [dict(s) for s in sources]
    else:
        raise UserError("combined: 'sources' must be 'name=path,...' or a list of {name, root, ...}")
    for s in items:
        if "name" not in s or "root" not in s:
            raise UserError(f"combined: each source needs 'name' and 'root', got {s}")
        if root is not None and not Path(s["root"]).expanduser().is_absolute():
            s["root"] = str(Path(root).expanduser() / s["root"])
    if not items:
        raise UserError("combined: 'sources' is empty")
    return items


def load_combined(root: str | Path | None, sources, schema: str = "common",
                  build: Callable[..., ReIDData] | None = None) -> ReIDData:
    """Registry entry: load each source through ``build`` (``reid.data.build_dataset``) and combine."""
    if build is None:
        from reid.data import build_dataset as build
    items = parse_sources(sources, root)
    if any(s["name"] == "combined" for s in items):
        raise UserError("combined: a source cannot itself be 'combined'")
    loaded = [build(s.pop("name"), s.pop("root"), **s) for s in items]
    return combine(loaded, schema=None if schema in (None, "none") else schema)

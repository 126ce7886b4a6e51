"""Generic folder layout for bringing your own ReID data (``build_dataset("folder", root)``).

Layout::

    root/train/<pid>_c<camera>_<anything>.jpg     training images (jpg, jpeg, png or bmp)
    root/query/<pid>_c<camera>_<anything>.jpg     optional: query images for evaluation
    root/gallery/<pid>_c<camera>_<anything>.jpg   optional: gallery images (needed with query)
    root/attributes.csv                           optional: per-identity attribute labels

``pid`` and ``camera`` are integers (e.g. ``0042_c3_frame0017.jpg``); in query/gallery a pid of
``-1`` marks junk and ``0`` a distractor, as in Market-1501. At least ``train`` or ``query`` +
``gallery`` must exist.

``attributes.csv``: a header row ``pid,<attribute>,<attribute>,...`` then one row per identity.
A header cell ``name@part`` puts the attribute on a body part (``global`` default, ``upper`` or
``lower``). A column whose values are all 0/1 is a binary attribute; any other values make a
multi-class attribute whose classes are the distinct values (sorted). An empty cell or ``-1`` is
missing. Identities without a row get all attributes missing. Example::

    pid,female,hat@upper,upper_color@upper
    1,1,0,red
    2,0,,blue
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from core.errors import UserError
from reid.data.base import ReIDData, attach_attrs, require_dir
from reid.data.market1501 import read_split
from reid.schema import AttributeGroup, AttributeSchema

MISSING = ("", "-1")


def _sort_key(v: str):
    try:
        return (0, float(v), v)
    except ValueError:
        return (1, 0.0, v)


def _header_group(cell: str, values: list[str], path: Path) -> AttributeGroup:
    name, _, part = cell.strip().partition("@")
    present = sorted({v for v in values if v not in MISSING}, key=_sort_key)
    classes = () if set(present) <= {"0", "1"} else tuple(present)
    if len(classes) == 1:
        raise UserError(f"{path}: column {name!r} has the single value {classes[0]!r}; use 0/1 for a "
                        "binary attribute or give at least two classes")
    try:
        return AttributeGroup(name, part or "global", classes)
    except ValueError as exc:
        raise UserError(f"{path}: bad column {cell!r}: {exc}") from None


def read_attributes_csv(path: Path) -> tuple[AttributeSchema, dict[int, np.ndarray]]:
    """(schema, {pid: (G,) int64 targets}) from a folder data set's ``attributes.csv``."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = [[c.strip() for c in r] for r in csv.reader(f) if r and any(c.strip() for c in r)]
    if not rows or rows[0][0].lower() != "pid" or len(rows[0]) < 2:
        raise UserError(f"{path}: the first row must be a header 'pid,<attribute>,...'")
    header, body = rows[0], rows[1:]
    short = [i + 2 for i, r in enumerate(body) if len(r) != len(header)]
    if short:
        raise UserError(f"{path}: line(s) {short[:5]} have a different number of cells than the header")
    groups = tuple(_header_group(h, [r[j] for r in body], path) for j, h in enumerate(header) if j > 0)
    schema = AttributeSchema("folder", groups)
    table: dict[int, np.ndarray] = {}
    for i, r in enumerate(body):
        try:
            pid = int(r[0])
        except ValueError:
            raise UserError(f"{path}: line {i + 2}: pid {r[0]!r} is not an integer") from None
        row = [-1 if v in MISSING else (int(v) if g.is_binary else g.classes.index(v))
               for g, v in zip(groups, r[1:])]
        table[pid] = np.array(row, dtype=np.int64)
    return schema, table


def load_folder(root: str | Path, attributes: str | Path | None = None) -> ReIDData:
    """A data set in the generic folder layout (see the module docstring)."""
    root = require_dir(Path(root).expanduser(), "data root", "folder")
    has = {k: (root / k).is_dir() for k in ("train", "query", "gallery")}
    if not has["train"] and not (has["query"] and has["gallery"]):
        raise UserError(f"folder: {root} needs a train/ folder, or query/ and gallery/ folders "
                        "(images named <pid>_c<camera>_<anything>.jpg; see reid/data/folder.py)")
    if has["query"] != has["gallery"]:
        raise UserError(f"folder: {root} has {'query' if has['query'] else 'gallery'}/ but not "
                        f"{'gallery' if has['query'] else 'query'}/; evaluation needs both")
    splits = {k: (read_split(root / k, "folder") if has[k] else []) for k in has}
    csv_path = Path(attributes) if attributes else root / "attributes.csv"
    if attributes and not csv_path.is_file():
        raise UserError(f"folder: attribute file not found: {csv_path}")
    schema = None
    if csv_path.is_file():
        schema, table = read_attributes_csv(csv_path)
        splits = {k: attach_attrs(v, table, schema.num_groups) for k, v in splits.items()}
    return ReIDData("folder", splits["train"], splits["query"], splits["gallery"], schema, str(root))

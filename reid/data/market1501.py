"""Market-1501 loader (official layout), shared with DukeMTMC-reID which uses the same layout.

Layout (``root`` = the extracted ``Market-1501-v15.09.15`` folder)::

    root/bounding_box_train/PPPP_cCsS_FFFFFF_BB.jpg   training images (751 ids)
    root/query/...                                    query images
    root/bounding_box_test/...                        gallery (pid 0 = distractor, -1 = junk)
    root/market_attribute.mat                         optional: Lin et al.'s per-identity attributes

File names: ``PPPP`` = person id (``-1`` junk, ``0`` distractor), ``cC`` = camera (1-based). The
attribute file holds ``market_attribute.train`` / ``.test`` structs with one field per attribute
(1 = no / 2 = yes, age 1..4, ``image_index`` = the identity) whose order differs between train and
test, so fields are read by name. An identity with no colour set gets -1 (missing) for that group.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Mapping

import numpy as np

from core.errors import UserError
from reid.data.base import ReIDData, Sample, attach_attrs, check_targets, require_dir, require_images
from reid.data.schemas import MARKET1501
from reid.schema import AttributeSchema

log = logging.getLogger(__name__)

NAME_RE = re.compile(r"^(-?\d+)_c(\d+)")
SPLIT_DIRS = (("train", "bounding_box_train"), ("query", "query"), ("gallery", "bounding_box_test"))

# group -> (kind, argument): "pos" (field, raw value meaning yes), "level" field (1..n -> 0..n-1),
# "onehot" field prefix (the class whose field is 2).
MARKET_SPEC: dict[str, tuple[str, object]] = {
    "age": ("level", "age"), "female": ("pos", ("gender", 2)), "long_hair": ("pos", ("hair", 2)),
    "short_sleeve": ("pos", ("up", 2)), "hat": ("pos", ("hat", 2)), "backpack": ("pos", ("backpack", 2)),
    "bag": ("pos", ("bag", 2)), "handbag": ("pos", ("handbag", 2)), "upper_color": ("onehot", "up"),
    "short_lower": ("pos", ("down", 2)), "skirt": ("pos", ("clothes", 1)), "lower_color": ("onehot", "down"),
}


def parse_name(name: str) -> tuple[int, int] | None:
    """(pid, camid) from ``PPPP_cC...`` file names; None when the name does not match."""
    m = NAME_RE.match(name)
    return (int(m.group(1)), int(m.group(2))) if m else None


def read_split(folder: Path, dataset: str) -> list[Sample]:
    """Samples of one split folder; a UserError names files that do not follow ``PPPP_cC...``."""
    samples, bad = [], []
    for p in require_images(folder, dataset):
        parsed = parse_name(p.name)
        if parsed is None:
            bad.append(p.name)
        else:
            samples.append(Sample(str(p), parsed[0], parsed[1]))
    if bad:
        raise UserError(f"{dataset}: {len(bad)} file(s) in {folder} do not follow the name pattern "
                        f"'<pid>_c<camera>...' (e.g. {bad[0]!r}); rename them or use the 'folder' data set")
    return samples


def _mat_ids(index: np.ndarray) -> np.ndarray:
    """Identity numbers from a .mat ``image_index`` (cell of strings or char array) -> (N,) int64."""
    flat = np.ravel(index)
    return np.array([int(str(np.ravel(x)[0]) if isinstance(x, np.ndarray) else str(x)) for x in flat],
                    dtype=np.int64)


def _struct_fields(struct, where: str) -> dict[str, np.ndarray]:
    """Fields of a loaded MATLAB struct (as from ``scipy.io.loadmat``) as arrays."""
    s = struct
    while isinstance(s, np.ndarray) and s.dtype.names is None and s.size == 1:
        s = s.flat[0]
    if getattr(getattr(s, "dtype", None), "names", None) is None:
        raise UserError(f"{where} is not a MATLAB struct (got {type(s).__name__}); is this the right attribute file?")
    s = np.ravel(s)[0] if isinstance(s, np.ndarray) else s
    return {n: s[n] for n in s.dtype.names}


def encode_group(fields: Mapping[str, np.ndarray], kind: str, arg, classes: tuple[str, ...], n: int) -> np.ndarray:
    """One schema group's targets (n,) int64 from raw .mat fields (missing / invalid -> -1)."""
    if kind == "pos":
        name, yes = arg
        raw = np.ravel(fields[name]).astype(np.int64)
        return np.where(np.isin(raw, (1, 2)), (raw == yes).astype(np.int64), -1)
    if kind == "level":
        raw = np.ravel(fields[arg]).astype(np.int64)
        return np.where((raw >= 1) & (raw <= len(classes)), raw - 1, -1)
    out = np.full(n, -1, dtype=np.int64)  # "onehot": first class whose field says yes
    for k in reversed(range(len(classes))):
        raw = np.ravel(fields[f"{arg}{classes[k]}"]).astype(np.int64)
        out[raw == 2] = k
    return out


def read_attribute_mat(path: Path, key: str, schema: AttributeSchema,
                       spec: Mapping[str, tuple[str, object]]) -> dict[int, np.ndarray]:
    """Per-identity targets {pid: (G,) int64} from a Lin et al. attribute .mat (train and test merged)."""
    import scipy.io

    try:
        mat = scipy.io.loadmat(str(path))
    except Exception as exc:  # scipy raises several types for corrupt files
        raise UserError(f"cannot read attribute file {path}: {exc}") from None
    if key not in mat:
        raise UserError(f"{path} has no variable {key!r} (found: {sorted(k for k in mat if not k.startswith('__'))})")
    top = _struct_fields(mat[key], f"{path}: {key}")
    table: dict[int, np.ndarray] = {}
    for split in ("train", "test"):
        if split not in top:
            raise UserError(f"{path}: struct {key!r} has no {split!r} field (found {sorted(top)})")
        fields = _struct_fields(top[split], f"{path}: {key}.{split}")
        needed = {a[0] if k == "pos" else a for k, a in spec.values() if k != "onehot"}
        lost = sorted(n for n in needed | {"image_index"} if n not in fields)
        if lost:
            raise UserError(f"{path}: {key}.{split} lacks field(s) {lost}; is this the right attribute file?")
        ids = _mat_ids(fields["image_index"])
        cols = [encode_group(fields, *spec[g.name], g.classes, len(ids)) for g in schema.groups]
        targets = check_targets(np.stack(cols, axis=1), schema)  # (N, G)
        table.update({int(pid): row for pid, row in zip(ids, targets)})
    return table


def load_market_layout(root: str | Path, dataset: str, schema: AttributeSchema, mat_name: str,
                       mat_key: str, spec: Mapping, attributes: str | Path | None = None) -> ReIDData:
    """Shared loader for the Market-1501 / DukeMTMC-reID layout (see the module docstring)."""
    root = require_dir(Path(root).expanduser(), "data root", dataset)
    missing = [d for _, d in SPLIT_DIRS if not (root / d).is_dir()]
    if missing:
        raise UserError(f"{dataset}: {root} lacks folder(s) {missing}; expected "
                        f"{[d for _, d in SPLIT_DIRS]} (the official layout)")
    splits = {k: read_split(root / d, dataset) for k, d in SPLIT_DIRS}
    mat = Path(attributes) if attributes else root / mat_name
    if attributes and not mat.is_file():
        raise UserError(f"{dataset}: attribute file not found: {mat}")
    if not mat.is_file():
        log.info("%s: no %s in %s: loading without attributes", dataset, mat_name, root)
        return ReIDData(dataset, splits["train"], splits["query"], splits["gallery"], None, str(root))
    table = read_attribute_mat(mat, mat_key, schema, spec)
    out = {k: attach_attrs(v, table, schema.num_groups) for k, v in splits.items()}
    unlabeled = sorted({s.pid for s in splits["train"] if s.pid not in table})
    if unlabeled:
        log.warning("%s: %d training ids have no attributes in %s (e.g. %s)", dataset, len(unlabeled),
                    mat.name, unlabeled[:5])
    return ReIDData(dataset, out["train"], out["query"], out["gallery"], schema, str(root),
                    {"attributes_file": str(mat)})


def load_market1501(root: str | Path, attributes: str | Path | None = None) -> ReIDData:
    """Market-1501 with its 27 attribute fields (12 groups, :data:`reid.data.schemas.MARKET1501`)."""
    return load_market_layout(root, "market1501", MARKET1501, "market_attribute.mat", "market_attribute",
                              MARKET_SPEC, attributes)

"""PETA loader (Deng et al., ACM MM 2014): pedestrian attributes, several images per identity.

Layout: ``root`` is the PETA folder holding subset folders, or one subset folder::

    root/<subset>/archive/Label.txt      one line per identity: "<id> <attribute> <attribute> ..."
    root/<subset>/archive/<id>_*.png     images; the identity is the file-name prefix before '_'

Attributes: the 61 binary ones (present in the line = 1, absent = 0) and 4 colour groups
(upper body, lower body, hair, footwear: 11 colours; the first colour listed in the line is the
class, none listed = -1), schema :data:`reid.data.schemas.PETA`. All images go to ``train`` (PETA
is an attribute data set; VIPeR has its own loader with the evaluation protocol).

``subsets`` picks subset folders (default: all found except those in ``exclude``, which defaults
to VIPeR so that training on PETA never sees the VIPeR test identities).

Held-out identities (``holdout`` > 0, off by default): a deterministic fraction of each subset's
identities (:func:`held_out`: a hash of seed, subset name and identity, so the split does not
depend on which subsets are loaded or in which order) goes to ``gallery``, the attribute test part
that ``mcmt eval-reid --dataset peta`` scores; ``train`` keeps the other identities. A training
recipe that sets the same ``holdout`` / ``holdout_seed`` on its PETA source excludes exactly the
identities that evaluation holds out (eval-reid refuses a checkpoint that trained on them). pids are made unique
across subsets: ``pid = 100000 * (subset index + 1) + id``; cameras likewise ``100 * (index + 1) +
camera`` (camera parsed for GRID, PRID and VIPeR, 1 elsewhere). ``min_images=2`` keeps only
identities with at least two images (MIT, and most of GRID and PRID, have one image per id).
"""
from __future__ import annotations

import logging
import zlib
from collections import Counter
from pathlib import Path
from typing import Sequence

import numpy as np

from core.errors import UserError
from reid.data.base import ReIDData, Sample, check_targets, require_dir, require_images
from reid.data.schemas import PETA, PETA_ALIASES, PETA_BINARY, PETA_COLOR_GROUPS, PETA_COLORS

log = logging.getLogger(__name__)

PID_STRIDE = 100_000
CAM_STRIDE = 100
PETA_HOLDOUT = 0.1       # held-out identity fraction of the PETA attribute evaluation (eval-reid default)
_BINARY_INDEX = {n: i for i, n in enumerate(PETA_BINARY)}
_COLOR_TOKENS = {f"{prefix}{c.capitalize()}": (len(PETA_BINARY) + g, k)
                 for g, prefix in enumerate(PETA_COLOR_GROUPS.values()) for k, c in enumerate(PETA_COLORS)}


def encode_label_tokens(tokens: Sequence[str]) -> np.ndarray:
    """PETA targets (65,) int64 from the attribute words of one Label.txt line."""
    out = np.zeros(PETA.num_groups, dtype=np.int64)
    out[len(PETA_BINARY):] = -1
    for tok in tokens:
        tok = PETA_ALIASES.get(tok, tok)
        if tok in _BINARY_INDEX:
            out[_BINARY_INDEX[tok]] = 1
        elif tok in _COLOR_TOKENS:
            g, k = _COLOR_TOKENS[tok]
            if out[g] < 0:  # first listed colour wins
                out[g] = k
    return out


def read_labels(label_file: Path) -> dict[str, np.ndarray]:
    """{identity string: (65,) int64 targets} from a PETA ``Label.txt``."""
    table: dict[str, np.ndarray] = {}
    for line in label_file.read_text(encoding="utf-8", errors="replace").splitlines():
        parts = line.split()
        if parts:
            table[parts[0]] = encode_label_tokens(parts[1:])
    if not table:
        raise UserError(f"peta: label file is empty: {label_file}")
    check_targets(np.stack(list(table.values())), PETA)
    return table


def subset_camera(subset: str, stem: str) -> int:
    """Camera number from a PETA file name, for the subsets whose names carry one (else 1)."""
    fields = stem.split("_")
    try:
        if subset.lower() == "viper":  # NNN_angle_{1,2}
            return int(fields[-1])
        if subset.lower() == "grid" and len(fields) > 1:  # 0001_<cam>_...
            return int(fields[1])
    except ValueError:
        return 1
    if subset.lower() == "prid" and len(fields) > 1:  # 0001_a / 0001_b
        return {"a": 1, "b": 2}.get(fields[1].lower(), 1)
    return 1


def archive_dir(folder: Path) -> Path:
    """The folder holding Label.txt: ``folder/archive`` or ``folder`` itself."""
    for cand in (folder / "archive", folder):
        if (cand / "Label.txt").is_file():
            return cand
    raise UserError(f"peta: no Label.txt in {folder} or {folder / 'archive'} "
                    "(expected <subset>/archive/Label.txt and the images beside it)")


def read_subset(folder: Path, index: int = 0) -> list[Sample]:
    """Samples of one subset folder; pids/cameras offset by ``index`` (see module docstring)."""
    arch = archive_dir(folder)
    labels = read_labels(arch / "Label.txt")
    subset = folder.name if folder.name != "archive" else folder.parent.name
    missing = np.full(PETA.num_groups, -1, dtype=np.int64)
    files = require_images(arch, "peta")
    prefixes = sorted({p.name.split("_")[0] for p in files})
    rank = {pre: i + 1 for i, pre in enumerate(prefixes)}
    samples, unlabeled = [], set()
    for p in files:
        pre = p.name.split("_")[0]
        local = int(pre) if pre.isdigit() else rank[pre]
        attrs = labels.get(pre)
        if attrs is None:
            unlabeled.add(pre)
        cam = subset_camera(subset, p.stem)
        samples.append(Sample(str(p), PID_STRIDE * (index + 1) + local, CAM_STRIDE * (index + 1) + cam,
                              attrs if attrs is not None else missing))
    if unlabeled:
        log.warning("peta/%s: %d identities have no line in Label.txt (attributes missing)", subset, len(unlabeled))
    for arr in {id(a): a for a in [*labels.values(), missing]}.values():
        arr.setflags(write=False)
    return samples


def sample_identity(path: str | Path) -> tuple[str, str]:
    """(subset folder name, identity string) of a PETA image path (``<subset>/archive/<id>_*.png``)."""
    p = Path(path)
    arch = p.parent
    return (arch.parent.name if arch.name == "archive" else arch.name), p.name.split("_")[0]


def held_out(subset: str, identity: str, fraction: float, seed: int = 0) -> bool:
    """Whether an identity of a PETA subset is held out: the CRC-32 of ``"<seed>/<subset lower-case>/
    <identity>"`` is below ``fraction * 2**32``. Deterministic, and nested: a smaller fraction holds
    out a subset of a larger one's identities."""
    if fraction <= 0:
        return False
    return zlib.crc32(f"{int(seed)}/{subset.lower()}/{identity}".encode()) < fraction * 2 ** 32


def find_subsets(root: Path) -> list[Path]:
    """Subset folders under a PETA root (folders containing archive/Label.txt), sorted by name."""
    return sorted(d for d in root.iterdir() if d.is_dir() and
                  ((d / "archive" / "Label.txt").is_file() or (d / "Label.txt").is_file()))


def _as_list(value) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value]


def load_peta(root: str | Path, subsets: Sequence[str] | str | None = None,
              exclude: Sequence[str] | str = ("VIPeR",), min_images: int = 1, holdout: float = 0.0,
              holdout_seed: int = 0) -> ReIDData:
    """PETA subsets as one training set with the 65-group PETA schema (see module docstring);
    ``min_images`` > 1 drops training identities with fewer images (e.g. 2 for ReID training);
    ``holdout`` > 0 moves that fraction of the identities (seeded by ``holdout_seed``) to ``gallery``."""
    try:
        holdout, holdout_seed = float(holdout), int(holdout_seed)
    except (TypeError, ValueError):
        raise UserError(f"peta: holdout must be a fraction and holdout_seed an integer, got {holdout!r}, "
                        f"{holdout_seed!r}") from None
    if not 0.0 <= holdout < 1.0:
        raise UserError(f"peta: holdout is the held-out fraction of identities, in [0, 1), got {holdout}")
    root = require_dir(Path(root).expanduser(), "data root", "peta")
    folders = _subset_folders(root, subsets, exclude)
    samples = [s for i, d in enumerate(folders) for s in read_subset(d, i)]
    test = [s for s in samples if held_out(*sample_identity(s.path), holdout, holdout_seed)]
    test_paths = {s.path for s in test}
    train = [s for s in samples if s.path not in test_paths]
    if int(min_images) > 1:
        counts = Counter(s.pid for s in train)
        train = [s for s in train if counts[s.pid] >= int(min_images)]
        if not train:
            raise UserError(f"peta: no identity of {[d.name for d in folders]} has {min_images} images")
    info = {"subsets": [d.name for d in folders], "min_images": int(min_images), "holdout": holdout,
            "holdout_seed": holdout_seed}
    return ReIDData("peta", train, [], test, PETA, str(root), info)


def _subset_folders(root: Path, subsets, exclude) -> list[Path]:
    """The subset folders ``load_peta`` reads (``root`` itself when it is one subset)."""
    if (root / "archive" / "Label.txt").is_file() or (root / "Label.txt").is_file():
        folders = [root]  # a single subset folder
    else:
        found = find_subsets(root)
        if not found:
            raise UserError(f"peta: no subset folders with archive/Label.txt under {root}")
        by_name = {d.name.lower(): d for d in found}
        wanted, skip = _as_list(subsets), {s.lower() for s in (_as_list(exclude) or [])}
        if wanted is None:
            folders = [d for d in found if d.name.lower() not in skip]
        else:
            unknown = [s for s in wanted if s.lower() not in by_name]
            if unknown:
                raise UserError(f"peta: unknown subset(s) {unknown} in {root}; found: "
                                f"{', '.join(d.name for d in found)}")
            folders = [by_name[s.lower()] for s in wanted]
        if not folders:
            raise UserError(f"peta: no subsets left to load under {root} (subsets={wanted}, exclude={exclude})")
    return folders

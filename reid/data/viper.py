"""VIPeR loader (the PETA copy): 632 identities x 2 cameras, 19 attributes, 10 random halves.

Layout: ``root`` is the VIPeR subset folder of PETA (or the PETA folder holding it)::

    root/archive/NNN_<angle>_<camera>.png   NNN = identity (000..873), camera 1 or 2
    root/archive/Label.txt                  PETA attribute words per identity

Protocol (paper Section IV-B3): the identities are split at random into two halves, train and
test; the query set is camera 1 of the test ids, the gallery camera 2; repeated for 10 splits and
the results averaged. The paper used a split file we do not have, so the splits are seeded: split
``i`` is the ``i``-th permutation drawn from ``numpy.random.default_rng(seed)`` (seed 0 default),
first half = train ids. Attributes: the 19 PETA binary attributes of
:data:`reid.data.schemas.VIPER`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from core.errors import UserError
from reid.data.base import ReIDData, Sample, require_dir, require_images
from reid.data.peta import archive_dir, read_labels
from reid.data.schemas import PETA, VIPER

NUM_SPLITS = 10


def viper_splits(pids, num_splits: int = NUM_SPLITS, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``num_splits`` seeded random halves of ``pids``: [(train ids (n//2,), test ids (n - n//2,))]."""
    ids = np.unique(np.asarray(pids, dtype=np.int64))
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(num_splits):
        perm = rng.permutation(ids)
        half = len(ids) // 2
        out.append((np.sort(perm[:half]), np.sort(perm[half:])))
    return out


def _viper_folder(root: Path) -> Path:
    if (root / "VIPeR").is_dir():
        return root / "VIPeR"
    return root


def load_viper(root: str | Path, split: int = 0, seed: int = 0, num_splits: int = NUM_SPLITS) -> ReIDData:
    """One VIPeR split (``split`` in ``0..num_splits-1``) with the 19-attribute schema."""
    folder = _viper_folder(require_dir(Path(root).expanduser(), "data root", "viper"))
    try:
        split, seed, num_splits = int(split), int(seed), int(num_splits)
    except (TypeError, ValueError):
        raise UserError(f"viper: split, seed and num_splits must be integers, got {split!r}, {seed!r}, "
                        f"{num_splits!r}") from None
    if not 0 <= split < num_splits:
        raise UserError(f"viper: split must be in 0..{num_splits - 1}, got {split}")
    arch = archive_dir(folder)
    labels = read_labels(arch / "Label.txt")
    cols = [PETA.index(g.name) for g in VIPER.groups]
    missing = np.full(VIPER.num_groups, -1, dtype=np.int64)
    samples, bad = [], []
    for p in require_images(arch, "viper"):
        fields = p.stem.split("_")
        if len(fields) != 3 or not fields[0].isdigit() or fields[2] not in ("1", "2"):
            bad.append(p.name)
            continue
        row = labels.get(fields[0])
        attrs = row[cols] if row is not None else missing
        attrs.setflags(write=False)
        samples.append(Sample(str(p), int(fields[0]), int(fields[2]), attrs))
    if bad:
        raise UserError(f"viper: {len(bad)} file(s) in {arch} are not named NNN_<angle>_<1|2>.png "
                        f"(e.g. {bad[0]!r})")
    train_ids, test_ids = viper_splits([s.pid for s in samples], num_splits, seed)[int(split)]
    train_set, test_set = set(train_ids.tolist()), set(test_ids.tolist())
    train = [s for s in samples if s.pid in train_set]
    query = [s for s in samples if s.pid in test_set and s.camid == 1]
    gallery = [s for s in samples if s.pid in test_set and s.camid == 2]
    return ReIDData("viper", train, query, gallery, VIPER, str(folder),
                    {"split": int(split), "seed": int(seed), "num_splits": int(num_splits)})

"""ReID data sets: loaders (an explicit registry), attribute schemas, P x K sampler, transforms.

``build_dataset(name, root, **options) -> ReIDData`` with ``.train``, ``.query``, ``.gallery`` (lists
of :class:`Sample`), ``.schema`` and ``.name``. Each loader documents its folder layout in its
module docstring and raises :class:`~core.errors.UserError` naming what is missing.

- ``market1501`` (:mod:`reid.data.market1501`): ``attributes=<.mat path>``
- ``dukemtmc`` (:mod:`reid.data.dukemtmc`): ``attributes=<.mat path>``
- ``viper`` (:mod:`reid.data.viper`): ``split=0..9``, ``seed=0``, ``num_splits=10``
- ``peta`` (:mod:`reid.data.peta`): ``subsets=[...]``, ``exclude=["VIPeR"]``, ``min_images=1``
- ``mars`` (:mod:`reid.data.mars`): ``test_folder="auto"``, ``max_per_tracklet=0``
- ``folder`` (:mod:`reid.data.folder`): ``attributes=<.csv path>``
- ``combined`` (:mod:`reid.data.combine`): ``sources="peta=/p,market1501=/m"``, ``schema="common"``

Also here: :mod:`~reid.data.schemas` (attribute schemas, mapping onto ``common``),
:mod:`~reid.data.sampler` (``PKSampler``), :mod:`~reid.data.transforms`,
:mod:`~reid.data.image_dataset` (the torch ``Dataset``).
"""
from __future__ import annotations

import inspect
from pathlib import Path
from typing import Callable

from core.errors import UserError
from reid.data.base import ReIDData, Sample
from reid.data.combine import combine, load_combined
from reid.data.dukemtmc import load_dukemtmc
from reid.data.folder import load_folder
from reid.data.market1501 import load_market1501
from reid.data.mars import load_mars
from reid.data.peta import load_peta
from reid.data.schemas import COMMON, SCHEMAS, get_schema, to_common
from reid.data.viper import load_viper, viper_splits

DATASETS: dict[str, Callable[..., ReIDData]] = {
    "market1501": load_market1501,
    "dukemtmc": load_dukemtmc,
    "viper": load_viper,
    "peta": load_peta,
    "mars": load_mars,
    "folder": load_folder,
    "combined": load_combined,
}


def build_dataset(name: str, root: str | Path | None, **options) -> ReIDData:
    """Load data set ``name`` from ``root``; unknown names or options are UserErrors listing valid ones."""
    if name not in DATASETS:
        raise UserError(f"unknown data set {name!r}; valid: {', '.join(DATASETS)}")
    loader = DATASETS[name]
    params = [p for p in inspect.signature(loader).parameters if p not in ("root", "build")]
    unknown = sorted(set(options) - set(params))
    if unknown:
        raise UserError(f"data set {name!r} has no option(s) {unknown}; valid: {', '.join(params) or 'none'}")
    if root is None and name != "combined":
        raise UserError(f"data set {name!r} needs a data root (--data-root)")
    return loader(root, **options)


__all__ = ["DATASETS", "build_dataset", "Sample", "ReIDData", "combine", "SCHEMAS", "COMMON",
           "get_schema", "to_common", "viper_splits"]

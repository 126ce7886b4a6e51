"""DukeMTMC-reID loader: the Market-1501 layout (see :mod:`reid.data.market1501`) with Duke names.

Layout (``root`` = the extracted ``DukeMTMC-reID`` folder)::

    root/bounding_box_train/PPPP_cC_fFFFFFFF.jpg   702 training ids
    root/query/...                                 2,228 query images
    root/bounding_box_test/...                     gallery
    root/duke_attribute.mat                        optional: Lin et al.'s 23 per-identity attributes

``duke_attribute.mat`` holds ``duke_attribute.train`` / ``.test`` structs with the named fields
backpack, bag, handbag, boots, gender, hat, shoes, top (1 = no/male/dark/short, 2 = yes/female/
light/long), ``up<colour>`` x 8, ``down<colour>`` x 7 and ``image_index`` (identity strings).
They map to the 10 groups of :data:`reid.data.schemas.DUKEMTMC`.
"""
from __future__ import annotations

from pathlib import Path

from reid.data.base import ReIDData
from reid.data.market1501 import load_market_layout
from reid.data.schemas import DUKEMTMC

DUKE_SPEC: dict[str, tuple[str, object]] = {
    "female": ("pos", ("gender", 2)), "long_top": ("pos", ("top", 2)), "hat": ("pos", ("hat", 2)),
    "backpack": ("pos", ("backpack", 2)), "bag": ("pos", ("bag", 2)), "handbag": ("pos", ("handbag", 2)),
    "upper_color": ("onehot", "up"), "boots": ("pos", ("boots", 2)), "light_shoes": ("pos", ("shoes", 2)),
    "lower_color": ("onehot", "down"),
}


def load_dukemtmc(root: str | Path, attributes: str | Path | None = None) -> ReIDData:
    """DukeMTMC-reID with its 23 attribute fields (10 groups)."""
    return load_market_layout(root, "dukemtmc", DUKEMTMC, "duke_attribute.mat", "duke_attribute",
                              DUKE_SPEC, attributes)

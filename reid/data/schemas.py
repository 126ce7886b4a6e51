"""Attribute schemas of the supported data sets, and mappings of each onto the ``common`` schema.

Body parts follow the paper's Table 1: age and gender are ``global``; hair, hat, sleeve length,
upper-body colour and carried bags are ``upper``; lower-body length/type/colour and shoes are
``lower``. Binary group names read as the positive value ("female", "long_hair").

- ``market1501``: the 27 annotated fields of Lin et al.'s ``market_attribute.mat`` as 12 groups:
  9 binary, age (4 classes), upper colour (8 classes: 8 fields), lower colour (9 classes: 9 fields).
- ``dukemtmc``: the 23 fields of ``duke_attribute.mat`` as 10 groups: 8 binary, upper colour (8),
  lower colour (7).
- ``peta``: PETA's 61 binary attributes (names as in ``Label.txt``) + 4 multi-class colour groups
  (11 colours each; an image's first listed colour of a group is its class).
- ``viper``: the 19 PETA binary attributes the paper keeps for VIPeR ("more than 50 training
  images"): every binary attribute with more than 50 positive images in each random training half,
  minus the redundant complements (male = not female, short hair, short sleeve) and the
  "nothing"/"other" catch-alls. ``tests/test_data_schemas.py`` checks the threshold on the data.
- ``common``: what PETA, Market-1501 and DukeMTMC-reID share, to train one default model on all of
  them (:mod:`reid.data.combine`); :func:`to_common` maps each source's targets (unknown -> -1).
"""
from __future__ import annotations

from typing import Callable, Mapping

import numpy as np

from core.errors import UserError
from reid.schema import AttributeGroup as G
from reid.schema import AttributeSchema

# ---- Market-1501 -------------------------------------------------------------------------------
MARKET_AGES = ("young", "teenager", "adult", "old")
MARKET_UPPER_COLORS = ("black", "blue", "gray", "green", "purple", "red", "white", "yellow")
MARKET_LOWER_COLORS = ("black", "blue", "brown", "gray", "green", "pink", "purple", "white", "yellow")
MARKET1501 = AttributeSchema("market1501", (
    G("age", "global", MARKET_AGES), G("female", "global"),
    G("long_hair", "upper"), G("short_sleeve", "upper"), G("hat", "upper"), G("backpack", "upper"),
    G("bag", "upper"), G("handbag", "upper"), G("upper_color", "upper", MARKET_UPPER_COLORS),
    G("short_lower", "lower"), G("skirt", "lower"), G("lower_color", "lower", MARKET_LOWER_COLORS),
))

# ---- DukeMTMC-reID -----------------------------------------------------------------------------
DUKE_UPPER_COLORS = ("black", "blue", "brown", "gray", "green", "purple", "red", "white")
DUKE_LOWER_COLORS = ("black", "blue", "brown", "gray", "green", "red", "white")
DUKEMTMC = AttributeSchema("dukemtmc", (
    G("female", "global"),
    G("long_top", "upper"), G("hat", "upper"), G("backpack", "upper"), G("bag", "upper"),
    G("handbag", "upper"), G("upper_color", "upper", DUKE_UPPER_COLORS),
    G("boots", "lower"), G("light_shoes", "lower"), G("lower_color", "lower", DUKE_LOWER_COLORS),
))

# ---- PETA --------------------------------------------------------------------------------------
# ReadMe.txt order (numbers 2..65 without the discarded 1, 3, 34, 36). ReadMe spells
# "footwearSneaker", Label.txt "footwearSneakers": the label spelling is used.
PETA_BINARY = (
    "accessoryHeadphone", "personalLess15", "personalLess30", "personalLess45", "personalLess60",
    "personalLarger60", "carryingBabyBuggy", "carryingBackpack", "hairBald", "footwearBoots",
    "lowerBodyCapri", "carryingOther", "carryingShoppingTro", "carryingUmbrella", "lowerBodyCasual",
    "upperBodyCasual", "personalFemale", "carryingFolder", "lowerBodyFormal", "upperBodyFormal",
    "accessoryHairBand", "accessoryHat", "lowerBodyHotPants", "upperBodyJacket", "lowerBodyJeans",
    "accessoryKerchief", "footwearLeatherShoes", "upperBodyLogo", "hairLong", "lowerBodyLongSkirt",
    "upperBodyLongSleeve", "lowerBodyPlaid", "lowerBodyThinStripes", "carryingLuggageCase",
    "personalMale", "carryingMessengerBag", "accessoryMuffler", "accessoryNothing", "carryingNothing",
    "upperBodyNoSleeve", "upperBodyPlaid", "carryingPlasticBags", "footwearSandals", "footwearShoes",
    "hairShort", "lowerBodyShorts", "upperBodyShortSleeve", "lowerBodyShortSkirt", "footwearSneakers",
    "footwearStocking", "upperBodyThinStripes", "upperBodySuit", "carryingSuitcase", "lowerBodySuits",
    "accessorySunglasses", "upperBodySweater", "upperBodyThickStripes", "lowerBodyTrousers",
    "upperBodyTshirt", "upperBodyOther", "upperBodyVNeck",
)
PETA_ALIASES = {"footwearSneaker": "footwearSneakers"}
PETA_COLORS = ("black", "blue", "brown", "green", "grey", "orange", "pink", "purple", "red", "white", "yellow")
# multi-class group name -> Label.txt token prefix ("upperBodyBlack" = upper-body colour black)
PETA_COLOR_GROUPS = {"upperBodyColor": "upperBody", "lowerBodyColor": "lowerBody",
                     "hairColor": "hair", "footwearColor": "footwear"}
_LOWER_CARRY = {"carryingBabyBuggy", "carryingShoppingTro", "carryingLuggageCase", "carryingSuitcase"}


def peta_part(name: str) -> str:
    """Body part of a PETA attribute (personal -> global; lower body, shoes, wheeled luggage -> lower)."""
    if name.startswith("personal"):
        return "global"
    if name.startswith(("lowerBody", "footwear")) or name in _LOWER_CARRY:
        return "lower"
    return "upper"


PETA = AttributeSchema("peta", tuple(G(n, peta_part(n)) for n in PETA_BINARY) + tuple(
    G(n, peta_part(prefix), PETA_COLORS) for n, prefix in PETA_COLOR_GROUPS.items()))

VIPER_BINARY = (
    "personalFemale", "personalLess30", "personalLess45", "hairLong", "accessoryHat",
    "accessorySunglasses", "upperBodyCasual", "upperBodyLongSleeve", "upperBodyTshirt",
    "carryingBackpack", "carryingMessengerBag", "carryingOther", "lowerBodyCasual", "lowerBodyJeans",
    "lowerBodyTrousers", "footwearLeatherShoes", "footwearSandals", "footwearShoes", "footwearSneakers",
)
VIPER = AttributeSchema("viper", tuple(G(n, peta_part(n)) for n in VIPER_BINARY))

# ---- common (PETA + Market-1501 + DukeMTMC-reID) ------------------------------------------------
COMMON_AGES = ("child", "young", "adult", "old")
COMMON_COLORS = ("black", "blue", "brown", "gray", "green", "pink", "purple", "red", "white", "yellow")
COMMON = AttributeSchema("common", (
    G("age", "global", COMMON_AGES), G("female", "global"),
    G("long_hair", "upper"), G("short_sleeve", "upper"), G("hat", "upper"), G("backpack", "upper"),
    G("bag", "upper"), G("handbag", "upper"), G("upper_color", "upper", COMMON_COLORS),
    G("short_lower", "lower"), G("skirt", "lower"), G("lower_color", "lower", COMMON_COLORS),
))

SCHEMAS: dict[str, AttributeSchema] = {s.name: s for s in (MARKET1501, DUKEMTMC, PETA, VIPER, COMMON)}


def get_schema(name: str) -> AttributeSchema:
    """Schema by name; a UserError lists the valid names."""
    if name not in SCHEMAS:
        raise UserError(f"unknown attribute schema {name!r}; valid: {', '.join(sorted(SCHEMAS))}")
    return SCHEMAS[name]


# ---- mappings onto the common schema -------------------------------------------------------------
# A getter maps the source columns {group name: (N,) int64} to one common column (N,) int64.
Getter = Callable[[Mapping[str, np.ndarray], int], np.ndarray]


def _col(cols: Mapping[str, np.ndarray], name: str, n: int) -> np.ndarray:
    return cols[name] if name in cols else np.full(n, -1, dtype=np.int64)


def same(name: str) -> Getter:
    return lambda cols, n: _col(cols, name, n).astype(np.int64, copy=True)


def negate(name: str) -> Getter:
    """Binary complement, missing stays missing."""
    def get(cols, n):
        x = _col(cols, name, n)
        return np.where(x >= 0, 1 - x, -1).astype(np.int64)
    return get


def missing() -> Getter:
    return lambda cols, n: np.full(n, -1, dtype=np.int64)


def binary_from(pos: tuple[str, ...], neg: tuple[str, ...]) -> Getter:
    """1 if any ``pos`` binary is 1, else 0 if any ``neg`` binary is 1, else -1.

    A schema that keeps only one side of a complementary pair (VIPeR keeps ``personalFemale`` but
    not ``personalMale``) labels the other side implicitly: a labelled 0 on the only present side
    is the opposite value."""
    def get(cols, n):
        out = np.full(n, -1, dtype=np.int64)
        has_pos, has_neg = any(p in cols for p in pos), any(q in cols for q in neg)
        if has_pos and not has_neg and len(pos) == 1:
            out[_col(cols, pos[0], n) == 0] = 0
        if has_neg and not has_pos and len(neg) == 1:
            out[_col(cols, neg[0], n) == 0] = 1
        for name in neg:
            out[_col(cols, name, n) == 1] = 0
        for name in pos:
            out[_col(cols, name, n) == 1] = 1
        return out
    return get


def class_from(binaries: tuple[tuple[str, int], ...]) -> Getter:
    """Class index of the first positive binary in ``binaries`` ((name, class index) pairs), else -1."""
    def get(cols, n):
        out = np.full(n, -1, dtype=np.int64)
        for name, k in reversed(binaries):
            out[_col(cols, name, n) == 1] = k
        return out
    return get


def recode(name: str, src: tuple[str, ...], dst: tuple[str, ...], aliases: Mapping[str, str] | None = None) -> Getter:
    """Multi-class -> multi-class by class name (``aliases`` renames source classes); unknown -> -1."""
    aliases = aliases or {}
    table = np.array([dst.index(aliases.get(c, c)) if aliases.get(c, c) in dst else -1 for c in src] + [-1])

    def get(cols, n):
        x = _col(cols, name, n)
        return table[np.where(x >= 0, x, len(src))].astype(np.int64)  # -1 indexes the trailing -1
    return get


_PETA_LONG = ("lowerBodyTrousers", "lowerBodyJeans", "lowerBodyLongSkirt", "lowerBodySuits")
_PETA_SHORT = ("lowerBodyShorts", "lowerBodyHotPants", "lowerBodyShortSkirt")
_PETA_TO_COMMON: dict[str, Getter] = {
    "age": class_from((("personalLess15", 0), ("personalLess30", 1), ("personalLess45", 2),
                       ("personalLess60", 2), ("personalLarger60", 3))),
    "female": binary_from(("personalFemale",), ("personalMale",)),
    "long_hair": binary_from(("hairLong",), ("hairShort", "hairBald")),
    "short_sleeve": binary_from(("upperBodyShortSleeve", "upperBodyNoSleeve"), ("upperBodyLongSleeve",)),
    "hat": same("accessoryHat"),
    "backpack": same("carryingBackpack"),
    "bag": same("carryingMessengerBag"),
    "handbag": missing(),
    "upper_color": recode("upperBodyColor", PETA_COLORS, COMMON_COLORS, {"grey": "gray"}),
    "short_lower": binary_from(_PETA_SHORT, _PETA_LONG),
    "skirt": binary_from(("lowerBodyLongSkirt", "lowerBodyShortSkirt"),
                         ("lowerBodyTrousers", "lowerBodyJeans", "lowerBodyShorts", "lowerBodyHotPants",
                          "lowerBodyCapri", "lowerBodySuits")),
    "lower_color": recode("lowerBodyColor", PETA_COLORS, COMMON_COLORS, {"grey": "gray"}),
}
_MARKET_TO_COMMON: dict[str, Getter] = {
    **{n: same(n) for n in ("female", "long_hair", "short_sleeve", "hat", "backpack", "bag", "handbag",
                            "short_lower", "skirt")},
    "age": recode("age", MARKET_AGES, COMMON_AGES, {"young": "child", "teenager": "young"}),
    "upper_color": recode("upper_color", MARKET_UPPER_COLORS, COMMON_COLORS),
    "lower_color": recode("lower_color", MARKET_LOWER_COLORS, COMMON_COLORS),
}
_DUKE_TO_COMMON: dict[str, Getter] = {
    **{n: same(n) for n in ("female", "hat", "backpack", "bag", "handbag")},
    "age": missing(), "long_hair": missing(), "short_lower": missing(), "skirt": missing(),
    "short_sleeve": negate("long_top"),
    "upper_color": recode("upper_color", DUKE_UPPER_COLORS, COMMON_COLORS),
    "lower_color": recode("lower_color", DUKE_LOWER_COLORS, COMMON_COLORS),
}
TO_COMMON: dict[str, dict[str, Getter]] = {
    "peta": _PETA_TO_COMMON, "viper": _PETA_TO_COMMON, "market1501": _MARKET_TO_COMMON,
    "dukemtmc": _DUKE_TO_COMMON, "common": {g.name: same(g.name) for g in COMMON.groups},
}


def to_common(targets: np.ndarray, src: AttributeSchema) -> np.ndarray:
    """Map attribute targets ``(N, G_src)`` of schema ``src`` to the common schema ``(N, 12)``."""
    if src.name not in TO_COMMON:
        raise UserError(f"no mapping from attribute schema {src.name!r} to 'common'; "
                        f"mappable: {', '.join(sorted(TO_COMMON))}")
    t = np.asarray(targets, dtype=np.int64).reshape(-1, src.num_groups)  # (N, G_src)
    cols = {g.name: t[:, i] for i, g in enumerate(src.groups)}
    getters = TO_COMMON[src.name]
    out = [getters[g.name](cols, len(t)) for g in COMMON.groups]
    return np.stack(out, axis=1) if out else np.zeros((len(t), 0), np.int64)  # (N, 12)

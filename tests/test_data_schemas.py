"""Attribute schemas per data set, the mapping onto the common schema, and combining sources."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import shared_path
from core.errors import UserError
from reid.data import build_dataset, combine
from reid.data.peta import encode_label_tokens, read_labels
from reid.data.schemas import COMMON, DUKEMTMC, MARKET1501, PETA, SCHEMAS, VIPER, get_schema, to_common
from reid.data.viper import viper_splits
from reid.schema import AttributeSchema

C = {g.name: i for i, g in enumerate(COMMON.groups)}
RED, BLUE, GRAY = (COMMON.groups[C["upper_color"]].classes.index(c) for c in ("red", "blue", "gray"))


def test_schema_sizes():
    # Market-1501: 27 annotated fields = 9 binary + age + 8 upper colours + 9 lower colours
    assert MARKET1501.num_groups == 12
    assert MARKET1501.num_outputs == 9 + 4 + 8 + 9
    assert DUKEMTMC.num_groups == 10
    assert DUKEMTMC.num_outputs == 8 + 8 + 7
    binary = [g for g in PETA.groups if g.is_binary]
    multi = [g for g in PETA.groups if not g.is_binary]
    assert len(binary) == 61
    assert len(multi) == 4
    assert all(len(g.classes) == 11 for g in multi)
    assert VIPER.num_groups == 19
    assert all(g.is_binary for g in VIPER.groups)
    assert set(VIPER.group_names) <= set(PETA.group_names)
    for s in SCHEMAS.values():  # every schema round-trips and uses all three parts
        assert AttributeSchema.from_dict(s.to_dict()) == s
        assert {g.part for g in s.groups} == {"global", "upper", "lower"}
    assert PETA.groups[PETA.index("personalFemale")].part == "global"
    assert PETA.groups[PETA.index("footwearColor")].part == "lower"
    with pytest.raises(UserError, match="valid: common, dukemtmc, market1501, peta, viper"):
        get_schema("pa100k")


def test_peta_token_encoding():
    t = encode_label_tokens(["upperBodyRed", "upperBodyBlack", "hairLong", "footwearSneaker", "accessoryFaceMask"])
    assert t[PETA.index("hairLong")] == 1
    assert t[PETA.index("footwearSneakers")] == 1  # alias
    assert t[PETA.index("upperBodyColor")] == 8  # red (first listed) of black..yellow
    assert t[PETA.index("lowerBodyColor")] == -1
    assert t[PETA.index("personalMale")] == 0
    assert int((t[:61] == 1).sum()) == 2  # discarded attributes (FaceMask) are ignored


def test_viper_attributes_have_over_50_positive_training_images():
    labels = read_labels(shared_path("data", "peta", "VIPeR", "archive", "Label.txt"))
    cols = [PETA.index(n) for n in VIPER.group_names]
    ids = np.array(sorted(int(k) for k in labels))
    for train_ids, _ in viper_splits(ids):
        rows = np.stack([labels[f"{i:03d}"][cols] for i in train_ids])  # (316, 19), 2 images per id
        assert (2 * rows.sum(0) > 50).all()


def test_to_common_market_and_peta_by_hand():
    # market1501 groups: age, female, long_hair, short_sleeve, hat, backpack, bag, handbag,
    # upper_color (black blue gray green purple red white yellow), short_lower, skirt, lower_color
    market = np.array([[1, 0, 0, 1, 0, 0, 0, 0, 5, 1, 0, 1],
                       [0, 1, 1, 0, 1, 1, 1, 1, -1, 0, 1, -1]])
    got = to_common(market, MARKET1501)
    assert got.tolist() == [[1, 0, 0, 1, 0, 0, 0, 0, RED, 1, 0, BLUE],
                            [0, 1, 1, 0, 1, 1, 1, 1, -1, 0, 1, -1]]
    peta = encode_label_tokens(["personalLess60", "personalFemale", "hairShort", "upperBodyNoSleeve",
                                "carryingBackpack", "upperBodyGrey", "lowerBodyShortSkirt", "lowerBodyOrange"])
    row = to_common(peta[None], PETA)[0]
    # age adult, female, short hair, short sleeve (no sleeve), no hat, backpack, no bag,
    # handbag unknown, upper gray, short lower, skirt, lower orange -> not a common colour
    assert row.tolist() == [2, 1, 0, 1, 0, 1, 0, -1, GRAY, 1, 1, -1]
    none = to_common(np.zeros((1, PETA.num_groups), np.int64), PETA)[0]
    assert none[C["age"]] == -1
    assert none[C["female"]] == -1
    assert none[C["hat"]] == 0
    duke = np.array([[1, 1, 0, 1, 0, 0, DUKEMTMC.groups[6].classes.index("red"), 1, 0, -1]])
    assert to_common(duke, DUKEMTMC)[0].tolist() == [-1, 1, -1, 0, 0, 1, 0, 0, RED, -1, -1, -1]
    with pytest.raises(UserError, match="no mapping"):
        to_common(np.zeros((1, 1)), AttributeSchema("x", ()))


def test_combine_market_and_peta_onto_common():
    market = build_dataset("market1501", shared_path("data", "market1501-mini"))
    peta = build_dataset("peta", shared_path("data", "peta"), subsets="SARC3D")
    c = combine([peta, market])
    assert c.schema is COMMON
    assert len(c.train) == 200 + 32
    assert len(c.query) == 32
    assert c.num_train_pids == 50 + 16  # no pid shared between sources
    assert {s.pid // 10_000_000 for s in c.train} == {0, 1}
    m2 = next(s for s in c.train if s.pid == 10_000_000 + 2)
    assert m2.attrs.tolist() == [1, 0, 0, 1, 0, 0, 0, 0, RED, 1, 0, BLUE]
    assert all(s.attrs.shape == (12,) for s in c.train + c.query + c.gallery)
    same = build_dataset("combined", shared_path("data"), sources="peta=peta,market1501=market1501-mini",
                         schema="common")
    assert len(same.train) == 11953 + 32  # PETA default: every subset except VIPeR
    with pytest.raises(UserError, match="write name=path"):
        build_dataset("combined", None, sources="peta")

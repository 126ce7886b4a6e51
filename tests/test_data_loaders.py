"""Data set loaders on the real ../shared data and on generated folders (Duke layout, folder layout)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import scipy.io

from conftest import shared_path
from core.errors import UserError
from reid.data import DATASETS, build_dataset
from reid.data.schemas import DUKEMTMC, MARKET1501, VIPER


def _img(path: Path, value: int = 100) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((16, 8, 3), value, np.uint8))


def _by_pid(samples):
    return {s.pid: s for s in samples}


# ---- registry ---------------------------------------------------------------------------------
def test_registry_errors_list_valid_names(tmp_path):
    with pytest.raises(UserError, match="valid: market1501, dukemtmc, viper, peta, mars, folder, combined"):
        build_dataset("market", tmp_path)
    with pytest.raises(UserError, match=r"no option\(s\) \['splt'\]; valid: split, seed, num_splits"):
        build_dataset("viper", tmp_path, splt=1)
    with pytest.raises(UserError, match="needs a data root"):
        build_dataset("peta", None)
    assert set(DATASETS) == {"market1501", "dukemtmc", "viper", "peta", "mars", "folder", "combined"}


# ---- Market-1501 ------------------------------------------------------------------------------
def test_market1501_mini_counts_and_attributes():
    root = shared_path("data", "market1501-mini")
    d = build_dataset("market1501", root)
    assert (len(d.train), len(d.query), len(d.gallery)) == (32, 32, 32)
    assert d.num_train_pids == 16
    assert d.schema is MARKET1501
    s = next(x for x in d.train if Path(x.path).name == "0002_c1s1_069056_02.jpg")
    assert (s.pid, s.camid) == (2, 1)
    # mat train struct, id 0002: age 2, gender 1, hair 1, up 2, hat/backpack/bag/handbag 1, upred 2,
    # down 2, clothes 2, downblue 2
    assert s.attrs.tolist() == [1, 0, 0, 1, 0, 0, 0, 0, MARKET1501.groups[8].classes.index("red"), 1, 0, 1]
    # id 0004 comes from the test struct, whose field order differs (backpack 2, upred 2, downblack 2)
    q = _by_pid(d.query)[4]
    assert q.attrs.tolist() == [1, 0, 0, 1, 0, 1, 0, 0, 5, 1, 0, 0]
    # 0008 has no lower-body colour set, 0013 no upper-body colour: missing (-1), the rest labelled
    assert _by_pid(d.gallery)[8].attrs[11] == -1
    assert _by_pid(d.gallery)[8].attrs[8] == 6
    assert _by_pid(d.query)[13].attrs[8] == -1
    assert _by_pid(d.query)[13].attrs[11] == 0
    assert {s.pid for s in d.train}.isdisjoint({s.pid for s in d.query})


def test_market_layout_errors_and_junk(tmp_path):
    with pytest.raises(UserError, match=r"lacks folder\(s\) \['bounding_box_train', 'query', 'bounding_box_test'\]"):
        build_dataset("market1501", tmp_path)
    _img(tmp_path / "bounding_box_train" / "0001_c1s1_000001_00.jpg")
    _img(tmp_path / "bounding_box_train" / "0002_c2s1_000001_00.jpg")
    _img(tmp_path / "query" / "0003_c1s1_000001_00.jpg")
    (tmp_path / "bounding_box_test").mkdir()
    with pytest.raises(UserError, match="no images"):
        build_dataset("market1501", tmp_path)
    _img(tmp_path / "bounding_box_test" / "-1_c3s1_000001_00.jpg")
    _img(tmp_path / "bounding_box_test" / "0000_c4s1_000001_00.jpg")
    d = build_dataset("market1501", tmp_path)
    assert d.schema is None
    assert d.train[0].attrs is None
    assert sorted((s.pid, s.camid) for s in d.gallery) == [(-1, 3), (0, 4)]
    scipy.io.savemat(str(tmp_path / "other.mat"), {"something_else": np.zeros(3)})
    with pytest.raises(UserError, match="has no variable 'market_attribute'"):
        build_dataset("market1501", tmp_path, attributes=str(tmp_path / "other.mat"))
    _img(tmp_path / "query" / "person3.jpg")
    with pytest.raises(UserError, match="do not follow the name pattern"):
        build_dataset("market1501", tmp_path)


# ---- DukeMTMC-reID (generated) ------------------------------------------------------------------
def _duke_struct(ids, order, values):
    """values: {field: list per id}; fields written in ``order`` (train and test orders differ)."""
    d = {f: np.array([values[f]], dtype=np.uint8) for f in order}
    d["image_index"] = np.array([f"{i:04d}" for i in ids], dtype=object).reshape(1, -1)
    return d


def test_dukemtmc_generated_layout(tmp_path):
    for name in ("0001_c1_f0000001.jpg", "0001_c2_f0000002.jpg", "0002_c3_f0000003.jpg"):
        _img(tmp_path / "bounding_box_train" / name)
    _img(tmp_path / "query" / "0005_c1_f0000010.jpg")
    _img(tmp_path / "bounding_box_test" / "0005_c2_f0000011.jpg")
    _img(tmp_path / "bounding_box_test" / "0000_c4_f0000012.jpg")
    fields = ["backpack", "bag", "handbag", "boots", "gender", "hat", "shoes", "top",
              *[f"down{c}" for c in ("black", "white", "red", "gray", "blue", "green", "brown")],
              *[f"up{c}" for c in ("black", "white", "red", "purple", "gray", "blue", "green", "brown")]]
    ones = {f: [1, 1] for f in fields}
    train = {**ones, "gender": [2, 1], "top": [2, 1], "boots": [1, 2], "upred": [2, 1], "downblue": [1, 2],
             "backpack": [2, 1]}
    test = {**{f: [1] for f in fields}, "shoes": [2], "upbrown": [2], "downbrown": [2], "hat": [2]}
    mat = {"duke_attribute": {"train": _duke_struct([1, 2], fields, train),
                              "test": _duke_struct([5], fields[::-1], test)}}
    scipy.io.savemat(str(tmp_path / "duke_attribute.mat"), mat)
    d = build_dataset("dukemtmc", tmp_path)
    assert d.schema is DUKEMTMC
    assert DUKEMTMC.num_groups == 10
    assert sum(len(g.classes) or 1 for g in DUKEMTMC.groups) == 8 + 8 + 7  # 23 annotated fields
    # groups: female, long_top, hat, backpack, bag, handbag, upper_color, boots, light_shoes, lower_color
    red = DUKEMTMC.groups[6].classes.index("red")
    assert _by_pid(d.train)[1].attrs.tolist() == [1, 1, 0, 1, 0, 0, red, 0, 0, -1]
    assert _by_pid(d.train)[2].attrs.tolist() == [0, 0, 0, 0, 0, 0, -1, 1, 0, 1]
    brown_up, brown_low = DUKEMTMC.groups[6].classes.index("brown"), DUKEMTMC.groups[9].classes.index("brown")
    assert d.query[0].attrs.tolist() == [0, 0, 1, 0, 0, 0, brown_up, 0, 1, brown_low]
    assert _by_pid(d.gallery)[0].attrs.tolist() == [-1] * 10  # distractor: no labels
    with pytest.raises(UserError, match="lacks field"):
        scipy.io.savemat(str(tmp_path / "bad.mat"), {"duke_attribute": {
            "train": _duke_struct([1], ["gender"], {"gender": [1]}), "test": _duke_struct([5], ["gender"], {"gender": [1]})}})
        build_dataset("dukemtmc", tmp_path, attributes=str(tmp_path / "bad.mat"))


# ---- VIPeR ------------------------------------------------------------------------------------
def test_viper_split_protocol():
    root = shared_path("data", "peta", "VIPeR")
    d = build_dataset("viper", root, split=0)
    train_ids, q_ids, g_ids = ({s.pid for s in x} for x in (d.train, d.query, d.gallery))
    assert (len(train_ids), len(q_ids), len(d.train), len(d.query), len(d.gallery)) == (316, 316, 632, 316, 316)
    assert train_ids.isdisjoint(q_ids)
    assert q_ids == g_ids
    assert {s.camid for s in d.query} == {1}
    assert {s.camid for s in d.gallery} == {2}
    assert d.schema is VIPER
    assert VIPER.num_groups == 19
    # Label.txt "806 ... lowerBodyCasual lowerBodyTrousers personalLess30 personalMale upperBodyCasual
    # upperBodyLogo upperBodyShortSleeve upperBodyTshirt hairShort footwearSneakers carryingNothing ..."
    s806 = next(s for s in d.train + d.query + d.gallery if s.pid == 806)
    expected = {"personalLess30", "upperBodyCasual", "upperBodyTshirt", "lowerBodyCasual",
                "lowerBodyTrousers", "footwearSneakers"}
    assert s806.attrs.tolist() == [int(g.name in expected) for g in VIPER.groups]
    again = build_dataset("viper", root.parent, split=0)  # the PETA folder works too
    assert [s.path for s in again.train] == [s.path for s in d.train]
    other = build_dataset("viper", root, split=1)
    assert {s.pid for s in other.train} != train_ids
    with pytest.raises(UserError, match="split must be in 0..9"):
        build_dataset("viper", root, split=10)


# ---- PETA -------------------------------------------------------------------------------------
def test_peta_subsets_and_labels():
    root = shared_path("data", "peta")
    d = build_dataset("peta", root, subsets="GRID,SARC3D")
    assert d.info["subsets"] == ["GRID", "SARC3D"]
    assert len(d.train) == 1275 + 200
    assert {s.pid // 100_000 for s in d.train} == {1, 2}  # pids unique per subset
    assert len({s.pid for s in d.train}) == 1025 + 50
    # GRID 0989: "upperBodyBlack upperBodyWhite ... hairYellow footwearBlack ... personalFemale ..."
    s = next(x for x in d.train if x.pid == 100_000 + 989)
    names = d.schema.group_names
    assert s.attrs[names.index("personalFemale")] == 1
    assert s.attrs[names.index("personalMale")] == 0
    assert s.attrs[names.index("upperBodyColor")] == 0  # black, the first colour listed
    assert s.attrs[names.index("hairColor")] == d.schema.groups[names.index("hairColor")].classes.index("yellow")
    assert s.camid == 100 + int(Path(s.path).name.split("_")[1])  # GRID camera from the file name
    full = build_dataset("peta", root)
    assert "VIPeR" not in full.info["subsets"]
    assert len(full.info["subsets"]) == 7
    with pytest.raises(UserError, match="unknown subset"):
        build_dataset("peta", root, subsets=["NOPE"])
    multi = build_dataset("peta", root, subsets=["GRID", "SARC3D"], min_images=2)
    assert len(multi.train) == 1275 + 200 - 775
    assert len({s.pid for s in multi.train}) == 250 + 50
    single = build_dataset("peta", root / "SARC3D")
    assert len(single.train) == 200
    assert len({s.pid for s in single.train}) == 50


# ---- MARS -------------------------------------------------------------------------------------
def test_mars_mini_tracklets():
    root = shared_path("data", "mars-mini")
    d = build_dataset("mars", root, test_folder="bbox_train")
    assert len(d.train) == 1719
    assert d.num_train_pids == 16
    keys = {}
    for s in d.train:
        name = Path(s.path).name  # PPPPCcTttttFfff.jpg
        keys.setdefault(s.tracklet, set()).add((int(name[:4]), int(name[5]), int(name[7:11])))
    assert len(keys) == 32
    assert all(len(v) == 1 for v in keys.values())
    q_tr, g_tr = {s.tracklet for s in d.query}, {s.tracklet for s in d.gallery}
    assert len(q_tr) == 4
    assert {s.pid for s in d.query} == {13, 21, 23, 35}
    assert q_tr.isdisjoint(g_tr)
    for s in d.query:  # each query has a match in another camera
        assert any(g.pid == s.pid and g.camid != s.camid for g in d.gallery)
    small = build_dataset("mars", root, test_folder="bbox_train", max_per_tracklet=5)
    assert len(small.train) == 32 * 5
    assert len(small.query) + len(small.gallery) == 32 * 5
    auto = build_dataset("mars", root)  # no bbox_test: the protocol falls back to bbox_train
    assert [s.path for s in auto.query] == [s.path for s in d.query]
    with pytest.raises(UserError, match="test folder .* not found"):
        build_dataset("mars", root, test_folder="bbox_test")
    with pytest.raises(UserError, match="neither bbox_train"):
        build_dataset("mars", root / "bbox_train")


def test_mars_official_protocol_generated(tmp_path):
    names = ["0001C1T0001F001.jpg", "0001C1T0001F002.jpg", "0001C2T0002F001.jpg",
             "0002C1T0001F001.jpg", "0002C3T0002F001.jpg", "0002C3T0002F002.jpg"]
    for n in names:
        _img(tmp_path / "bbox_test" / n[:4] / n)
    _img(tmp_path / "bbox_train" / "0009" / "0009C1T0001F001.jpg")
    (tmp_path / "info").mkdir()
    (tmp_path / "info" / "test_name.txt").write_text("\n".join(names) + "\n")
    tracks = np.array([[1, 2, 1, 1], [3, 3, 1, 2], [4, 4, 2, 1], [5, 6, 2, 3]])  # start, end, pid, cam
    scipy.io.savemat(str(tmp_path / "info" / "tracks_test_info.mat"), {"track_test_info": tracks})
    scipy.io.savemat(str(tmp_path / "info" / "query_IDX.mat"), {"query_IDX": np.array([[1, 3]])})
    d = build_dataset("mars", tmp_path)
    assert d.info["protocol"] == "official"
    assert len(d.train) == 1
    assert d.train[0].tracklet == 0
    assert [Path(s.path).name for s in d.query] == [names[0], names[1], names[3]]
    assert [(s.pid, s.camid, s.tracklet) for s in d.gallery] == [(1, 2, 2), (2, 3, 4), (2, 3, 4)]
    assert {s.tracklet for s in d.query} == {1, 3}


# ---- folder layout (generated) ------------------------------------------------------------------
def test_folder_layout_with_attributes_csv(tmp_path):
    for name in ("1_c1_a.jpg", "1_c2_b.png", "2_c1_x.jpg"):
        _img(tmp_path / "train" / name)
    _img(tmp_path / "query" / "3_c1_q.jpg")
    _img(tmp_path / "gallery" / "3_c2_g.jpg")
    _img(tmp_path / "gallery" / "-1_c2_junk.jpg")
    (tmp_path / "attributes.csv").write_text(
        "pid,female,hat@upper,upper_color@upper\n1,1,0,red\n2,0,,blue\n3,-1,1,red\n")
    d = build_dataset("folder", tmp_path)
    assert [g.name for g in d.schema.groups] == ["female", "hat", "upper_color"]
    assert [g.part for g in d.schema.groups] == ["global", "upper", "upper"]
    assert d.schema.groups[2].classes == ("blue", "red")
    assert _by_pid(d.train)[1].attrs.tolist() == [1, 0, 1]
    assert _by_pid(d.train)[2].attrs.tolist() == [0, -1, 0]
    assert d.query[0].attrs.tolist() == [-1, 1, 1]
    assert (d.query[0].pid, d.query[0].camid) == (3, 1)
    assert _by_pid(d.gallery)[-1].attrs.tolist() == [-1, -1, -1]
    (tmp_path / "attributes.csv").write_text("id,female\n1,1\n")
    with pytest.raises(UserError, match="header 'pid"):
        build_dataset("folder", tmp_path)


def test_folder_layout_errors(tmp_path):
    with pytest.raises(UserError, match="needs a train/ folder"):
        build_dataset("folder", tmp_path)
    _img(tmp_path / "query" / "1_c1_a.jpg")
    _img(tmp_path / "train" / "1_c1_a.jpg")
    with pytest.raises(UserError, match="has query/ but not gallery/"):
        build_dataset("folder", tmp_path)
    with pytest.raises(UserError, match="data root folder not found"):
        build_dataset("folder", tmp_path / "nope")

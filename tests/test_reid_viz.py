"""pipeline.outputs.reid_viz: a toy gallery with a known ranking -> pictures with the right tiles and borders."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from conftest import shared_path
from pipeline.outputs import draw
from pipeline.outputs.reid_viz import attribute_items, select_queries, write_reid_visualizations
from reid.data.base import Sample
from reid.metrics import first_match_ranks
from reid.schema import AttributeGroup, AttributeSchema

TW, GAP, M, TITLE_H = 64 + 2 * draw.BORDER, 6, 6, draw.LINE_H + 4


def tile_x(i):
    """x of gallery tile i (0-based) in a ranked_row picture (see draw.ranked_row)."""
    return M + (i + 1) * (TW + GAP) + 3 * GAP


def make_image(tmp_path, name, bgr):
    img = np.zeros((128, 64, 3), np.uint8)
    img[:] = bgr
    path = tmp_path / f"{name}.png"
    cv2.imwrite(str(path), img)
    return str(path)


@pytest.fixture
def toy(tmp_path):
    """1 query (id 1, cam 0); gallery of 5 with distances chosen so the kept ranking is g0, g1, g4."""
    colours = [(0, 0, 90), (0, 90, 0), (90, 0, 0), (90, 90, 0), (0, 90, 90)]
    gallery = [Sample(make_image(tmp_path, f"g{i}", c), pid, cam)
               for i, (c, pid, cam) in enumerate(zip(colours, [2, 1, 1, -1, 3], [1, 1, 0, 1, 1]))]
    query = [Sample(make_image(tmp_path, "q0", (40, 40, 40)), 1, 0)]
    # g2: same id + same camera -> not shown; g3: junk -> not shown
    distmat = np.array([[0.1, 0.2, 0.05, 0.01, 0.3]])
    return query, gallery, distmat, colours


def test_first_match_ranks_follow_market_protocol():
    d = np.array([[0.1, 0.2, 0.05, 0.01, 0.3],     # kept order g0(2), g1(1) -> rank 2
                  [0.9, 0.8, 0.7, 0.6, 0.5],       # id 3: g4 first -> rank 1
                  [0.1, 0.1, 0.1, 0.1, 0.1]])      # id 5 absent -> 0
    ranks = first_match_ranks(d, [1, 3, 5], [2, 1, 1, -1, 3], [0, 0, 0], [1, 1, 0, 1, 1], chunk_size=2)
    assert ranks.tolist() == [2, 1, 0]


def test_select_queries_seeded_plus_worst():
    ranks = np.array([1, 1, 9, 0, 1, 4, 1, 1])
    a = select_queries(ranks, 2, 2, seed=3)
    assert a == select_queries(ranks, 2, 2, seed=3)
    random_part = [i for i, r in a if r == "random"]
    worst_part = [i for i, r in a if r == "worst"]
    assert len(random_part) == 2
    assert 3 not in random_part  # no query without a match
    expected_worst = [i for i in (2, 5, 0, 1, 4, 6, 7) if i not in random_part][:2]
    assert worst_part == expected_worst


def test_ranked_list_picture_has_known_tiles_and_borders(tmp_path, toy):
    query, gallery, distmat, colours = toy
    out = tmp_path / "viz"
    index = write_reid_visualizations(out, distmat, query, gallery, num_queries=1, topk=3, seed=0)
    png = out / "ranked" / "q00000.png"
    img = cv2.imread(str(png))
    # 1 query + 3 kept gallery tiles; caption: rank, distance, id line (3 lines) under the tile
    assert img.shape == (2 * M + TITLE_H + 136 + 3 * draw.LINE_H + 4, 2 * M + 4 * TW + 6 * GAP, 3)
    y = M + TITLE_H + 60
    assert tuple(img[y, M]) == draw.BLUE
    for i, (g, col) in enumerate([(0, draw.RED), (1, draw.GREEN), (4, draw.RED)]):
        assert tuple(img[y, tile_x(i)]) == col, f"border of tile {i}"
        assert tuple(img[y, tile_x(i) + TW // 2]) == colours[g], f"tile {i} should show gallery {g}"
    text = index.read_text()
    assert "q00000.png" in text
    assert '<td class="rank">2</td>' in text  # rank of first true match
    assert "attribute pictures skipped" in text
    assert not (out / "attributes").exists()


def test_attribute_items_readable_and_marked():
    schema = AttributeSchema("toy", (AttributeGroup("female"), AttributeGroup("hat"),
                                     AttributeGroup("upper", "upper", ("white", "red", "black"))))
    probs = np.array([0.9, 0.2, 0.1, 0.7, 0.2])                    # female yes, hat no, upper red
    items = attribute_items(probs, np.array([1, 1, -1]), schema)
    assert [it.text for it in items] == ["female", "no hat", "upper: red"]
    assert np.allclose([it.prob for it in items], [0.9, 0.8, 0.7])
    assert [it.wrong for it in items] == [False, True, None]
    plain = attribute_items(np.array([0.3]), np.array([0]), names=["bag"])
    assert plain[0].text == "no bag"
    assert plain[0].wrong is False


def test_attribute_pictures_mark_the_wrong_attribute(tmp_path, toy):
    query, gallery, distmat, _ = toy
    schema = AttributeSchema("toy", (AttributeGroup("female"), AttributeGroup("hat")))
    probs = np.tile([[0.9, 0.2]], (len(gallery), 1))                # (G, 2): female, no hat
    targets = np.tile([[1, 1]], (len(gallery), 1))                   # hat is wrong everywhere
    out = tmp_path / "viz"
    index = write_reid_visualizations(out, distmat, query, gallery, num_queries=2, topk=3, seed=0,
                                      attr_probs=probs, attr_targets=targets, schema=schema.to_dict())
    pngs = sorted((out / "attributes").glob("g*.png"))
    assert len(pngs) == 2
    img = cv2.imread(str(pngs[0]))
    col_x = M + 130 + M
    y_row = M + TITLE_H + 3 + (draw.LINE_H + 4) * np.arange(2) + 8
    assert tuple(img[y_row[1], col_x + 1]) == draw.RED              # "no hat" boxed red
    assert tuple(img[y_row[0], col_x + 1]) == draw.WHITE            # "female" is right
    assert img.shape[0] == 2 * M + TITLE_H + 258
    assert "1/2 wrong" in index.read_text()


def test_rejects_distmat_of_wrong_shape(tmp_path, toy):
    query, gallery, distmat, _ = toy
    with pytest.raises(ValueError, match="does not match"):
        write_reid_visualizations(tmp_path, distmat[:, :3], query, gallery)


def test_real_viper_images(tmp_path):
    root = shared_path("data", "peta", "VIPeR", "archive")
    ids = sorted({p.name.split("_")[0] for p in root.glob("*_1.png")})[:6]
    query = [Sample(str(next(root.glob(f"{i}_*_1.png"))), int(i), 1) for i in ids]
    gallery = [Sample(str(next(root.glob(f"{i}_*_2.png"))), int(i), 2) for i in ids]
    # distance = 0 for the identity two places to the right, 0.5 for the true match: rank 2
    d = np.full((6, 6), 1.0)
    d[np.arange(6), np.arange(6)] = 0.5
    d[np.arange(6), (np.arange(6) + 2) % 6] = 0.0
    index = write_reid_visualizations(tmp_path, d, query, gallery, num_queries=2, topk=4, seed=1)
    pngs = sorted((tmp_path / "ranked").glob("*.png"))
    assert len(pngs) == 3                                           # 2 seeded + 1 worst
    img = cv2.imread(str(pngs[0]))
    y = M + TITLE_H + 60
    assert [tuple(img[y, tile_x(i)]) for i in range(4)] == [draw.RED, draw.GREEN, draw.RED, draw.RED]
    assert index.read_text().count('<td class="rank">2</td>') == 3


def test_first_true_match_beyond_topk_is_appended(tmp_path, toy):
    query, gallery, distmat, colours = toy
    write_reid_visualizations(tmp_path, distmat, query, gallery, num_queries=1, topk=1, seed=0)
    img = cv2.imread(str(tmp_path / "ranked" / "q00000.png"))
    assert img.shape[1] == 2 * M + 3 * TW + 5 * GAP                 # query + top-1 + the rank-2 match
    y = M + TITLE_H + 60
    assert tuple(img[y, tile_x(0)]) == draw.RED
    assert tuple(img[y, tile_x(1)]) == draw.GREEN
    assert tuple(img[y, tile_x(1) + TW // 2]) == colours[1]


def test_far_first_match_is_appended_after_a_gap(tmp_path, toy):
    query, gallery, distmat, colours = toy
    d = distmat.copy()
    d[0, 1] = 0.9                                                   # true match now last: rank 3
    write_reid_visualizations(tmp_path, d, query, gallery, num_queries=1, topk=1, seed=0)
    img = cv2.imread(str(tmp_path / "ranked" / "q00000.png"))
    assert img.shape[1] == 2 * M + 3 * TW + 5 * GAP + 4 * GAP        # plus the ".." spacer
    y = M + TITLE_H + 60
    x = tile_x(1) + 4 * GAP
    assert tuple(img[y, x]) == draw.GREEN
    assert tuple(img[y, x + TW // 2]) == colours[1]
    assert tuple(img[y, tile_x(1)]) == draw.WHITE


def test_schema_that_does_not_fit_the_model_falls_back_to_plain_columns(tmp_path, toy):
    query, gallery, distmat, _ = toy
    schema = AttributeSchema("other", (AttributeGroup("female"),))    # 1 output, model has 2
    index = write_reid_visualizations(tmp_path, distmat, query, gallery, num_queries=1,
                                      attr_probs=np.full((len(gallery), 2), 0.9), attr_names=("a", "b"),
                                      schema=schema)
    assert len(list((tmp_path / "attributes").glob("*.png"))) == 1
    assert "no ground truth" in index.read_text()

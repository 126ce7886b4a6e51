"""pipeline.outputs.draw: pixel checks on tiny hand-built images (sizes, border colours, placement)."""
from __future__ import annotations

import numpy as np
import pytest

from pipeline.outputs import draw


def solid(h, w, bgr):
    img = np.zeros((h, w, 3), np.uint8)
    img[:] = bgr
    return img


def test_as_bgr_converts_gray_and_bgra_and_rejects_bad_shapes():
    gray = np.full((4, 5), 7, np.uint8)
    assert draw.as_bgr(gray).shape == (4, 5, 3)
    assert (draw.as_bgr(gray) == 7).all()
    bgra = np.zeros((4, 5, 4), np.uint8); bgra[..., 2] = 9; bgra[..., 3] = 200
    out = draw.as_bgr(bgra)
    assert out.shape == (4, 5, 3)
    assert (out[..., 2] == 9).all()
    assert (out[..., :2] == 0).all()
    with pytest.raises(ValueError, match="expected an image"):
        draw.as_bgr(np.zeros((0, 5, 3), np.uint8))


def test_fit_keeps_aspect_ratio_and_centres():
    out = draw.fit(solid(50, 50, (0, 0, 0)), size=(128, 64))   # -> 64x64 black, rows 32..95
    assert out.shape == (128, 64, 3)
    assert (out[32:96] == 0).all()
    assert (out[:32] == 255).all()
    assert (out[96:] == 255).all()


def test_bordered_has_border_colour_all_around_and_image_inside():
    img = solid(256, 128, (10, 20, 30))
    out = draw.bordered(img, draw.GREEN, size=(128, 64), thickness=4)
    assert out.shape == (136, 72, 3)
    for y, x in [(0, 0), (0, 71), (135, 0), (135, 71), (3, 36), (68, 3), (68, 68), (132, 36)]:
        assert tuple(out[y, x]) == draw.GREEN, (y, x)
    assert (out[4:132, 4:68] == (10, 20, 30)).all()


def test_ranked_row_layout_and_colours():
    q = solid(128, 64, (50, 50, 50))
    gal = [solid(128, 64, c) for c in [(1, 2, 3), (4, 5, 6), (7, 8, 9)]]
    out = draw.ranked_row(q, gal, [True, False, True], [0.1, 0.25, 0.5], title="toy")
    t, tw, gap, m, title_h = draw.BORDER, 64 + 2 * draw.BORDER, 6, 6, draw.LINE_H + 4
    # width: query + spacer(2*gap) + 3 tiles, 4 gaps, 2 margins; height: title + tile + 2 caption lines (rank, distance)
    assert out.shape == (2 * m + title_h + 136 + 2 * draw.LINE_H + 4, 2 * m + 4 * tw + 2 * gap + 4 * gap, 3)
    y = m + title_h + 60
    assert tuple(out[y, m + 1]) == draw.BLUE
    expected = [draw.GREEN, draw.RED, draw.GREEN]
    for i, (col, img) in enumerate(zip(expected, gal)):
        x0 = m + (i + 1) * (tw + gap) + 3 * gap
        assert tuple(out[y, x0]) == col and tuple(out[y, x0 + tw - 1]) == col, i
        assert tuple(out[y, x0 + t + 10]) == tuple(img[0, 0]), i      # the right image is inside
        caption = out[m + title_h + 136:m + title_h + 136 + draw.LINE_H, x0:x0 + tw]
        red_ink = (caption[..., 2] > 150) & (caption[..., 1] < 100)
        green_ink = (caption[..., 1] > 120) & (caption[..., 2] < 100)
        assert (red_ink.any() if col == draw.RED else green_ink.any()), f"rank caption colour, tile {i}"


def test_ranked_row_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="differ in length"):
        draw.ranked_row(solid(8, 4, 0), [solid(8, 4, 0)], [True, False], [0.1])


def test_attribute_panel_marks_wrong_items_in_red_boxes():
    items = [draw.AttrItem("female", 0.93, False), draw.AttrItem("no hat", 0.82, True),
             draw.AttrItem("backpack", 0.6, None)]
    out = draw.attribute_panel(solid(256, 128, (0, 0, 0)), items, size=(256, 128), text_width=200)
    m, line_h = 6, draw.LINE_H + 4
    assert out.shape == (2 * m + 258, 2 * m + 130 + m + 200, 3)
    col_x = m + 130 + m
    y_mid = [m + 3 + i * line_h + 8 for i in range(3)]
    assert tuple(out[y_mid[1], col_x + 1]) == draw.RED           # box edge around the wrong item
    assert tuple(out[y_mid[0], col_x + 1]) == draw.WHITE          # no box around the correct one
    assert tuple(out[y_mid[2], col_x + 1]) == draw.WHITE
    row0 = out[m + 3:m + 3 + line_h, col_x + 4:col_x + 200]
    assert ((row0[..., 1] > 120) & (row0[..., 2] < 100)).any()     # correct -> green text
    assert (out[m + 1:m + 257, m + 1:m + 129] == 0).all()          # the crop sits left


def test_attribute_panel_wraps_into_columns():
    items = [draw.AttrItem(f"a{i}", 0.5) for i in range(30)]
    out = draw.attribute_panel(solid(64, 32, 0), items, size=(256, 128), text_width=100, max_rows=24)
    assert out.shape[1] == 2 * 6 + 130 + 2 * (6 + 100)
    assert out.shape[0] == 2 * 6 + 24 * (draw.LINE_H + 4) + 6


def test_identity_crops_one_row_per_camera():
    crops = {"cam1": [solid(100, 40, (9, 9, 9))] * 3, "cam2": [solid(100, 40, (9, 9, 9))]}
    out = draw.identity_crops(crops, colour=(255, 0, 255), size=(64, 32), thickness=2,
                              label_width=50, gap=4, margin=4)
    tile_w, tile_h = 36, 68
    assert out.shape == (2 * 4 + 2 * tile_h + 4, 2 * 4 + 50 + 3 * (tile_w + 4), 3)
    for row in range(2):
        y = 4 + row * (tile_h + 4) + 30
        assert tuple(out[y, 4 + 50 + 4]) == (255, 0, 255)       # first crop's left border
    # camera 2 has one crop: the second tile position of row 2 is background
    assert tuple(out[4 + tile_h + 4 + 30, 4 + 50 + 4 + tile_w + 4]) == draw.WHITE


def test_id_colours_are_stable_and_distinct():
    cols = [draw.id_colour(i) for i in range(1, 21)]
    assert cols == [draw.id_colour(i) for i in range(1, 21)]
    assert len(set(cols)) == 20
    assert draw.hex_colour((0, 128, 255)) == "#ff8000"


def test_draw_tracks_draws_in_id_colour_without_mutating_input():
    frame = np.zeros((100, 100, 3), np.uint8)
    out = draw.draw_tracks(frame, np.array([[20, 40, 60, 90]]), np.array([7]))
    assert (frame == 0).all()
    assert tuple(out[70, 20]) == draw.id_colour(7)
    assert tuple(out[90, 40]) == draw.id_colour(7)
    assert tuple(out[70, 40]) == (0, 0, 0)


def test_write_image_roundtrip_png(tmp_path):
    import cv2
    img = np.random.default_rng(0).integers(0, 255, (20, 10, 3), dtype=np.uint8)
    p = draw.write_image(tmp_path / "sub" / "x.png", img)
    assert (cv2.imread(str(p)) == img).all()
    assert [f.name for f in (tmp_path / "sub").iterdir()] == ["x.png"]   # no temp file left

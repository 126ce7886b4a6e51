"""The one drawing module: pictures of ReID results and of run identities.

Pure functions on numpy BGR uint8 images (OpenCV conventions): a thumbnail with a coloured
border, a tile with caption lines under it, rows and columns of tiles, a ranked list (query
then its top-k gallery matches, as in the paper's Fig. 3), an attribute panel (a crop beside
its predicted attributes, wrong ones marked, as in Fig. 4), a row of crops per camera for one
identity (run report), and boxes with ids on a video frame. Nothing here reads data sets or
models; callers pass images and numbers in.
"""
from __future__ import annotations

import colorsys
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import cv2
import numpy as np

from core.atomic import atomic_write_bytes

# Colours are BGR.
GREEN = (0, 170, 0)       # same identity as the query / correct
RED = (0, 0, 220)         # different identity / wrong prediction
BLUE = (200, 110, 0)      # the query itself
WHITE = (255, 255, 255)
GREY = (128, 128, 128)
DARK = (40, 40, 40)

FONT = cv2.FONT_HERSHEY_SIMPLEX
FONT_SCALE = 0.4
LINE_H = 14               # pixels per caption line at FONT_SCALE
TILE_SIZE = (128, 64)     # (h, w) of a thumbnail inside its border
BORDER = 4                # border thickness in pixels


@dataclass(frozen=True)
class AttrItem:
    """One line of an attribute panel: readable text, its probability, and whether it is wrong.

    ``wrong`` is None when there is no ground truth for this attribute.
    """
    text: str
    prob: float
    wrong: bool | None = None


def as_bgr(img: np.ndarray) -> np.ndarray:
    """Any uint8/float image (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) -> (H, W, 3) uint8 BGR."""
    a = np.asarray(img)
    if a.dtype != np.uint8:
        a = np.clip(a, 0, 255).astype(np.uint8)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4) or a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"expected an image (H, W[, 1|3|4]) with H, W > 0, got shape {a.shape}")
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    elif a.shape[2] == 4:
        a = a[:, :, :3]
    return np.ascontiguousarray(a)


def canvas(h: int, w: int, bg=WHITE) -> np.ndarray:
    """A (h, w, 3) uint8 image filled with ``bg``."""
    out = np.empty((max(h, 0), max(w, 0), 3), np.uint8)
    out[:] = bg
    return out


def fit(img: np.ndarray, size=TILE_SIZE, bg=WHITE) -> np.ndarray:
    """Resize keeping the aspect ratio and centre on a ``size`` = (h, w) canvas; (h, w, 3)."""
    img = as_bgr(img)
    h, w = size
    ih, iw = img.shape[:2]
    s = min(h / ih, w / iw)
    nh, nw = max(1, round(ih * s)), max(1, round(iw * s))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    small = cv2.resize(img, (nw, nh), interpolation=interp)
    out = canvas(h, w, bg)
    y0, x0 = (h - nh) // 2, (w - nw) // 2
    out[y0:y0 + nh, x0:x0 + nw] = small
    return out


def bordered(img: np.ndarray, colour, size=TILE_SIZE, thickness: int = BORDER) -> np.ndarray:
    """Thumbnail of ``size`` (h, w) inside a solid border: (h + 2t, w + 2t, 3)."""
    h, w = size
    t = int(thickness)
    out = canvas(h + 2 * t, w + 2 * t, colour)
    out[t:t + h, t:t + w] = fit(img, size)
    return out


def truncate_text(text: str, width: int, scale: float = FONT_SCALE) -> str:
    """Shorten ``text`` with '..' so that it fits ``width`` pixels."""
    if cv2.getTextSize(text, FONT, scale, 1)[0][0] <= width:
        return text
    while text and cv2.getTextSize(text + "..", FONT, scale, 1)[0][0] > width:
        text = text[:-1]
    return text + ".."


def text_block(lines: Sequence[str], width: int, colours=None, bg=WHITE, scale: float = FONT_SCALE,
               line_h: int = LINE_H) -> np.ndarray:
    """Lines of text, one under the other: (len(lines) * line_h + 4, width, 3)."""
    colours = list(colours) if colours is not None else [DARK] * len(lines)
    out = canvas(len(lines) * line_h + 4, width, bg)
    for i, (line, col) in enumerate(zip(lines, colours)):
        y = (i + 1) * line_h - 2
        cv2.putText(out, truncate_text(str(line), width - 4, scale), (2, y), FONT, scale, col, 1, cv2.LINE_AA)
    return out


def _stack(images: Sequence[np.ndarray], axis: int, gap: int, bg) -> np.ndarray:
    """Concatenate along ``axis`` (0 rows, 1 columns), aligned at the start, padded with ``bg``."""
    images = [as_bgr(im) for im in images]
    if not images:
        return canvas(1, 1, bg)
    size = [0, 0]
    size[axis] = sum(im.shape[axis] for im in images) + gap * (len(images) - 1)
    size[1 - axis] = max(im.shape[1 - axis] for im in images)
    out, pos = canvas(size[0], size[1], bg), 0
    for im in images:
        if axis == 0:
            out[pos:pos + im.shape[0], :im.shape[1]] = im
        else:
            out[:im.shape[0], pos:pos + im.shape[1]] = im
        pos += im.shape[axis] + gap
    return out


def vstack(images: Sequence[np.ndarray], gap: int = 0, bg=WHITE) -> np.ndarray:
    """Stack images top to bottom, left-aligned, padding narrower ones with ``bg``."""
    return _stack(images, 0, gap, bg)


def hstack(images: Sequence[np.ndarray], gap: int = 0, bg=WHITE) -> np.ndarray:
    """Place images left to right, top-aligned, padding shorter ones with ``bg``."""
    return _stack(images, 1, gap, bg)


def pad(img: np.ndarray, margin: int, bg=WHITE) -> np.ndarray:
    """Add a ``margin``-pixel frame of ``bg`` on every side."""
    img = as_bgr(img)
    out = canvas(img.shape[0] + 2 * margin, img.shape[1] + 2 * margin, bg)
    out[margin:margin + img.shape[0], margin:margin + img.shape[1]] = img
    return out


def captioned(tile: np.ndarray, lines: Sequence[str], colours=None) -> np.ndarray:
    """``tile`` with caption lines under it, same width: (h + text, w, 3)."""
    tile = as_bgr(tile)
    return vstack([tile, text_block(lines, tile.shape[1], colours)])


def ranked_row(query: np.ndarray, gallery: Sequence[np.ndarray], same_id: Sequence[bool],
               distances: Sequence[float], *, query_lines: Sequence[str] = ("query",),
               gallery_lines: Sequence[Sequence[str]] | None = None, title: str | None = None,
               ranks: Sequence[int] | None = None, size=TILE_SIZE, thickness: int = BORDER,
               gap: int = 6, margin: int = 6) -> np.ndarray:
    """The paper's Fig. 3 row: query (blue border) then ranked gallery tiles.

    Gallery tile i gets a green border when ``same_id[i]`` else red, and the caption
    "#<rank>" (``ranks[i]``, default i + 1) and "d=<distance>" (plus ``gallery_lines[i]``).
    Layout: the query tile starts at x = margin; gallery tile i (0-based) at x = margin + (i + 1) * (w + 2t + gap)
    + 3 * gap (+ 4 * gap after a jump in ``ranks``, marked ".."); all tiles at y = margin
    (+ LINE_H + 4 when a title is given).
    """
    if not (len(gallery) == len(same_id) == len(distances)):
        raise ValueError(f"gallery, same_id and distances differ in length: "
                         f"{len(gallery)}, {len(same_id)}, {len(distances)}")
    tiles = [captioned(bordered(query, BLUE, size, thickness), list(query_lines)), canvas(1, 2 * gap)]
    for i, (img, same, d) in enumerate(zip(gallery, same_id, distances)):
        colour = GREEN if same else RED
        rank = ranks[i] if ranks is not None else i + 1
        if i > 0 and ranks is not None and rank > ranks[i - 1] + 1:     # a jump down the list
            tiles.append(text_block(["", "", "", "", ".."], 3 * gap))
        lines = [f"#{rank}", f"d={float(d):.3f}"] + list(gallery_lines[i] if gallery_lines else [])
        tiles.append(captioned(bordered(img, colour, size, thickness), lines, [colour] + [DARK] * (len(lines) - 1)))
    row = hstack(tiles, gap=gap)
    if title:
        row = vstack([text_block([title], row.shape[1]), row])
    return pad(row, margin)


def attribute_panel(crop: np.ndarray, items: Sequence[AttrItem], *, title: str | None = None,
                    size=(256, 128), text_width: int = 230, max_rows: int = 24,
                    margin: int = 6) -> np.ndarray:
    """The paper's Fig. 4: a crop beside its predicted attributes with probabilities.

    Wrong predictions (``item.wrong is True``) are written in red inside a red box; correct
    ones (``False``) in green; unknown ground truth (``None``) in dark grey. More than
    ``max_rows`` items continue in further columns of ``text_width`` pixels.
    """
    tile = bordered(crop, GREY, size, 1)
    columns = [_attribute_column(items[i:i + max_rows], text_width, tile.shape[0])
               for i in range(0, max(len(items), 1), max_rows)]
    body = hstack([tile] + columns, gap=margin)
    if title:
        body = vstack([text_block([title], body.shape[1]), body])
    return pad(body, margin)


def _attribute_column(items: Sequence[AttrItem], width: int, min_h: int) -> np.ndarray:
    """One column of attribute lines: (max(len * (LINE_H + 4) + 6, min_h), width, 3)."""
    line_h = LINE_H + 4
    out = canvas(max(len(items) * line_h + 6, min_h), width)
    for i, it in enumerate(items):
        colour = RED if it.wrong else (GREEN if it.wrong is False else DARK)
        y0 = 3 + i * line_h
        text = truncate_text(f"{it.text} {float(it.prob):.2f}", width - 10)
        cv2.putText(out, text, (5, y0 + LINE_H - 1), FONT, FONT_SCALE, colour, 1, cv2.LINE_AA)
        if it.wrong:
            cv2.rectangle(out, (1, y0), (width - 2, y0 + line_h - 2), RED, 1)
    return out


def identity_crops(crops_by_camera: Mapping[str, Sequence[np.ndarray]], *, colour=GREY,
                   title: str | None = None, size=TILE_SIZE, thickness: int = 2,
                   label_width: int = 90, gap: int = 4, margin: int = 4) -> np.ndarray:
    """One identity of a run: a row of bordered crops per camera, the camera name on the left."""
    rows = []
    for cam, crops in crops_by_camera.items():
        label = text_block([str(cam)], label_width)
        tiles = [bordered(c, colour, size, thickness) for c in crops]
        if not tiles:
            tiles = [text_block(["(no crops)"], size[1] + 2 * thickness)]
        rows.append(hstack([label] + tiles, gap=gap))
    if not rows:
        rows = [text_block(["(no crops)"], label_width + size[1])]
    body = vstack(rows, gap=gap)
    if title:
        body = vstack([text_block([title], body.shape[1]), body])
    return pad(body, margin)


def id_colour(gid: int) -> tuple[int, int, int]:
    """A stable, well-separated BGR colour for an identity (golden-ratio hue steps)."""
    hue = (int(gid) * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 0.9)
    return (int(b * 255), int(g * 255), int(r * 255))


def hex_colour(bgr) -> str:
    """BGR tuple -> '#rrggbb' for HTML/SVG."""
    b, g, r = (int(v) for v in bgr)
    return f"#{r:02x}{g:02x}{b:02x}"


def draw_tracks(frame: np.ndarray, boxes: np.ndarray, ids: np.ndarray, labels: Sequence[str] | None = None,
                thickness: int = 2) -> np.ndarray:
    """Copy of ``frame`` with boxes (M, 4) xyxy drawn in their id's colour and labelled."""
    out = as_bgr(frame).copy()
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    ids = np.asarray(ids).reshape(-1)
    for k, (box, gid) in enumerate(zip(boxes, ids)):
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        col = id_colour(int(gid))
        cv2.rectangle(out, (x1, y1), (x2, y2), col, thickness)
        text = labels[k] if labels is not None else str(int(gid))
        (tw, th), _ = cv2.getTextSize(text, FONT, 0.5, 1)
        ty = max(y1, th + 4)
        cv2.rectangle(out, (x1, ty - th - 4), (x1 + tw + 4, ty), col, -1)
        cv2.putText(out, text, (x1 + 2, ty - 3), FONT, 0.5, WHITE, 1, cv2.LINE_AA)
    return out


def placeholder(size=TILE_SIZE, text: str = "missing") -> np.ndarray:
    """A grey tile with a word on it, for images that could not be read."""
    h, w = size
    out = canvas(h, w, (200, 200, 200))
    cv2.putText(out, truncate_text(text, w - 4), (2, h // 2), FONT, FONT_SCALE, DARK, 1, cv2.LINE_AA)
    return out


def read_image(path: str | os.PathLike, size=TILE_SIZE) -> np.ndarray:
    """``cv2.imread`` that returns a placeholder instead of None for unreadable files."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return img if img is not None else placeholder(size)


def encode_image(img: np.ndarray, ext: str = ".png", quality: int = 90) -> bytes:
    """Encode to PNG/JPEG bytes."""
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if ext.lower() in (".jpg", ".jpeg") else []
    ok, buf = cv2.imencode(ext, as_bgr(img), params)
    if not ok:
        raise ValueError(f"OpenCV could not encode an image as {ext}")
    return buf.tobytes()


def write_image(path: str | os.PathLike, img: np.ndarray, quality: int = 90) -> Path:
    """Atomically write an image; the format follows the extension (.png, .jpg)."""
    path = Path(path)
    return atomic_write_bytes(path, encode_image(img, path.suffix or ".png", quality))

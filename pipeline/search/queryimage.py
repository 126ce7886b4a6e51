"""A query photo -> one person crop -> its embedding with the ReID model the run/index was made with.

The person is, in this order: the ``--box x,y,w,h`` given; the whole image with ``--crop`` (a photo
that is already a person crop); else the largest person the detector finds. When the detector finds
nobody in the image as it is, it looks again in the image padded with a grey border: detectors often
miss a tight crop of a person (the person touches every edge), and a query photo often is one.
"""
from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Optional

import numpy as np

from core.errors import UserError

log = logging.getLogger(__name__)

MIN_PERSON_SCORE = 0.3          # detections below this do not count as "a person in the query image"
PAD = 1.0                       # border added on each side for the second look, as a fraction of the side
MIN_CROP_SIDE = 8               # pixels


def parse_box(text: str) -> tuple[float, float, float, float]:
    """``x,y,w,h`` (pixels, top-left corner and size) -> floats; UserError on anything else."""
    try:
        x, y, w, h = (float(v) for v in str(text).replace(" ", "").split(","))
    except ValueError:
        raise UserError(f"--box {text!r}: expected x,y,w,h in pixels, e.g. 120,40,60,170") from None
    if not all(math.isfinite(v) for v in (x, y, w, h)):
        raise UserError(f"--box {text!r}: x,y,w,h must be finite numbers of pixels, e.g. 120,40,60,170")
    if w <= 0 or h <= 0:
        raise UserError(f"--box {text!r}: width and height must be > 0")
    return x, y, w, h


def read_image(path) -> np.ndarray:
    import cv2

    p = Path(path)
    if not p.is_file():
        raise UserError(f"query image not found: {p}")
    img = cv2.imread(str(p), cv2.IMREAD_COLOR)
    if img is None or img.size == 0:
        raise UserError(f"cannot read the query image {p}: not an image file OpenCV can decode (jpg, png, ...)")
    return img


def crop_box(img: np.ndarray, box: tuple[float, float, float, float], source: str) -> np.ndarray:
    h_img, w_img = img.shape[:2]
    x, y, w, h = box
    x1, y1 = max(int(round(x)), 0), max(int(round(y)), 0)
    x2, y2 = min(int(round(x + w)), w_img), min(int(round(y + h)), h_img)
    if x2 - x1 < MIN_CROP_SIDE or y2 - y1 < MIN_CROP_SIDE:
        raise UserError(f"the box {box} ({source}) is (nearly) outside the {w_img}x{h_img} query image")
    return img[y1:y2, x1:x2]


def _largest(dets: np.ndarray) -> Optional[np.ndarray]:
    dets = np.asarray(dets, np.float32).reshape(-1, 6)
    dets = dets[(dets[:, 5] == 0) & (dets[:, 4] >= MIN_PERSON_SCORE)]
    if not len(dets):
        return None
    return dets[int(np.argmax((dets[:, 2] - dets[:, 0]) * (dets[:, 3] - dets[:, 1])))]


def largest_person(img: np.ndarray, detector) -> Optional[tuple[float, float, float, float]]:
    """The largest person box (x, y, w, h) in ``img`` scoring >= MIN_PERSON_SCORE, or None; looks
    again in the padded image when the plain one has nobody."""
    h, w = img.shape[:2]
    best = _largest(detector([img])[0])
    px = py = 0
    if best is None:
        px, py = int(round(w * PAD)), int(round(h * PAD))
        best = _largest(detector([np.pad(img, ((py, py), (px, px), (0, 0)), constant_values=114)])[0])
    if best is None:
        return None
    x1, x2 = np.clip(best[[0, 2]] - px, 0, w)
    y1, y2 = np.clip(best[[1, 3]] - py, 0, h)
    return float(x1), float(y1), float(x2 - x1), float(y2 - y1)


def build_detector(model: str, threads: int = 1):
    """The run's detector (``detector.model`` of run.json, or ``default``) on the CPU."""
    from pipeline.run.config import DetectorConfig
    from pipeline.run.detectors import build_detector as build

    return build(DetectorConfig(model=str(model), device="cpu", batch=1, threads=threads))


def person_crop(path, box: Optional[str] = None, whole: bool = False, detector_model: str = "default",
                detector=None) -> tuple[np.ndarray, tuple[float, float, float, float], str]:
    """(crop, box x,y,w,h, how it was found) of the query person in an image file."""
    img = read_image(path)
    h, w = img.shape[:2]
    if box is not None:
        b = parse_box(box)
        return crop_box(img, b, "--box"), b, "box"
    if whole:
        return img, (0.0, 0.0, float(w), float(h)), "whole image"
    det = detector if detector is not None else build_detector(detector_model)
    b = largest_person(img, det)
    if b is None:
        raise UserError(f"no person found in {path} (detector {detector_model}, score >= {MIN_PERSON_SCORE}); "
                        "give the person's box with --box x,y,w,h, or --crop if the image is a crop of one person")
    log.info("query person at x=%.0f y=%.0f w=%.0f h=%.0f in %s", *b, path)
    return crop_box(img, b, "detected"), b, "detected"


def embed_crop(encoder, crop: np.ndarray) -> np.ndarray:
    """(D,) L2-normalised embedding of one BGR crop."""
    feats, _ = encoder.embed([crop])
    return feats[0]

"""Sharpening of blurred cameras before detection and ReID (``video.sharpen``).

A soft lens, a camera out of focus or a recording upscaled from a lower resolution hands the detector
people without edges: on the bench's blurred camera (Gaussian sigma 2.5) the embedded detector finds 59 %
of the people at score 0.2 against 92 % on the same camera unblurred, and the ReID model puts a person's
blurred views far from their sharp ones. An unsharp mask (``frame + a * (frame - gaussian(frame))``)
gives most of it back (85 % found), but on a sharp camera it only adds false detections, so each camera
is sharpened by how blurred it is.

How blurred is read with the no-reference blur index of Crete et al. (2007, "The blur effect: perception
and estimation with a new no-reference perceptual blur metric"): blur the image once more along rows
(and along columns) and see how much of its local variation survives. A sharp image loses much of it
(index near 0.2-0.3 on the bench's real cameras), an image already blurred loses little (near 1). The
index is the median over ``SAMPLES`` frames spread over the whole video, so every run, chunk and resume of
one camera gets the same amount (like the colour gains of :mod:`pipeline.run.colour`).

``auto``: amount 0 up to the index ``video.sharpen_from``, rising linearly to ``MAX_AMOUNT`` over the
next ``RAMP``; a number: that amount on every camera; ``off``: none.
"""
from __future__ import annotations

import functools
from pathlib import Path

import cv2
import numpy as np

from pipeline.run.video import sample_frames

SAMPLES = 16           # frames the blur index is read from
TAPS = 9               # length of the re-blurring box filter (Crete et al.)
RAMP = 0.2             # blur index span over which the auto amount rises from 0 to MAX_AMOUNT
MAX_AMOUNT = 2.0       # strongest unsharp mask of ``auto``
SIGMA = 2.0            # Gaussian sigma (pixels) of the unsharp mask's blurred copy


def blur_index(image: np.ndarray) -> float:
    """Crete et al.'s blur index of one BGR or grey image: 0 sharp ... 1 blurred (the larger of the
    horizontal and vertical index)."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    grey = grey.astype(np.float32)
    box = np.full(TAPS, 1.0 / TAPS, np.float32)
    worst = 0.0
    for axis, kernel in ((0, box.reshape(-1, 1)), (1, box.reshape(1, -1))):
        again = cv2.filter2D(grey, -1, kernel, borderType=cv2.BORDER_REFLECT)
        d_image = np.abs(np.diff(grey, axis=axis))
        d_again = np.abs(np.diff(again, axis=axis))
        total = float(d_image.sum())
        if total <= 0:
            return 1.0                          # a flat image: nothing to sharpen either way
        lost = float(np.maximum(d_image - d_again, 0).sum())
        worst = max(worst, (total - lost) / total)
    return worst


@functools.lru_cache(maxsize=64)
def _camera_blur(path: str, size: int, mtime: float) -> float:
    frames = sample_frames(Path(path), SAMPLES)
    return float(np.median([blur_index(f) for f in frames])) if frames else 0.0


def camera_blur(path: str | Path) -> float:
    """The median blur index of frames spread over a video file or image folder (cached per file state)."""
    p = Path(path)
    st = p.stat()
    return _camera_blur(str(p.resolve()), st.st_size, st.st_mtime)


def auto_amount(index: float, start: float) -> float:
    """Unsharp-mask amount of ``auto`` for a camera with blur index ``index``."""
    return round(MAX_AMOUNT * float(np.clip((index - start) / RAMP, 0.0, 1.0)), 3)


def camera_amount(path: str | Path, setting, start: float) -> float:
    """The amount a camera is sharpened by under ``video.sharpen`` = ``setting`` (0: not at all)."""
    if setting == "off":
        return 0.0
    if setting == "auto":
        return auto_amount(camera_blur(path), start)
    return float(setting)


def sharpen(image: np.ndarray, amount: float) -> np.ndarray:
    """The BGR image with an unsharp mask of ``amount`` (sigma ``SIGMA``); unchanged for 0."""
    if amount <= 0:
        return image
    soft = cv2.GaussianBlur(image, (0, 0), SIGMA)
    return cv2.addWeighted(image, 1.0 + amount, soft, -amount, 0)

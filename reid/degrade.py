"""Person crops as a worse camera gives them: blur, compression, low resolution, noise, motion, low light.

:func:`degrade` is the training-time family of reid/trunk_tune.py: the crop is first brought to a
height a CCTV frame gives a person (70-160 px), then one or two of the kinds below are applied with
parameters in those pixels, drawn from wide ranges. It is not the bench's set of camera variants
(bench/footages.py): those are fixed strengths on whole frames, and they score what this learns.
"""
from __future__ import annotations

import cv2
import numpy as np

KINDS = ("blur", "jpeg", "lowres", "noise", "motion", "dark")
NATIVE_HEIGHT = (70.0, 160.0)       # px: the person's height in the frame the camera gives


def _blur(img, rng):
    return cv2.GaussianBlur(img, (0, 0), rng.uniform(0.8, 3.0))


def _lowres(img, rng):
    h, w = img.shape[:2]
    s = rng.uniform(0.25, 0.6)
    small = cv2.resize(img, (max(2, round(w * s)), max(2, round(h * s))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def _jpeg(img, rng):
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(rng.uniform(5, 35))])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else img


def _noisy(img, rng, gain: float, sigma: float):
    out = img.astype(np.float32) * gain + rng.normal(0.0, sigma, img.shape)
    return np.clip(out, 0, 255).astype(np.uint8)


def _motion(img, rng):
    n = int(rng.integers(5, 14))
    kern = np.zeros((n, n), np.float32)
    kern[n // 2] = 1.0 / n
    angle = rng.uniform(-30, 30) + (90 if rng.random() < 0.2 else 0)     # mostly horizontal pans
    rot = cv2.getRotationMatrix2D(((n - 1) / 2, (n - 1) / 2), angle, 1.0)
    kern = cv2.warpAffine(kern, rot, (n, n))
    return cv2.filter2D(img, -1, kern / max(float(kern.sum()), 1e-6))


_APPLY = {
    "blur": _blur,
    "jpeg": _jpeg,
    "lowres": _lowres,
    "noise": lambda img, rng: _noisy(img, rng, 1.0, rng.uniform(4, 18)),
    "motion": _motion,
    "dark": lambda img, rng: _noisy(img, rng, rng.uniform(0.3, 0.6), 3.0),
}


def degrade(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A BGR uint8 crop (any size) -> the same person as a worse camera shows them, at 70-160 px tall."""
    h, w = img.shape[:2]
    nh = int(rng.uniform(*NATIVE_HEIGHT))
    nw = max(8, round(w * nh / h))
    out = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA if nh < h else cv2.INTER_LINEAR)
    for kind in rng.choice(KINDS, size=int(rng.integers(1, 3)), replace=False):
        out = _APPLY[str(kind)](out, rng)
    return out

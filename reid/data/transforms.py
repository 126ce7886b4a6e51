"""Image transforms for ReID training and evaluation (paper: resize 384x128, flip, normalise).

Images are read as RGB uint8 ``(H, W, 3)`` numpy arrays; a transform returns a float32 tensor
``(3, h, w)``, resized with ``cv2.resize(..., INTER_LINEAR)`` and normalised with the ImageNet
mean/std. :func:`preprocess` is the deterministic part, shared with inference code so that
training and ``ReIDEncoder`` see the same pixels (pass ``bgr=True`` for OpenCV crops).

Randomness (flip, pad-and-crop, random erasing) uses torch's global generator, which a
``DataLoader`` seeds per worker from its base seed: seed torch once per epoch for reproducible runs.
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np
import torch

from core.errors import UserError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def read_image(path: str) -> np.ndarray:
    """RGB uint8 image (H, W, 3); a UserError names an unreadable file."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise UserError(f"cannot read image {path} (missing or not an image file)")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def preprocess(img: np.ndarray, input_size: Sequence[int], mean: Sequence[float] = IMAGENET_MEAN,
               std: Sequence[float] = IMAGENET_STD, bgr: bool = False) -> np.ndarray:
    """uint8 (H, W, 3) -> float32 (3, h, w) resized to ``input_size`` (h, w), normalised, RGB order."""
    return _normalised(img, input_size, mean, std, bgr).numpy()


def _normalised(img: np.ndarray, input_size: Sequence[int], mean: Sequence[float], std: Sequence[float],
                bgr: bool = False) -> torch.Tensor:
    """:func:`preprocess` as a tensor: ``(x / 255 - mean) / std`` computed as ``x * a + b``."""
    h, w = int(input_size[0]), int(input_size[1])
    if img.ndim != 3 or img.shape[2] != 3 or img.shape[0] == 0 or img.shape[1] == 0:
        raise ValueError(f"expected an (H, W, 3) image, got shape {img.shape}")
    r = cv2.resize(np.ascontiguousarray(img), (w, h), interpolation=cv2.INTER_LINEAR)  # (h, w, 3) uint8
    chw = r.transpose(2, 0, 1)[::-1] if bgr else r.transpose(2, 0, 1)  # (3, h, w) RGB
    std_t = torch.tensor(std, dtype=torch.float32)[:, None, None]
    a, b = 1.0 / (255.0 * std_t), -torch.tensor(mean, dtype=torch.float32)[:, None, None] / std_t
    return torch.from_numpy(np.ascontiguousarray(chw)).float().mul_(a).add_(b)  # (3, h, w) float32


class EvalTransform:
    """Deterministic: resize + normalise."""

    def __init__(self, input_size: Sequence[int] = (384, 128), mean: Sequence[float] = IMAGENET_MEAN,
                 std: Sequence[float] = IMAGENET_STD):
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.mean, self.std = tuple(mean), tuple(std)

    def __call__(self, img: np.ndarray) -> torch.Tensor:
        return _normalised(img, self.input_size, self.mean, self.std)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(input_size={self.input_size})"


class TrainTransform(EvalTransform):
    """Optional low-resolution simulation (prob ``low_resolution``: the image first shrunk to a random
    height in ``low_heights`` pixels, as a person far from a CCTV camera is), then resize + normalise,
    horizontal flip (prob ``flip``), optional zero-pad by ``pad`` pixels and random crop back to size,
    optional random erasing (prob ``random_erasing``, Zhong et al.)."""

    def __init__(self, input_size: Sequence[int] = (384, 128), mean: Sequence[float] = IMAGENET_MEAN,
                 std: Sequence[float] = IMAGENET_STD, flip: float = 0.5, pad: int = 0,
                 random_erasing: float = 0.0, low_resolution: float = 0.0,
                 low_heights: Sequence[int] = (40, 96)):
        super().__init__(input_size, mean, std)
        if not (0 <= flip <= 1 and 0 <= random_erasing <= 1 and 0 <= low_resolution <= 1 and pad >= 0):
            raise UserError(f"bad transform settings flip={flip}, pad={pad}, random_erasing={random_erasing}, "
                            f"low_resolution={low_resolution}: probabilities must be in [0, 1] and pad >= 0")
        lo, hi = (int(v) for v in low_heights)
        if not 8 <= lo <= hi:
            raise UserError(f"low-resolution heights {tuple(low_heights)}: need 8 <= low <= high pixels")
        self.flip, self.pad, self.random_erasing = float(flip), int(pad), float(random_erasing)
        self.low_resolution, self.low_heights = float(low_resolution), (lo, hi)

    def shrink(self, img: np.ndarray) -> np.ndarray:
        """With probability ``low_resolution``, ``img`` shrunk (area interpolation) to a random height in
        ``low_heights`` when it is taller; else ``img`` itself."""
        if self.low_resolution <= 0 or torch.rand(()) >= self.low_resolution:
            return img
        h, w = img.shape[:2]
        lo, hi = self.low_heights
        th = int(torch.randint(lo, hi + 1, ()))
        if th >= h:
            return img
        return cv2.resize(np.ascontiguousarray(img), (max(1, round(w * th / h)), th), interpolation=cv2.INTER_AREA)

    def __call__(self, img: np.ndarray) -> torch.Tensor:
        x = super().__call__(self.shrink(img))  # (3, h, w)
        if self.flip > 0 and torch.rand(()) < self.flip:
            x = torch.flip(x, dims=[2])
        if self.pad > 0:
            x = random_crop(torch.nn.functional.pad(x, [self.pad] * 4), self.input_size)
        if self.random_erasing > 0 and torch.rand(()) < self.random_erasing:
            x = random_erase(x)
        return x

    def __repr__(self) -> str:
        return (f"TrainTransform(input_size={self.input_size}, flip={self.flip}, pad={self.pad}, "
                f"random_erasing={self.random_erasing}, low_resolution={self.low_resolution}, "
                f"low_heights={self.low_heights})")


def random_crop(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Random (h, w) window of a (C, H, W) tensor."""
    h, w = size
    top = int(torch.randint(x.shape[1] - h + 1, ()))
    left = int(torch.randint(x.shape[2] - w + 1, ()))
    return x[:, top:top + h, left:left + w]


def random_erase(x: torch.Tensor, scale=(0.02, 0.4), ratio=(0.3, 3.33), attempts: int = 10) -> torch.Tensor:
    """Zero (= the mean after normalisation) a random rectangle of a (C, H, W) tensor; returns a copy."""
    _, h, w = x.shape
    area = h * w
    for _ in range(attempts):
        target = area * float(torch.empty(()).uniform_(*scale))
        aspect = float(torch.exp(torch.empty(()).uniform_(float(np.log(ratio[0])), float(np.log(ratio[1])))))
        eh, ew = int(round((target * aspect) ** 0.5)), int(round((target / aspect) ** 0.5))
        if 0 < eh < h and 0 < ew < w:
            top, left = int(torch.randint(h - eh + 1, ())), int(torch.randint(w - ew + 1, ()))
            out = x.clone()
            out[:, top:top + eh, left:left + ew] = 0
            return out
    return x

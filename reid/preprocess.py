"""Crop preprocessing shared by every ReID backend: resize, channel order, normalisation."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocess:
    """How a model wants its input: ``(x / 255 - mean) / std`` per channel, in RGB or BGR order.

    ``mean``/``std`` are given in the model's channel order on the 0-1 scale. A model that takes
    BGR 0-255 (Intel OMZ) is ``Preprocess(size, rgb=False, mean=(0,0,0), std=(1/255,)*3)``.
    """

    input_size: tuple[int, int]                      # (height, width)
    rgb: bool = True
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def to_dict(self) -> dict:
        return {"input_size": list(self.input_size), "rgb": self.rgb, "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, d: dict) -> "Preprocess":
        return cls(tuple(int(v) for v in d["input_size"]), bool(d.get("rgb", True)),
                   tuple(float(v) for v in d.get("mean", IMAGENET_MEAN)),
                   tuple(float(v) for v in d.get("std", IMAGENET_STD)))

    def scale_shift(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel (a, b) with normalised = uint8 * a + b, shapes (3,) float32."""
        std = np.asarray(self.std, np.float32)
        return (1.0 / (255.0 * std)).astype(np.float32), (-np.asarray(self.mean, np.float32) / std)


OMZ_BGR_255 = dict(rgb=False, mean=(0.0, 0.0, 0.0), std=(1 / 255, 1 / 255, 1 / 255))


def resize_crops(crops: Sequence[np.ndarray], size: tuple[int, int], rgb: bool) -> np.ndarray:
    """List of BGR uint8 crops (any size; grayscale or BGRA accepted) -> (N, h, w, 3) uint8 in the
    requested channel order. An empty crop (0 pixels) is an error naming its index."""
    h, w = size
    out = np.empty((len(crops), h, w, 3), np.uint8)
    for i, crop in enumerate(crops):
        a = np.asarray(crop)
        if a.ndim == 2:
            a = cv2.cvtColor(a, cv2.COLOR_GRAY2BGR)
        elif a.ndim == 3 and a.shape[2] == 4:
            a = cv2.cvtColor(a, cv2.COLOR_BGRA2BGR)
        if a.ndim != 3 or a.shape[2] != 3 or a.shape[0] == 0 or a.shape[1] == 0:
            raise ValueError(f"crop {i} has shape {a.shape}: expected a non-empty (h, w, 3) BGR image "
                             "(clip boxes to the frame and drop empty ones before embedding)")
        if a.dtype != np.uint8:
            a = np.clip(a, 0, 255).astype(np.uint8)
        r = cv2.resize(a, (w, h), interpolation=cv2.INTER_LINEAR)   # as in training (reid/data/transforms)
        out[i] = r[:, :, ::-1] if rgb else r
    return out


def normalize_numpy(batch: np.ndarray, pp: Preprocess) -> np.ndarray:
    """(N, h, w, 3) uint8 -> (N, 3, h, w) float32 normalised, C-contiguous."""
    a, b = pp.scale_shift()
    x = batch.astype(np.float32) * a + b
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))

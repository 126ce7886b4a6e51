"""YOLOX (Megvii, Apache-2.0) exported to ONNX with its raw grid output, e.g. ``yolox_nano.onnx``.

The network takes a letterboxed BGR 0-255 image (resized by one ratio, padded right and bottom with
114) and gives one row per grid cell of the stride 8, 16 and 32 maps, in that order:
``dx, dy, log w, log h, objectness, class scores...`` with objectness and class scores already
sigmoids. Decoding (as YOLOX's ``decode_outputs``): centre = (grid + d) * stride, size =
exp(log size) * stride; the person score is objectness x class-0 score; then NMS.
"""
from __future__ import annotations

import logging
from functools import lru_cache
from typing import Sequence

import cv2
import numpy as np

from pipeline.run.detectors.runtime import Engine

log = logging.getLogger(__name__)

STRIDES = (8, 16, 32)
PAD_VALUE = 114
EMPTY = np.zeros((0, 6), np.float32)


def letterbox(img: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, float]:
    """BGR image -> (size[0], size[1], 3) uint8 canvas with the image resized by ``ratio`` at the top left."""
    h, w = img.shape[:2]
    ratio = min(size[0] / h, size[1] / w)
    nh, nw = max(1, int(round(h * ratio))), max(1, int(round(w * ratio)))
    canvas = np.full((size[0], size[1], 3), PAD_VALUE, np.uint8)
    canvas[:nh, :nw] = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
    return canvas, ratio


@lru_cache(maxsize=8)
def grid(height: int, width: int, strides: tuple[int, ...] = STRIDES) -> tuple[np.ndarray, np.ndarray]:
    """(A, 2) x, y cell indices and (A, 1) strides of all grid cells, stride 8 map first, row-major."""
    cells, steps = [], []
    for s in strides:
        ys, xs = np.meshgrid(np.arange(height // s), np.arange(width // s), indexing="ij")
        cells.append(np.stack([xs, ys], -1).reshape(-1, 2))
        steps.append(np.full((cells[-1].shape[0], 1), s))
    return np.concatenate(cells).astype(np.float32), np.concatenate(steps).astype(np.float32)


def grid_cells(height: int, width: int, strides: tuple[int, ...] = STRIDES) -> int:
    """Rows of the raw output for an input of this size (3549 for 416 x 416)."""
    return sum((height // s) * (width // s) for s in strides)


def decode(raw: np.ndarray, input_hw: tuple[int, int], conf: float, cls: int = 0) -> np.ndarray:
    """Raw output (A, 5 + classes) of one image -> (N, 6) x1, y1, x2, y2, score, 0 in network input
    pixels, the boxes with score = objectness x score of class ``cls`` >= ``conf`` (before NMS)."""
    cells, steps = grid(int(input_hw[0]), int(input_hw[1]))
    if raw.shape[0] != cells.shape[0]:
        raise ValueError(f"YOLOX output has {raw.shape[0]} rows, expected {cells.shape[0]} for input {input_hw}")
    score = raw[:, 4] * raw[:, 5 + cls]                       # (A,)
    keep = np.flatnonzero(score >= conf)
    centre = (raw[keep, 0:2] + cells[keep]) * steps[keep]     # (N, 2)
    size = np.exp(raw[keep, 2:4]) * steps[keep]               # (N, 2)
    out = np.zeros((len(keep), 6), np.float32)
    out[:, 0:2] = centre - size / 2
    out[:, 2:4] = centre + size / 2
    out[:, 4] = score[keep]
    return out


def nms(boxes: np.ndarray, iou: float) -> np.ndarray:
    """Greedy non-maximum suppression of (N, 6) boxes of one class; the kept rows, best score first."""
    if len(boxes) == 0:
        return EMPTY
    xywh = np.concatenate([boxes[:, 0:2], boxes[:, 2:4] - boxes[:, 0:2]], 1).astype(np.float64)
    keep = cv2.dnn.NMSBoxes(xywh.tolist(), boxes[:, 4].astype(np.float64).tolist(), 0.0, float(iou))
    keep = np.asarray(keep, np.int64).reshape(-1)
    kept = boxes[keep]
    return kept[np.argsort(-kept[:, 4], kind="stable")]


def to_image(boxes: np.ndarray, ratio: float, shape: tuple[int, ...]) -> np.ndarray:
    """Network-input boxes -> boxes of the original (h, w) image, clipped to it."""
    out = boxes.copy()
    out[:, :4] /= ratio
    out[:, [0, 2]] = out[:, [0, 2]].clip(0, shape[1])
    out[:, [1, 3]] = out[:, [1, 3]].clip(0, shape[0])
    return out


class YoloxDetector:
    """Persons from a raw-output YOLOX ONNX model; batched over the frames of a call where the runtime
    can change the batch size (OpenVINO), one frame per call otherwise."""

    def __init__(self, model: str, *, conf: float = 0.1, iou: float = 0.7, device: str = "cpu",
                 batch: int = 8, threads: int = 0, backend: str = "auto", input_chw=None, name=None):
        self.engine = Engine(model, threads=threads, device=device, backend=backend, max_batch=batch,
                             input_chw=input_chw)
        self.name = name or str(model)
        self.conf, self.iou = float(conf), float(iou)
        self.input_hw = tuple(int(d) for d in self.engine.input_chw[1:3])
        self.threads = self.engine.threads

    def __call__(self, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
        """BGR frames (any sizes) -> (N, 6) float32 x1, y1, x2, y2, score, cls (0) per frame."""
        out: list[np.ndarray] = []
        for chunk, boxed, raw in self.engine.run_frames(frames, lambda f: letterbox(f, self.input_hw)):
            for r, (_, ratio), f in zip(raw, boxed, chunk):
                boxes = nms(decode(r, self.input_hw, self.conf), self.iou)
                out.append(to_image(boxes, ratio, f.shape))
        return out

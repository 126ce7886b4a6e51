"""SSD-style detectors with a ``DetectionOutput`` layer, e.g. Intel's pedestrian-detection-adas-0002
(Open Model Zoo, Apache-2.0, OpenVINO IR).

The network takes the frame resized to its input size, BGR 0-255 (OMZ resizes without keeping the
aspect ratio; here one axis is stretched at most ``max_stretch`` times more than the other, the rest
of the input padded: a portrait camera in a landscape input would otherwise give people 2-3 times
their width, which the detector misses), and gives rows
``image_id, label, conf, x_min, y_min, x_max, y_max`` with coordinates normalised to 0..1, after its
own NMS (shape [1, 1, N, 7]; a batch of B images gives B x N rows told apart by image_id; a row with
image_id < 0 ends the list).
"""
from __future__ import annotations

import logging
from typing import Sequence

import cv2
import numpy as np

from pipeline.run.detectors.runtime import Engine

log = logging.getLogger(__name__)

EMPTY = np.zeros((0, 6), np.float32)
PAD_VALUE = 114


def fit(img: np.ndarray, size: tuple[int, int], max_stretch: float) -> tuple[np.ndarray, float, float]:
    """BGR image -> (size[0], size[1], 3) uint8 input with the image resized by (sx, sy) at the top left:
    each axis fills the input unless its scale would exceed ``max_stretch`` x the other's."""
    h, w = img.shape[:2]
    sx, sy = size[1] / w, size[0] / h
    low = min(sx, sy)
    sx, sy = min(sx, low * max_stretch), min(sy, low * max_stretch)
    nw, nh = min(size[1], max(1, int(round(w * sx)))), min(size[0], max(1, int(round(h * sy))))
    if (nh, nw) == tuple(size):
        return cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR), sx, sy
    canvas = np.full((size[0], size[1], 3), PAD_VALUE, np.uint8)
    canvas[:nh, :nw] = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
    return canvas, nw / w, nh / h


def parse_rows(rows: np.ndarray, shapes: Sequence[tuple[int, ...]], conf: float, label: int = 1) -> list[np.ndarray]:
    """(M, 7) SSD rows of a batch of ``len(shapes)`` images -> per image (N, 6) float32 x1, y1, x2, y2,
    score, 0 in pixels of that image ((h, w) = shapes[i][:2]), rows of class ``label`` with
    conf >= ``conf``, best score first."""
    rows = np.asarray(rows, np.float32).reshape(-1, 7)
    end = np.flatnonzero(rows[:, 0] < 0)
    rows = rows[:end[0]] if len(end) else rows                  # image_id -1: no more detections
    rows = rows[(rows[:, 1] == label) & (rows[:, 2] >= conf)]
    out = []
    for i, shape in enumerate(shapes):
        r = rows[rows[:, 0] == i]
        boxes = np.zeros((len(r), 6), np.float32)
        h, w = shape[:2]
        boxes[:, [0, 2]] = np.clip(r[:, [3, 5]], 0.0, 1.0) * w
        boxes[:, [1, 3]] = np.clip(r[:, [4, 6]], 0.0, 1.0) * h
        boxes[:, 4] = r[:, 2]
        out.append(boxes[np.argsort(-boxes[:, 4], kind="stable")] if len(boxes) else EMPTY)
    return out


class SsdDetector:
    """Persons from an SSD-style model; ``label`` is the model's person class (1 for the Intel
    pedestrian and person detectors, 0 being the background)."""

    def __init__(self, model: str, *, conf: float = 0.1, device: str = "cpu", batch: int = 8, threads: int = 0,
                 backend: str = "auto", label: int = 1, max_stretch: float = 1.5, name=None):
        self.engine = Engine(model, threads=threads, device=device, backend=backend, max_batch=batch,
                             batch_first=False)
        self.name = name or str(model)
        self.conf, self.label, self.max_stretch = float(conf), int(label), float(max_stretch)
        self.input_hw = tuple(int(d) for d in self.engine.input_chw[1:3])
        self.threads = self.engine.threads

    def __call__(self, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
        """BGR frames (any sizes) -> (N, 6) float32 x1, y1, x2, y2, score, cls (0) per frame."""
        out: list[np.ndarray] = []
        batches = self.engine.run_frames(frames, lambda f: fit(f, self.input_hw, self.max_stretch))
        for chunk, fitted, rows in batches:                                        # rows (1, 1, B * N, 7)
            for boxes, (_, sx, sy), f in zip(parse_rows(rows, [self.input_hw] * len(chunk), self.conf, self.label),
                                             fitted, chunk):
                boxes[:, [0, 2]] = np.minimum(boxes[:, [0, 2]] / sx, f.shape[1])
                boxes[:, [1, 3]] = np.minimum(boxes[:, [1, 3]] / sy, f.shape[0])
                out.append(boxes)
        return out

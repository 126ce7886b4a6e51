"""Detectors with a ``boxes`` + ``labels`` output pair, e.g. Intel's person-vehicle-bike-detection-2003
(Open Model Zoo, Apache-2.0, OpenVINO IR).

The network takes one BGR 0-255 image at its input size (1 x 3 x 480 x 864 for 2003; the frame is
fitted as for the SSD models, see :func:`pipeline.run.detectors.ssd.fit`) and gives, after its own NMS,
``boxes`` [N, 5] rows ``x1, y1, x2, y2, score`` in pixels of the network input and ``labels`` [N] class
ids (2003: 0 vehicle, 1 person, 2 bike). The outputs have no batch dimension, so frames run one per
call. ``input_hw`` may set another input size (OpenVINO reshapes the network; smaller is faster).

``fit_width`` (OpenVINO only): the input keeps the network's height but takes the frame's aspect ratio
(width rounded up to a multiple of 32, at most the network's width), so a 4:3 or portrait camera is not
padded out to 16:9: the same pixels per person, 1.4x (4:3) to 2.5x (portrait) less computation. Each
camera's size is compiled once.
"""
from __future__ import annotations

import logging
from typing import Optional, Sequence

import numpy as np

from pipeline.run.detectors.runtime import Engine
from pipeline.run.detectors.ssd import fit

log = logging.getLogger(__name__)

EMPTY = np.zeros((0, 6), np.float32)
STRIDE = 32   # input widths are multiples of this (the network's largest stride)


def fitted_width(frame_hw: tuple[int, int], input_hw: tuple[int, int]) -> int:
    """Input width that holds a frame of size ``frame_hw`` (h, w) at the input's height: the frame's
    aspect ratio, rounded up to a multiple of STRIDE, at most ``input_hw``'s width."""
    width = input_hw[0] * frame_hw[1] / max(frame_hw[0], 1)
    return int(min(input_hw[1], max(STRIDE, int(np.ceil(width / STRIDE)) * STRIDE)))


def is_boxes_labels(outputs: Sequence[Sequence[int]]) -> bool:
    """Whether a model's output shapes are a ``boxes`` [N, 5] + ``labels`` [N] pair (either order)."""
    shapes = sorted((list(o) for o in outputs), key=len)
    return len(shapes) == 2 and len(shapes[0]) == 1 and len(shapes[1]) == 2 and shapes[1][1] == 5


def split_outputs(outputs: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(boxes (N, 5), labels (N,)) from the raw outputs, whatever their order."""
    a, b = (np.asarray(o) for o in outputs)
    return (a, b) if a.ndim == 2 else (b, a)


def parse_boxes(boxes: np.ndarray, labels: np.ndarray, scale: tuple[float, float], shape: tuple[int, ...],
                conf: float, label: int = 1) -> np.ndarray:
    """Rows ``x1, y1, x2, y2, score`` (N, 5) in input pixels and their labels (N,) -> (K, 6) float32
    x1, y1, x2, y2, score, 0 in pixels of the frame of ``shape`` (h, w, ...), where the frame was resized
    by ``scale`` (sx, sy) into the input: rows of class ``label`` with score >= ``conf``, best first."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 5)
    labels = np.asarray(labels).reshape(-1)
    keep = (labels.astype(np.int64) == label) & (boxes[:, 4] >= conf) & np.isfinite(boxes).all(1)
    rows = boxes[keep]
    if not len(rows):
        return EMPTY
    h, w = shape[:2]
    out = np.zeros((len(rows), 6), np.float32)
    out[:, [0, 2]] = np.clip(rows[:, [0, 2]] / scale[0], 0.0, w)
    out[:, [1, 3]] = np.clip(rows[:, [1, 3]] / scale[1], 0.0, h)
    out[:, 4] = rows[:, 4]
    out = out[(out[:, 2] > out[:, 0]) & (out[:, 3] > out[:, 1])]
    return out[np.argsort(-out[:, 4], kind="stable")]


class BoxesDetector:
    """Persons from a ``boxes`` + ``labels`` model; ``label`` is the person class (1 for 2003)."""

    def __init__(self, model: str, *, conf: float = 0.1, device: str = "cpu", threads: int = 0,
                 backend: str = "auto", label: int = 1, max_stretch: float = 1.5,
                 input_hw: Optional[tuple[int, int]] = None, fit_width: bool = True, name=None, **_):
        self.engine = Engine(model, threads=threads, device=device, backend=backend, max_batch=1,
                             batch_first=False, all_outputs=True)
        if input_hw:
            self.engine.reshape_input(*input_hw)
        self.name = name or str(model)
        self.conf, self.label, self.max_stretch = float(conf), int(label), float(max_stretch)
        self.input_hw = tuple(int(d) for d in self.engine.input_chw[1:3])
        self.fit_width = bool(fit_width) and self.engine.name.startswith("OpenVINO")
        self.threads = self.engine.threads

    def __call__(self, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
        """BGR frames (any sizes) -> (N, 6) float32 x1, y1, x2, y2, score, cls (0) per frame."""
        return [self._detect(frame) for frame in frames]

    def _detect(self, frame: np.ndarray) -> np.ndarray:
        size = self.input_hw
        if self.fit_width:
            size = (size[0], fitted_width(frame.shape[:2], size))
            self.engine.reshape_input(*size)
        img, sx, sy = fit(frame, size, self.max_stretch)
        outputs = self.engine(img.transpose(2, 0, 1)[None])
        boxes, labels = split_outputs(outputs)
        return parse_boxes(boxes, labels, (sx, sy), frame.shape, self.conf, self.label)

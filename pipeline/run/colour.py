"""Per-camera colour constancy of the crops the ReID model sees (``reid.colour_constancy``).

Two cameras rarely agree on colour: another white balance, a colour cast, a sensor that sees more red.
A ReID model trained on one colour response then puts one person's two views far apart. Each camera's
colour response is estimated once from its own video (the "shades of grey" assumption: the scene's
average colour, under the Minkowski ``P``-norm, is grey) and every crop of that camera is divided by it
before it is embedded, so all cameras hand the model the same neutral colours.

The gains are read from ``SAMPLES`` frames spread over the whole video (or frame folder), not from the
frames analysed so far: every run, chunk and resume of one camera gets the same gains.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from pipeline.run.video import sample_frames

SAMPLES = 16              # frames the gains are estimated from
P = 4.0                   # Minkowski norm of "shades of grey" (1: grey world, inf: white patch)
MAX_GAIN = 2.0            # no channel is scaled by more than this (or less than its inverse)
SIDE = 160                # frames are shrunk to at most this many pixels a side first


def gains_from_frames(frames: list[np.ndarray]) -> np.ndarray:
    """(3,) float32 B, G, R gains that make the frames' shades-of-grey average neutral (mean gain 1)."""
    if not frames:
        return np.ones(3, np.float32)
    px = []
    for f in frames:
        s = SIDE / max(f.shape[:2])
        small = cv2.resize(f, None, fx=s, fy=s, interpolation=cv2.INTER_AREA) if s < 1 else f
        px.append(small.reshape(-1, 3).astype(np.float64) / 255.0)
    x = np.concatenate(px)
    norm = np.mean(x ** P, axis=0) ** (1.0 / P)                      # (3,) per channel
    gains = norm.mean() / np.maximum(norm, 1e-6)
    return np.clip(gains / gains.mean(), 1.0 / MAX_GAIN, MAX_GAIN).astype(np.float32)


def camera_gains(path: str | Path) -> np.ndarray:
    """(3,) gains of one camera, from frames spread over its whole video."""
    return gains_from_frames(sample_frames(Path(path), SAMPLES))


def apply_gains(crop: np.ndarray, gains: np.ndarray | None) -> np.ndarray:
    """The BGR crop with its channels scaled by ``gains`` (unchanged when None)."""
    if gains is None:
        return crop
    return np.clip(crop.astype(np.float32) * gains, 0, 255).astype(np.uint8)

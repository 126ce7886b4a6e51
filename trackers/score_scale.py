"""Per-camera detection score scale: the tracker's thresholds follow the camera's own score range.

A detector's confidence falls with image quality: on a blurred, low-resolution or strongly compressed
camera the same people get lower scores (95th percentile of the embedded detector's scores per camera:
0.71-0.74 on PETS09 and EPFL terrace, 0.64 on the sample's left cut, 0.44 on the strongly blurred
variant of bench/footages.py), so thresholds fitted on sharp footage start no track there. The tracker
keeps a histogram of the scores it has seen (above ``track_low_thresh``); once it holds ``MIN_SCORES``
scores, the thresholds are multiplied by ``min(1, q / reference)`` where ``q`` is their ``QUANTILE``
quantile: a camera whose scores reach the reference keeps the thresholds as set, one whose scores sit
lower gets them lowered in proportion (never below ``FLOOR`` of them). While few scores are in, a higher
quantile is taken (``QUANTILE + SPREAD / sqrt(n)``): the first people of a video are often far or
partly visible (EPFL terrace's second camera: its first 100 scores have a 95th percentile of 0.5, its
whole video 0.74), and a sharp camera must not be scaled down by them. The estimate grows with the video
(streaming, so chunks and Ray workers need nothing more); it uses the scores of frames already tracked,
so the detections a frame embeds and the ones its update compares are chosen by the same thresholds.
"""
from __future__ import annotations

import numpy as np

BINS = 200          # histogram resolution over [0, 1]
QUANTILE = 0.95     # the camera's "high score": most confident detections, not its few outliers
MIN_SCORES = 200    # scores seen before the scale moves from 1
SPREAD = 0.3        # early estimates take a higher quantile: QUANTILE + SPREAD / sqrt(scores seen)
FLOOR = 0.5         # thresholds are never scaled below half their setting


class ScoreScale:
    """Running scale factor of one camera's detection thresholds (1.0 while ``reference`` is 0: off)."""

    def __init__(self, reference: float = 0.0):
        if not 0.0 <= reference <= 1.0:
            raise ValueError(f"score_reference must be in [0, 1] (0: off), got {reference}")
        self.reference = float(reference)
        self.hist = np.zeros(BINS, np.int64)
        self.factor = 1.0

    def add(self, scores: np.ndarray) -> float:
        """Count ``scores`` (those of one frame's kept detections); returns the updated factor."""
        if self.reference <= 0 or not len(scores):
            return self.factor
        s = np.asarray(scores, np.float64)
        s = s[np.isfinite(s)]
        self.hist += np.bincount(np.clip((s * BINS).astype(np.int64), 0, BINS - 1), minlength=BINS)
        n = int(self.hist.sum())
        if n >= MIN_SCORES:
            level = min(0.995, QUANTILE + SPREAD / np.sqrt(n))
            k = int(np.searchsorted(np.cumsum(self.hist), level * n))         # bin holding the quantile
            q = (k + 0.5) / BINS
            self.factor = float(np.clip(q / self.reference, FLOOR, 1.0))
        return self.factor

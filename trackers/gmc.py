"""Camera-motion compensation (GMC): estimate the image motion between frames, warp track states.

The trackers never see frames: the caller estimates a (2, 3) affine warp per camera with an
estimator from ``build_gmc`` (one per camera, it keeps the previous frame) and passes it to
``tracker.update(dets, embeds, warp=warp)``:

    gmc = build_gmc("sparse")           # or tracker.gmc for the botsort tracker
    warp = gmc.apply(frame, dets[:, :4])  # (2, 3), identity on the first frame
"""
from __future__ import annotations

import logging

import cv2
import numpy as np

log = logging.getLogger(__name__)


def identity_warp() -> np.ndarray:
    return np.eye(2, 3)


def warp_states(means: np.ndarray, covs: np.ndarray, warp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Apply a (2, 3) affine warp to xyah Kalman states means (N, 8), covs (N, 8, 8).

    Centres move by the full affine map, velocities by its linear part, heights scale by
    sqrt(|det R|); aspect ratios are unchanged.
    """
    rot, shift = warp[:, :2], warp[:, 2]
    scale = float(np.sqrt(abs(np.linalg.det(rot))))
    t = np.eye(8)
    t[0:2, 0:2] = rot
    t[4:6, 4:6] = rot
    t[3, 3] = t[7, 7] = scale
    new_means = means @ t.T
    new_means[:, :2] += shift
    return new_means, np.matmul(np.matmul(t, covs), t.T)


class SparseFlowGMC:
    """Sparse optical flow (Shi-Tomasi corners + pyramidal Lucas-Kanade) + RANSAC partial affine."""

    def __init__(self, downscale: int = 2, max_corners: int = 1000, min_points: int = 8):
        self.downscale = max(1, int(downscale))
        self.max_corners = max_corners
        self.min_points = min_points
        self.prev_gray: np.ndarray | None = None
        self.prev_points: np.ndarray | None = None

    def reset(self) -> None:
        self.prev_gray, self.prev_points = None, None

    def apply(self, frame: np.ndarray, boxes: np.ndarray | None = None) -> np.ndarray:
        """Warp (2, 3) from the previous frame to ``frame`` (BGR or gray uint8); boxes (N, 4) xyxy
        of moving objects are masked out. Identity for the first frame or when estimation fails."""
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
        if self.downscale > 1:
            gray = cv2.resize(gray, (gray.shape[1] // self.downscale, gray.shape[0] // self.downscale))
        mask = np.full(gray.shape, 255, dtype=np.uint8)
        if boxes is not None and len(boxes):
            for x1, y1, x2, y2 in (np.asarray(boxes)[:, :4] / self.downscale).astype(int):
                mask[max(y1, 0):max(y2, 0), max(x1, 0):max(x2, 0)] = 0
        points = cv2.goodFeaturesToTrack(gray, maxCorners=self.max_corners, qualityLevel=0.01,
                                         minDistance=1, blockSize=3, mask=mask)
        warp = identity_warp()
        if self.prev_gray is not None and self.prev_points is not None and len(self.prev_points):
            warp = self._estimate(gray)
        self.prev_gray, self.prev_points = gray, points
        return warp

    def _estimate(self, gray: np.ndarray) -> np.ndarray:
        nxt, status, _ = cv2.calcOpticalFlowPyrLK(self.prev_gray, gray, self.prev_points, None)
        ok = status.reshape(-1) == 1
        prev, cur = self.prev_points.reshape(-1, 2)[ok], nxt.reshape(-1, 2)[ok]
        if len(prev) < self.min_points:
            log.debug("GMC: only %d tracked points, assuming a static camera", len(prev))
            return identity_warp()
        warp, _ = cv2.estimateAffinePartial2D(prev, cur, method=cv2.RANSAC)
        if warp is None:
            return identity_warp()
        warp = warp.astype(np.float64)
        warp[:, 2] *= self.downscale
        return warp


GMC_METHODS = {"none": None, "sparse": SparseFlowGMC}


def build_gmc(name: str) -> SparseFlowGMC | None:
    """A new motion estimator ``name`` (None for "none")."""
    if name not in GMC_METHODS:
        raise ValueError(f"unknown gmc method {name!r}; valid: {', '.join(GMC_METHODS)}")
    cls = GMC_METHODS[name]
    return None if cls is None else cls()

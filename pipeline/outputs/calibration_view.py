"""The check picture of ``mcmt calibrate``: the ground grid and the calibration points over a frame.

A person judges the fit by eye: grid lines must lie flat on the floor and run along its straight
edges; each point's ring (where it was marked) and cross (where the fit puts its ground coordinates)
must coincide. Outliers of the robust fit are drawn in red.
"""
from __future__ import annotations

import math

import numpy as np

from pipeline.formats.calibration import apply_homography

GRID_LINES = 10           # about this many grid lines across the points' ground extent


def nice_step(span: float, lines: int = GRID_LINES) -> float:
    """A round grid step (1, 2 or 5 x 10^k) giving about ``lines`` lines over ``span``."""
    raw = max(span, 1e-9) / lines
    base = 10 ** math.floor(math.log10(raw))
    return next(m * base for m in (1, 2, 5, 10) if m * base >= raw)


def grid_segments(h: np.ndarray, ground_box: tuple[float, float, float, float], size: tuple[int, int],
                  samples: int = 40) -> list[np.ndarray]:
    """Image polylines (each (K, 2)) of the ground grid lines within ``ground_box`` (x0, y0, x1, y1), as
    seen through the image -> ground homography ``h``; parts behind the camera or off the image are cut."""
    inv = np.linalg.inv(h)
    x0, y0, x1, y1 = ground_box
    step = nice_step(max(x1 - x0, y1 - y0))
    xs = np.arange(math.floor(x0 / step), math.ceil(x1 / step) + 1) * step
    ys = np.arange(math.floor(y0 / step), math.ceil(y1 / step) + 1) * step
    t = np.linspace(0, 1, samples)
    lines = [np.column_stack([np.full_like(t, x), ys[0] + t * (ys[-1] - ys[0])]) for x in xs]
    lines += [np.column_stack([xs[0] + t * (xs[-1] - xs[0]), np.full_like(t, y)]) for y in ys]
    w_img, h_img = size
    bottom_w = np.sign(inv[2] @ np.r_[h @ [w_img / 2, h_img, 1.0]])      # the side of the camera's floor
    out = []
    for g in lines:
        p = np.column_stack([g, np.ones(len(g))]) @ inv.T
        ok = np.sign(p[:, 2]) == bottom_w
        uv = apply_homography(inv, g)
        ok &= np.all(np.isfinite(uv), 1) & (np.abs(uv) < 4 * max(size)).all(1)
        for run in np.split(np.arange(len(g)), np.flatnonzero(np.diff(ok.astype(np.int8))) + 1):
            if ok[run[0]] and len(run) > 1:
                out.append(uv[run])
    return out


def draw_check(image: np.ndarray, h: np.ndarray, points: np.ndarray, inliers: np.ndarray) -> np.ndarray:
    """A copy of ``image`` (BGR) with the ground grid (within the points' ground extent plus a margin) and
    the points: ring = marked pixel, cross = the fit's image of its ground coordinates, #k labels."""
    import cv2

    out = image.copy()
    size = (image.shape[1], image.shape[0])
    g = points[:, 2:4]
    pad = 0.25 * float(np.ptp(g, axis=0).max())
    box = (g[:, 0].min() - pad, g[:, 1].min() - pad, g[:, 0].max() + pad, g[:, 1].max() + pad)
    for seg in grid_segments(h, box, size):
        cv2.polylines(out, [np.round(seg).astype(np.int32)], False, (255, 200, 0), 1, cv2.LINE_AA)
    proj = apply_homography(np.linalg.inv(h), g)
    for k, ((u, v), (pu, pv), ok) in enumerate(zip(points[:, :2], proj, inliers)):
        colour = (0, 200, 0) if ok else (0, 0, 255)
        cv2.circle(out, (int(round(u)), int(round(v))), 6, colour, 2, cv2.LINE_AA)
        if np.isfinite(pu) and np.isfinite(pv):
            cv2.drawMarker(out, (int(round(pu)), int(round(pv))), colour, cv2.MARKER_CROSS, 10, 1)
        cv2.putText(out, f"#{k + 1}", (int(u) + 8, int(v) - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1,
                    cv2.LINE_AA)
    return out

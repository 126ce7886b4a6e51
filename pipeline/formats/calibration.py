"""Camera calibration files: image -> ground plane homographies, one per camera.

    units: m                                   # optional, shown on the map
    cameras:
      terrace_c0:
        homography: calib/terrace_c0.homography.txt   # 3x3 text file (relative to this YAML) or inline rows
      terrace_c1:
        points: [[u, v, X, Y], ...]            # >= 4 image <-> ground pairs, fitted robustly

A homography maps a pixel (u, v) to the ground (X, Y) in homogeneous coordinates; people are placed
by their foot point (bottom centre of the box). Every problem (unknown camera, singular or
mirrored matrix, too few points, a fit that does not reproduce its points) is a one-line
:class:`UserError` raised by :func:`load_calibration`, before any work starts.

"Mirrored": a camera looks down at the floor, so the bottom of its image lies in front of it; all
cameras of one file must map the floor with one handedness (a camera whose X and Y were swapped,
or whose points were given ground -> image, breaks that) and the bottom row of the image must not
lie beyond the horizon.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional, Sequence

import numpy as np

from core.config import read_yaml
from core.errors import UserError

MIN_POINTS = 4
MAX_ERROR_PX = 5.0            # a fit's median reprojection error (pixels) above this is rejected ...
MAX_ERROR_SHARE = 0.02        # ... unless below this share of the points' image extent
HORIZON_CLIP = 0.25           # field of view: image rows where |w| >= this x |w| at the bottom row


@dataclass(frozen=True)
class CameraCalibration:
    name: str
    homography: np.ndarray                     # (3, 3) image pixels -> ground
    source: str                                # the file, "inline" or "points"
    points: Optional[np.ndarray] = None        # (N, 4) u, v, X, Y when fitted from points
    errors_px: Optional[np.ndarray] = None     # (N,) reprojection error of each point (pixels)
    inliers: Optional[np.ndarray] = None       # (N,) bool, points the robust fit kept

    def to_ground(self, uv: np.ndarray) -> np.ndarray:
        return apply_homography(self.homography, uv)

    def scale(self, uv: np.ndarray) -> np.ndarray:
        """(N,) ground units per pixel at each image point (square root of the Jacobian determinant)."""
        return np.sqrt(np.abs(jacobian_det(self.homography, uv)))

    def record(self) -> dict:
        out = {"source": self.source, "homography": np.round(self.homography, 10).tolist()}
        if self.points is not None:
            out.update(points=int(len(self.points)), inliers=int(self.inliers.sum()),
                       median_error_px=round(float(np.median(self.errors_px[self.inliers])), 3))
        return out


@dataclass(frozen=True)
class GroundCalibration:
    cameras: Mapping[str, CameraCalibration]
    units: str = ""
    path: str = ""
    image_sizes: Mapping[str, tuple[int, int]] = field(default_factory=dict)   # camera -> (width, height)

    def __contains__(self, camera: str) -> bool:
        return camera in self.cameras

    def to_ground(self, camera: str, uv: np.ndarray) -> np.ndarray:
        return self.cameras[camera].to_ground(uv)

    def record(self) -> dict:
        """What run.json keeps of the calibration used."""
        return {"file": self.path, "units": self.units,
                "cameras": {n: c.record() for n, c in sorted(self.cameras.items())}}


def apply_homography(h: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """(N, 2) points mapped by the 3x3 homography ``h`` (non-finite where they map to infinity)."""
    uv = np.asarray(uv, np.float64).reshape(-1, 2)
    p = np.column_stack([uv, np.ones(len(uv))]) @ np.asarray(h, np.float64).T
    with np.errstate(divide="ignore", invalid="ignore"):
        return p[:, :2] / p[:, 2:3]


def jacobian_det(h: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """(N,) determinant of the homography's Jacobian at each point (its local area scale and sign)."""
    uv = np.asarray(uv, np.float64).reshape(-1, 2)
    w = h[2, 0] * uv[:, 0] + h[2, 1] * uv[:, 1] + h[2, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.linalg.det(h) / w ** 3


def foot_points(boxes_xyxy: np.ndarray) -> np.ndarray:
    """(N, 2) bottom centre of (N, 4) x1, y1, x2, y2 boxes."""
    b = np.asarray(boxes_xyxy, np.float64).reshape(-1, 4)
    return np.column_stack([(b[:, 0] + b[:, 2]) / 2, b[:, 3]])


def fit_points(points: np.ndarray, name: str = "camera") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(H image -> ground, (N,) reprojection errors in pixels, (N,) inlier mask) from (N, 4) u, v, X, Y.

    The fit runs ground -> image with RANSAC, so that its tolerance is in pixels whatever the ground
    units; H is its inverse. Raises UserError for fewer than 4 points, degenerate points or a large error.
    """
    import cv2

    pts = np.asarray(points, np.float64)
    if pts.ndim != 2 or pts.shape[1] != 4:
        raise UserError(f"calibration of '{name}': points must be rows [u, v, X, Y], got shape {pts.shape}")
    if len(pts) < MIN_POINTS:
        raise UserError(f"calibration of '{name}': {len(pts)} points, at least {MIN_POINTS} image <-> ground "
                        "pairs are needed (mark 4 or more floor points that are not on one line)")
    extent = float(np.hypot(*np.ptp(pts[:, :2], axis=0)))
    tol = max(MAX_ERROR_PX, MAX_ERROR_SHARE * extent)
    method = cv2.RANSAC if len(pts) > MIN_POINTS else 0
    g2i, mask = cv2.findHomography(pts[:, 2:4], pts[:, :2], method, tol)
    if g2i is None or abs(np.linalg.det(g2i)) < 1e-12:
        raise UserError(f"calibration of '{name}': the points give no homography (three of them on one line, "
                        "or repeated points?); mark 4 or more floor points spread over the view")
    inliers = mask.reshape(-1).astype(bool) if mask is not None else np.ones(len(pts), bool)
    errors = np.hypot(*(apply_homography(g2i, pts[:, 2:4]) - pts[:, :2]).T)
    errors = np.where(np.isfinite(errors), errors, np.inf)
    worst = int(np.argmax(errors))
    checked = inliers.sum() >= min(len(pts), MIN_POINTS + 1)     # 4 points fit any homography: one more checks it
    if not checked or np.median(errors[inliers]) > tol or inliers.mean() < 0.5:
        raise UserError(f"calibration of '{name}': the points do not fit one floor plane (median reprojection "
                        f"error {np.median(errors):.1f} px, worst point #{worst + 1} {errors[worst]:.1f} px, "
                        f"tolerance {tol:.1f} px); check that point's image and ground coordinates")
    return np.linalg.inv(g2i), errors, inliers


def check_homography(h: np.ndarray, name: str, probe: Optional[np.ndarray] = None) -> int:
    """Raise UserError for a singular or non-finite matrix, or one whose ``probe`` image points (the
    bottom row of the image, or the calibration points) straddle the horizon or are mapped with both
    handednesses; returns that handedness (+1 / -1; 0 without probe) for the file-wide mirror check."""
    h = np.asarray(h, np.float64)
    if h.shape != (3, 3) or not np.all(np.isfinite(h)):
        raise UserError(f"calibration of '{name}': the homography must be 3x3 finite numbers, got shape {h.shape}")
    if abs(np.linalg.det(h)) <= 1e-12 * np.abs(h).max() ** 3:
        raise UserError(f"calibration of '{name}': the homography is singular (determinant 0); "
                        "give the image -> ground matrix or 4+ points")
    if probe is None or not len(probe):
        return 0
    probe = np.asarray(probe, np.float64).reshape(-1, 2)
    w = h[2, 0] * probe[:, 0] + h[2, 1] * probe[:, 1] + h[2, 2]
    if np.any(w == 0) or np.any(np.sign(w) != np.sign(w[0])):
        raise UserError(f"calibration of '{name}': the horizon crosses the bottom of the image: the matrix is not "
                        "image -> ground for this camera (a ground -> image matrix must be inverted)")
    det = jacobian_det(h, probe)
    if np.any(np.sign(det) != np.sign(det[0])):
        raise UserError(f"calibration of '{name}': the homography mirrors the floor within the image; "
                        "check its rows (image -> ground) or the order of the point columns (u, v, X, Y)")
    return int(np.sign(det[0]))


def bottom_row(size: tuple[int, int]) -> np.ndarray:
    """(3, 2) bottom-left, bottom-centre and bottom-right pixels of a (width, height) image."""
    w, h = size
    return np.array([[0.0, h], [w / 2, h], [w, h]])


def _read_matrix(value, base: Path, name: str) -> tuple[np.ndarray, str]:
    if isinstance(value, str):
        path = Path(value) if Path(value).is_absolute() else base / value
        if not path.is_file():
            raise UserError(f"calibration of '{name}': homography file not found: {path}")
        try:
            return np.loadtxt(path, dtype=np.float64, ndmin=2), str(path)
        except ValueError as exc:
            raise UserError(f"calibration of '{name}': {path} is not a 3x3 matrix of numbers ({exc})") from None
    try:
        return np.asarray(value, np.float64), "inline"
    except (TypeError, ValueError):
        raise UserError(f"calibration of '{name}': homography must be a file name or 3 rows of 3 numbers") from None


def camera_from_entry(name: str, entry, base: Path) -> CameraCalibration:
    """One ``cameras:`` entry (``homography:`` or ``points:``) as a CameraCalibration."""
    if not isinstance(entry, Mapping) or len(set(entry) & {"homography", "points"}) != 1:
        raise UserError(f"calibration of '{name}': give exactly one of 'homography:' (3x3 file or rows) "
                        "or 'points:' ([[u, v, X, Y], ...])")
    unknown = set(entry) - {"homography", "points"}
    if unknown:
        raise UserError(f"calibration of '{name}': unknown key(s) {', '.join(sorted(unknown))} "
                        "(valid: homography, points)")
    if "homography" in entry:
        h, source = _read_matrix(entry["homography"], base, name)
        if h.shape != (3, 3):
            raise UserError(f"calibration of '{name}': the homography must be 3x3, got {h.shape[0]}x{h.shape[1]}")
        return CameraCalibration(name, h, source)
    try:
        pts = np.asarray(entry["points"], np.float64)
    except (TypeError, ValueError):
        raise UserError(f"calibration of '{name}': points must be rows of 4 numbers [u, v, X, Y]") from None
    h, errors, inliers = fit_points(pts, name)
    return CameraCalibration(name, h, "points", pts, errors, inliers)


def load_calibration(path: str | Path, camera_names: Optional[Sequence[str]] = None,
                     image_sizes: Optional[Mapping[str, tuple[int, int]]] = None) -> GroundCalibration:
    """Read and check a calibration file; ``camera_names``: the run's cameras (others are errors),
    ``image_sizes``: camera -> (width, height) for the horizon check."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"calibration file not found: {path}")
    doc = read_yaml(path)
    unknown = set(doc) - {"units", "cameras"}
    if unknown:
        raise UserError(f"{path}: unknown key(s) {', '.join(sorted(unknown))} (valid: units, cameras)")
    cams = doc.get("cameras")
    if not isinstance(cams, Mapping) or not cams:
        raise UserError(f"{path}: 'cameras:' must map camera names to a homography or points")
    if camera_names is not None:
        stray = sorted(set(map(str, cams)) - set(camera_names))
        if stray:
            raise UserError(f"{path}: camera(s) {', '.join(stray)} are not in this run "
                            f"(its cameras: {', '.join(camera_names)}; names are video stems or --names)")
    sizes = dict(image_sizes or {})
    out, signs = {}, {}
    for name, entry in cams.items():
        cal = camera_from_entry(str(name), entry, path.parent)
        size = sizes.get(str(name))
        probe = bottom_row(size) if size else (cal.points[cal.inliers, :2] if cal.points is not None else None)
        signs[str(name)] = check_homography(cal.homography, str(name), probe)
        out[str(name)] = cal
    known = [s for s in signs.values() if s]
    if len(set(known)) > 1:
        major = max(set(known), key=lambda v: (known.count(v), v == known[0]))    # ties: the first camera's
        odd = [n for n, s in signs.items() if s and s != major]
        raise UserError(f"{path}: camera(s) {', '.join(odd)} map the floor mirrored with respect to the others "
                        "(X and Y swapped, or a ground -> image matrix?)")
    return GroundCalibration(out, str(doc.get("units") or ""), str(path), sizes)


def field_of_view(h: np.ndarray, size: tuple[int, int], steps: int = 16) -> np.ndarray:
    """(K, 2) ground polygon of the image part in front of the camera: the image rectangle clipped to
    the rows where |w| is at least ``HORIZON_CLIP`` of its value at the bottom (near the horizon the
    ground runs to infinity), mapped to the ground."""
    w_img, h_img = size
    t = np.linspace(0, 1, steps + 1)[:-1]
    rect = np.concatenate([np.column_stack([t * w_img, np.zeros_like(t)]),
                           np.column_stack([np.full_like(t, w_img), t * h_img]),
                           np.column_stack([(1 - t) * w_img, np.full_like(t, h_img)]),
                           np.column_stack([np.zeros_like(t), (1 - t) * h_img])])
    w = lambda p: h[2, 0] * p[:, 0] + h[2, 1] * p[:, 1] + h[2, 2]        # noqa: E731
    sign = np.sign(w(np.array([[w_img / 2, h_img]])))[0]
    limit = HORIZON_CLIP * abs(w(np.array([[w_img / 2, h_img]]))[0])
    keep = _clip_polygon(rect, lambda p: sign * w(p) - limit)
    return apply_homography(h, keep) if len(keep) else np.zeros((0, 2))


def _clip_polygon(poly: np.ndarray, f) -> np.ndarray:
    """The part of ``poly`` where the affine function ``f`` >= 0 (Sutherland-Hodgman, one half-plane)."""
    out = []
    val = f(poly)
    for k in range(len(poly)):
        a, b, fa, fb = poly[k - 1], poly[k], val[k - 1], val[k]
        if fb >= 0:
            if fa < 0:
                out.append(a + (b - a) * fa / (fa - fb))
            out.append(b)
        elif fa >= 0:
            out.append(a + (b - a) * fa / (fa - fb))
    return np.array(out).reshape(-1, 2)

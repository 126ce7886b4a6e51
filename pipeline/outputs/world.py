"""World positions of a run with a camera calibration, and camera transitions of any run.

- :func:`box_world`: each box's foot point (bottom centre) on the ground, smoothed along its track
  (centred moving median of ``SMOOTH`` boxes): the xworld / yworld of ``mtmc.txt``.
- :func:`trajectories`: per global identity, where it was on the ground, sampled every
  ``SAMPLE_SECONDS`` (cameras that see it at once averaged): ``trajectory`` in identities.json,
  the map of the report, "where" in search results.
- :func:`transitions`: how many people went from camera X to camera Y and their median transit time
  (negative: seen by both at once), from the identities' tracklets alone.
"""
from __future__ import annotations

from typing import Mapping, Optional, Sequence

import numpy as np

from pipeline.formats.calibration import GroundCalibration, field_of_view, foot_points, load_calibration

SMOOTH = 9                # boxes in the moving median along a track
SAMPLE_SECONDS = 0.5      # trajectory sampling


def load_for_run(path: Optional[str], cameras: Sequence[dict]) -> Optional[GroundCalibration]:
    """The run's calibration checked against its cameras (names, image sizes); None without a file."""
    if not path:
        return None
    sizes = {c["name"]: (int(c["width"]), int(c["height"])) for c in cameras if c.get("width") and c.get("height")}
    return load_calibration(path, [c["name"] for c in cameras], sizes)


def moving_median(values: np.ndarray, window: int) -> np.ndarray:
    """(N, D) centred moving median (edges use the nearest full window's values padded by repetition)."""
    n = len(values)
    if n < 3 or window < 3:
        return values.copy()
    half = min(window, n if n % 2 else n - 1) // 2
    padded = np.concatenate([np.repeat(values[:1], half, 0), values, np.repeat(values[-1:], half, 0)])
    win = np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1, axis=0)   # (N, D, W)
    return np.median(win, axis=-1)


def box_world(boxes: np.ndarray, ground: Optional[GroundCalibration], camera: str,
              window: int = SMOOTH) -> Optional[np.ndarray]:
    """(N, 2) smoothed ground position of each box (N, >=6: frame, local id, x1, y1, x2, y2, ...), in the
    boxes' own order; None when the camera is not calibrated. Points beyond the horizon are NaN."""
    if ground is None or camera not in ground:
        return None
    out = np.full((len(boxes), 2), np.nan)
    if not len(boxes):
        return out
    xy = ground.to_ground(camera, foot_points(boxes[:, 2:6]))
    order = np.lexsort((boxes[:, 0], boxes[:, 1]))
    ids = boxes[order, 1]
    cuts = np.flatnonzero(np.diff(ids)) + 1
    for part in np.split(order, cuts):
        ok = part[np.all(np.isfinite(xy[part]), axis=1)]
        if len(ok):
            out[ok] = moving_median(xy[ok], window)
    return out


def trajectories(mot: Mapping[str, np.ndarray], cameras: Sequence[dict],
                 step: float = SAMPLE_SECONDS) -> dict[int, list[list[float]]]:
    """{global id: [[t, X, Y], ...]} from MOT rows (N, 10) whose columns 7-8 hold world positions (-1 / NaN
    where unknown): one point per ``step`` seconds, the mean of every camera's boxes in that step."""
    parts = []
    for c in cameras:
        rows = np.asarray(mot.get(c["name"], np.zeros((0, 10))))
        if not len(rows):
            continue
        ok = np.isfinite(rows[:, 7:9]).all(1) & ~((rows[:, 7] == -1) & (rows[:, 8] == -1))
        t = (rows[ok, 0] - 1) / float(c.get("fps") or 25.0) + float(c.get("offset") or 0.0)
        parts.append(np.column_stack([rows[ok, 1], t, rows[ok, 7:9]]))
    if not parts:
        return {}
    a = np.concatenate(parts)                                     # (N, 4) gid, t, X, Y
    key = np.column_stack([a[:, 0], np.floor(a[:, 1] / step)])
    uniq, inv = np.unique(key, axis=0, return_inverse=True)
    inv = inv.reshape(-1)
    cnt = np.bincount(inv).astype(np.float64)
    mean = np.column_stack([np.bincount(inv, a[:, k]) / cnt for k in (1, 2, 3)])
    out: dict[int, list[list[float]]] = {}
    for (gid, _), (t, x, y) in zip(uniq.tolist(), mean.tolist()):
        out.setdefault(int(gid), []).append([round(t, 2), round(x, 3), round(y, 3)])
    return out


def fields_of_view(ground: Optional[GroundCalibration], cameras: Sequence[dict]) -> dict[str, dict]:
    """{camera: {"polygon": [[X, Y], ...], "near": [X, Y]}} of the calibrated cameras whose image size is
    known: the floor the camera sees and the ground point at the bottom centre of its image (its near edge)."""
    if ground is None:
        return {}
    out = {}
    for c in cameras:
        if c["name"] in ground and c.get("width") and c.get("height"):
            size = (int(c["width"]), int(c["height"]))
            cal = ground.cameras[c["name"]]
            out[c["name"]] = {"polygon": np.round(field_of_view(cal.homography, size), 3).tolist(),
                              "near": np.round(cal.to_ground([[size[0] / 2, size[1]]])[0], 3).tolist()}
    return out


def transitions(identities: Sequence[dict]) -> list[dict]:
    """[{from, to, people, median_seconds}], most people first: each identity's cameras in the order it
    first appears in them; for consecutive ones X -> Y, the transit time from the end of its last X
    tracklet begun before it reached Y to its first Y start (negative: seen by both at once)."""
    moves: dict[tuple[str, str], list[float]] = {}
    for ident in identities:
        tr = ident.get("tracklets", [])
        first: dict[str, float] = {}
        for t in tr:
            first[t["camera"]] = min(first.get(t["camera"], np.inf), t["start_time"])
        order = sorted(first, key=lambda c: first[c])
        for x, y in zip(order, order[1:]):
            left = max(t["end_time"] for t in tr if t["camera"] == x and t["start_time"] <= first[y])
            moves.setdefault((x, y), []).append(first[y] - left)
    out = [{"from": a, "to": b, "people": len(v), "median_seconds": round(float(np.median(v)), 2)}
           for (a, b), v in moves.items()]
    return sorted(out, key=lambda r: (-r["people"], r["from"], r["to"]))

"""Camera calibration (pipeline/formats/calibration.py), world positions (pipeline/outputs/world.py) and
the ground-plane association (pipeline/association/ground.py)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.errors import UserError
from pipeline.formats.calibration import apply_homography, fit_points, load_calibration

EPFL = Path(__file__).resolve().parents[2] / "shared" / "data" / "epfl-terrace"
H_TRUE = np.array([[0.05, 0.01, -3.0], [0.002, 0.12, -8.0], [0.0001, 0.004, 1.0]])   # image -> ground, no mirror


def synthetic_points(h: np.ndarray, n: int, seed: int = 0, noise: float = 0.0) -> np.ndarray:
    """(n, 4) u, v, X, Y: pixels in the lower part of a 640x480 image and their ground positions under h."""
    rng = np.random.default_rng(seed)
    uv = np.column_stack([rng.uniform(20, 620, n), rng.uniform(250, 470, n)])
    xy = apply_homography(h, uv)
    return np.column_stack([uv + rng.normal(0, noise, uv.shape), xy])


def write_yaml(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "calib.yaml"
    p.write_text(text)
    return p


def rows(h: np.ndarray) -> str:
    return "[" + ", ".join("[" + ", ".join(repr(float(v)) for v in r) + "]" for r in h) + "]"


# --- the fit ---------------------------------------------------------------------------------------------------

def test_fit_recovers_a_known_homography():
    pts = synthetic_points(H_TRUE, 6)
    h, errors, inliers = fit_points(pts, "cam")
    assert inliers.all() and errors.max() < 1e-3
    np.testing.assert_allclose(h / h[2, 2], H_TRUE / H_TRUE[2, 2], rtol=1e-4, atol=1e-7)


def test_fit_is_robust_to_one_wrong_point():
    pts = synthetic_points(H_TRUE, 10, seed=1, noise=0.3)
    pts[3, :2] += [80.0, -40.0]                      # a point clicked at the wrong place
    h, errors, inliers = fit_points(pts, "cam")
    assert not inliers[3] and inliers.sum() == 9 and errors[3] > 30
    probe = np.array([[100.0, 300.0], [500.0, 450.0]])
    np.testing.assert_allclose(apply_homography(h, probe), apply_homography(H_TRUE, probe), rtol=0.02)


@pytest.mark.parametrize("n", [0, 3])
def test_fewer_than_four_points_is_an_error(n):
    with pytest.raises(UserError, match="at least 4"):
        fit_points(synthetic_points(H_TRUE, max(n, 1))[:n], "cam")


def test_points_that_fit_no_plane_are_an_error():
    pts = synthetic_points(H_TRUE, 6, seed=2)
    pts[:, 2:] = np.random.default_rng(3).uniform(0, 10, (6, 2))      # ground positions shuffled at random
    with pytest.raises(UserError, match="reprojection error"):
        fit_points(pts, "cam")


# --- the file ----------------------------------------------------------------------------------------------

def test_file_with_a_matrix_file_inline_rows_and_points(tmp_path):
    (tmp_path / "calib").mkdir()
    np.savetxt(tmp_path / "calib" / "a.txt", H_TRUE)
    pts = synthetic_points(H_TRUE, 5)
    path = write_yaml(tmp_path, f"units: m\ncameras:\n  a:\n    homography: calib/a.txt\n"
                                f"  b:\n    homography: {rows(H_TRUE)}\n"
                                f"  c:\n    points: {pts.tolist()}\n")
    cal = load_calibration(path, ["a", "b", "c", "d"], {n: (640, 480) for n in "abcd"})
    assert sorted(cal.cameras) == ["a", "b", "c"] and cal.units == "m" and "d" not in cal
    for name in "abc":
        np.testing.assert_allclose(cal.to_ground(name, [[320, 400]]), apply_homography(H_TRUE, [[320, 400]]),
                                   rtol=1e-5)
    rec = cal.record()
    assert rec["cameras"]["a"]["source"].endswith("a.txt") and rec["cameras"]["b"]["source"] == "inline"
    assert rec["cameras"]["c"]["points"] == 5 and rec["units"] == "m"


@pytest.mark.parametrize("body,message", [
    ("cameras:\n  zz:\n    homography: {H}\n", "not in this run"),
    ("cameras:\n  a:\n    homography: [[1, 2, 3], [2, 4, 6], [0, 0, 1]]\n", "singular"),
    ("cameras:\n  a:\n    homography: [[1, 2], [3, 4]]\n", "3x3"),
    ("cameras:\n  a:\n    homography: missing.txt\n", "not found"),
    ("cameras:\n  a:\n    points: [[1, 2, 3, 4], [5, 6, 7, 8]]\n", "at least 4"),
    ("cameras:\n  a:\n    homography: {H}\n    points: [[1, 2, 3, 4]]\n", "exactly one"),
    ("cameras:\n  a:\n    homography: {H}\n  b:\n    homography: {M}\n  c:\n    homography: {H}\n", "mirrored"),
    ("cameras:\n  a:\n    homography: {BEHIND}\n", "horizon"),
    ("camera:\n  a: {{}}\n", "unknown key"),
])
def test_file_errors_are_one_line_user_errors(tmp_path, body, message):
    mirror = H_TRUE[[1, 0, 2]]                                      # X and Y swapped: the floor mirrored
    behind = H_TRUE.copy()
    behind[2] = [0.01, 0.0, -3.0]                                  # w = 0 at u = 300: the horizon crosses the bottom row
    path = write_yaml(tmp_path, body.format(H=rows(H_TRUE), M=rows(mirror), BEHIND=rows(behind)))
    with pytest.raises(UserError, match=message) as exc:
        load_calibration(path, ["a", "b", "c"], {"a": (640, 480), "b": (640, 480), "c": (640, 480)})
    assert "\n" not in str(exc.value)


def test_mirror_names_the_odd_camera(tmp_path):
    path = write_yaml(tmp_path, f"cameras:\n  a:\n    homography: {rows(H_TRUE)}\n"
                                f"  b:\n    homography: {rows(H_TRUE[[1, 0, 2]])}\n  c:\n    homography: {rows(H_TRUE)}\n")
    with pytest.raises(UserError, match=r"camera\(s\) b map"):
        load_calibration(path, ["a", "b", "c"], {n: (640, 480) for n in "abc"})


# --- world positions on EPFL terrace ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def epfl():
    if not (EPFL / "calib").is_dir():
        pytest.skip("../shared/data/epfl-terrace not available")
    from pipeline.formats.mot import read_mot
    gt = {c: read_mot(EPFL / "gt" / c / "gt" / "gt.txt") for c in ("terrace_c0", "terrace_c1")}
    return gt


def test_world_positions_of_one_person_agree_between_the_epfl_cameras(epfl, tmp_path):
    from pipeline.outputs.world import box_world

    path = write_yaml(tmp_path, "cameras:\n" + "".join(
        f"  {c}:\n    homography: {EPFL / 'calib' / (c + '.homography.txt')}\n" for c in epfl))
    cal = load_calibration(path, list(epfl), {c: (360, 288) for c in epfl})
    pos = {}
    for cam, gt in epfl.items():
        boxes = np.column_stack([gt[:, 0] - 1, gt[:, 1], gt[:, 2:4], gt[:, 2:4] + gt[:, 4:6], np.ones(len(gt))])
        raw = box_world(boxes, cal, cam, window=1)
        smooth = box_world(boxes, cal, cam)
        pos[cam] = {(int(f), int(i)): (r, s) for f, i, r, s in zip(gt[:, 0], gt[:, 1], raw, smooth)}
    a, b = pos["terrace_c0"], pos["terrace_c1"]
    same = sorted(set(a) & set(b))
    d_raw = np.array([np.hypot(*(a[k][0] - b[k][0])) for k in same])
    d_smooth = np.array([np.hypot(*(a[k][1] - b[k][1])) for k in same])
    assert len(same) > 3000
    assert 15 < np.median(d_raw) < 25                               # the data set's own figure: 21 units
    assert np.median(d_smooth) <= np.median(d_raw) + 0.5            # smoothing along the track costs nothing
    frames = {}
    for (f, i), (r, _) in a.items():
        frames.setdefault(f, []).append((i, r))
    other = [np.hypot(*(r - b[(f, j)][0])) for f, lst in frames.items() for i, r in lst for j, _ in lst
             if j != i and (f, j) in b]
    assert np.median(other) > 4 * np.median(d_raw)                  # different people: far apart (122)

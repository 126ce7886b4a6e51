"""Batched Kalman filter against textbook single-track matrices; box conversions; GMC warps."""
import numpy as np
import pytest

from trackers import kalman
from trackers.gmc import warp_states

F = np.eye(8) + np.eye(8, k=4)          # constant velocity, dt = 1
H = np.eye(4, 8)


def _random_state(rng, n):
    mean = np.column_stack([rng.uniform(50, 500, (n, 2)), rng.uniform(0.3, 0.6, n), rng.uniform(60, 200, n),
                            rng.normal(0, 2, (n, 4))])
    a = rng.normal(size=(n, 8, 8))
    cov = a @ a.transpose(0, 2, 1) + 8 * np.eye(8)
    return mean, cov


def test_box_conversions_round_trip():
    boxes = np.array([[10, 20, 50, 120], [0, 0, 1, 2]], dtype=float)
    xyah = kalman.xyxy_to_xyah(boxes)
    np.testing.assert_allclose(xyah[0], [30, 70, 0.4, 100])
    np.testing.assert_allclose(kalman.xyah_to_xyxy(xyah), boxes)


def test_initiate_hand_computed():
    mean, cov = kalman.initiate(np.array([[30, 70, 0.4, 100]]))
    np.testing.assert_allclose(mean[0], [30, 70, 0.4, 100, 0, 0, 0, 0])
    std = [10, 10, 1e-2, 10, 6.25, 6.25, 1e-5, 6.25]      # 2/20 * h and 10/160 * h
    np.testing.assert_allclose(cov[0], np.diag(np.square(std)))


def test_predict_matches_textbook():
    rng = np.random.default_rng(1)
    mean, cov = _random_state(rng, 5)
    new_mean, new_cov = kalman.predict(mean, cov)
    for i in range(5):
        h = mean[i, 3]
        q = np.diag(np.square([h / 20, h / 20, 1e-2, h / 20, h / 160, h / 160, 1e-5, h / 160]))
        np.testing.assert_allclose(new_mean[i], F @ mean[i])
        np.testing.assert_allclose(new_cov[i], F @ cov[i] @ F.T + q, rtol=1e-10)
    assert not np.shares_memory(new_cov, cov)


def test_update_matches_textbook_and_batches():
    rng = np.random.default_rng(2)
    mean, cov = _random_state(rng, 4)
    z = mean[:, :4] + rng.normal(0, 3, (4, 4))
    new_mean, new_cov = kalman.update(mean, cov, z)
    for i in range(4):
        h = mean[i, 3]
        s = H @ cov[i] @ H.T + np.diag(np.square([h / 20, h / 20, 1e-1, h / 20]))
        k = cov[i] @ H.T @ np.linalg.inv(s)
        np.testing.assert_allclose(new_mean[i], mean[i] + k @ (z[i] - H @ mean[i]), rtol=1e-9)
        np.testing.assert_allclose(new_cov[i], cov[i] - k @ s @ k.T, rtol=1e-7, atol=1e-9)
        one_mean, _ = kalman.update(mean[i:i + 1], cov[i:i + 1], z[i:i + 1])
        np.testing.assert_allclose(one_mean[0], new_mean[i])


def test_update_uncorrelated_fast_path_matches_textbook():
    mean, cov = kalman.initiate(np.array([[30, 70, 0.4, 100], [300, 50, 0.5, 60]]))
    mean, cov = kalman.predict(mean, cov)                   # block structure: S stays diagonal
    z = mean[:, :4] + [[3, -2, 0.01, 4], [-1, 1, 0, -2]]
    new_mean, new_cov = kalman.update(mean, cov, z)
    for i in range(2):
        h = mean[i, 3]
        s = H @ cov[i] @ H.T + np.diag(np.square([h / 20, h / 20, 1e-1, h / 20]))
        k = cov[i] @ H.T @ np.linalg.inv(s)
        np.testing.assert_allclose(new_mean[i], mean[i] + k @ (z[i] - H @ mean[i]), rtol=1e-12)
        np.testing.assert_allclose(new_cov[i], cov[i] - k @ s @ k.T, rtol=1e-9, atol=1e-12)


def test_filter_learns_constant_velocity():
    mean, cov = kalman.initiate(np.array([[100, 200, 0.5, 80]]))
    for t in range(1, 40):
        mean, cov = kalman.predict(mean, cov)
        mean, cov = kalman.update(mean, cov, np.array([[100 + 3 * t, 200 - 1 * t, 0.5, 80]]))
    assert mean[0, 4] == pytest.approx(3, abs=0.05)
    assert mean[0, 5] == pytest.approx(-1, abs=0.05)


def test_gating_distance_is_mahalanobis():
    rng = np.random.default_rng(3)
    mean, cov = _random_state(rng, 3)
    z = mean[:2, :4] + rng.normal(0, 5, (2, 4))
    d = kalman.gating_distance(mean, cov, z)
    assert d.shape == (3, 2)
    for i in range(3):
        h = mean[i, 3]
        s = cov[i, :4, :4] + np.diag(np.square([h / 20, h / 20, 1e-1, h / 20]))
        for j in range(2):
            diff = z[j] - mean[i, :4]
            assert d[i, j] == pytest.approx(diff @ np.linalg.solve(s, diff), rel=1e-8)


def test_warp_states_translation_and_rotation():
    rng = np.random.default_rng(4)
    mean, cov = _random_state(rng, 2)
    shift = np.array([[1.0, 0, 12], [0, 1, -5]])
    m2, c2 = warp_states(mean, cov, shift)
    np.testing.assert_allclose(m2[:, :2], mean[:, :2] + [12, -5])
    np.testing.assert_allclose(m2[:, 2:], mean[:, 2:])
    np.testing.assert_allclose(c2, cov)
    rot = np.array([[0.0, -2, 0], [2, 0, 0]])          # 90 degrees, scale 2
    m3, _ = warp_states(mean, cov, rot)
    np.testing.assert_allclose(m3[:, 0], -2 * mean[:, 1])
    np.testing.assert_allclose(m3[:, 3], 2 * mean[:, 3])   # height scales
    np.testing.assert_allclose(m3[:, 2], mean[:, 2])       # aspect ratio does not

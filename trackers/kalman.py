"""Constant-velocity Kalman filter on (x, y, a, h) boxes, vectorised over tracks.

State (8,): centre x, centre y, aspect a = w/h, height h and their velocities. Noise scales with
the box height (ByteTrack / DeepSORT settings). Every function takes and returns batches:
means (N, 8), covariances (N, 8, 8), measurements (N, 4). Nothing is modified in place.
"""
from __future__ import annotations

import numpy as np

STD_POSITION = 1.0 / 20    # position noise per unit of box height
STD_VELOCITY = 1.0 / 160   # velocity noise per unit of box height
CHI2_95 = {1: 3.8415, 2: 5.9915, 3: 7.8147, 4: 9.4877}  # gating thresholds by degrees of freedom


def xyxy_to_xyah(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) x1, y1, x2, y2 -> (N, 4) centre x, centre y, w/h, h."""
    boxes = np.asarray(boxes, dtype=np.float64)
    out = np.empty((len(boxes), 4))
    wh = boxes[:, 2:4] - boxes[:, 0:2]                 # (N, 2)
    out[:, 0:2] = boxes[:, 0:2] + wh / 2
    out[:, 2] = wh[:, 0] / wh[:, 1]
    out[:, 3] = wh[:, 1]
    return out


def xyah_to_xyxy(xyah: np.ndarray) -> np.ndarray:
    """(N, >=4) centre x, centre y, w/h, h -> (N, 4) x1, y1, x2, y2."""
    out = np.empty((len(xyah), 4))
    half = np.empty((len(xyah), 2))
    half[:, 1] = xyah[:, 3] / 2
    half[:, 0] = xyah[:, 2] * half[:, 1]
    out[:, 0:2] = xyah[:, 0:2] - half
    out[:, 2:4] = xyah[:, 0:2] + half
    return out


# noise standard deviations = height * _SCALE + _CONST for the 8 state (or 4 measurement) entries
_INIT_SCALE = np.array([2 * STD_POSITION] * 2 + [0.0, 2 * STD_POSITION] + [10 * STD_VELOCITY] * 2
                       + [0.0, 10 * STD_VELOCITY])
_INIT_CONST = np.array([0, 0, 1e-2, 0, 0, 0, 1e-5, 0])
_PROC_SCALE = np.array([STD_POSITION] * 2 + [0.0, STD_POSITION] + [STD_VELOCITY] * 2 + [0.0, STD_VELOCITY])
_PROC_CONST = _INIT_CONST
_MEAS_SCALE = np.array([STD_POSITION, STD_POSITION, 0.0, STD_POSITION])
_MEAS_CONST = np.array([0, 0, 1e-1, 0])
_OFF_DIAGONAL = ~np.eye(4, dtype=bool).reshape(16)


def _std(h: np.ndarray, scale: np.ndarray, const: np.ndarray) -> np.ndarray:
    """Noise standard deviations (N, K) for box heights h (N,)."""
    return h[:, None] * scale + const


def initiate(measurements: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """New tracks from (N, 4) xyah measurements -> means (N, 8) with zero velocity, covs (N, 8, 8)."""
    z = np.asarray(measurements, dtype=np.float64).reshape(-1, 4)
    mean = np.zeros((len(z), 8))
    mean[:, :4] = z
    cov = np.zeros((len(z), 8, 8))
    cov.reshape(-1, 64)[:, ::9] = _std(z[:, 3], _INIT_SCALE, _INIT_CONST) ** 2
    return mean, cov


def predict(mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One constant-velocity step for all tracks: x' = F x, P' = F P F^T + Q."""
    q = _std(mean[:, 3], _PROC_SCALE, _PROC_CONST)  # (N, 8)
    new_mean = mean.copy()
    new_mean[:, :4] += mean[:, 4:]
    new_cov = cov.copy()                     # F = [[I, I], [0, I]]:
    new_cov[:, :4, :] += cov[:, 4:, :]       # F P: velocity rows added to position rows
    new_cov[:, :, :4] += new_cov[:, :, 4:]   # (F P) F^T: velocity columns added to position columns
    new_cov.reshape(-1, 64)[:, ::9] += q * q
    return new_mean, new_cov


def project(mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """State -> measurement space: (N, 4) predicted xyah, (N, 4, 4) innovation covariance S."""
    r = _std(mean[:, 3], _MEAS_SCALE, _MEAS_CONST)  # (N, 4)
    s = cov[:, :4, :4].copy()
    s.reshape(-1, 16)[:, ::5] += r * r
    return mean[:, :4].copy(), s


def update(mean: np.ndarray, cov: np.ndarray, measurements: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Correct N tracks with their (N, 4) xyah measurements -> means (N, 8), covs (N, 8, 8)."""
    if len(mean) == 0:
        return mean.copy(), cov.copy()
    z_pred, s = project(mean, cov)
    flat = s.reshape(-1, 16)
    if flat[:, _OFF_DIAGONAL].any():                               # coupled (e.g. after a rotation warp)
        gain_t = np.matmul(np.linalg.inv(s), cov[:, :4, :])        # (N, 4, 8) = K^T (S symmetric)
    else:  # without camera rotation the 4 box dimensions stay uncorrelated: S is diagonal
        gain_t = cov[:, :4, :] / flat[:, ::5, None]
    innovation = np.asarray(measurements, dtype=np.float64) - z_pred  # (N, 4)
    new_mean = mean + np.matmul(innovation[:, None, :], gain_t)[:, 0]
    new_cov = cov - np.matmul(gain_t.transpose(0, 2, 1), cov[:, :4, :])  # P - K H P
    return new_mean, new_cov


def gating_distance(mean: np.ndarray, cov: np.ndarray, measurements: np.ndarray,
                    only_position: bool = False) -> np.ndarray:
    """Squared Mahalanobis distance of (M, 4) xyah measurements to N track predictions -> (N, M).

    Compare with ``CHI2_95[4]`` (or ``CHI2_95[2]`` with ``only_position``) to gate matches.
    """
    z = np.asarray(measurements, dtype=np.float64).reshape(-1, 4)
    if len(mean) == 0 or len(z) == 0:
        return np.zeros((len(mean), len(z)))
    z_pred, s = project(mean, cov)
    if only_position:
        z_pred, s, z = z_pred[:, :2], s[:, :2, :2], z[:, :2]
    d = z[None, :, :] - z_pred[:, None, :]                          # (N, M, k)
    chol = np.linalg.cholesky(s)                                    # (N, k, k)
    sol = np.linalg.solve(chol, d.transpose(0, 2, 1))               # (N, k, M)
    return np.sum(sol * sol, axis=1)

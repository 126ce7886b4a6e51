"""Pure helpers for tracking through occlusions (numpy in, numpy out; no state of their own).

* :func:`reupdate`: OC-SORT's observation-centric re-update (Cao et al., CVPR 2023). While a track is
  lost its Kalman state runs on predictions alone and its velocity drifts; when it is matched again
  after a gap of g frames, its state is restored to just after its last observation and run through g
  predict / update steps on virtual observations on the straight line from that observation to the new
  one, so that the velocity it leaves with is the one it really had.
* :func:`covered`: detections overlapping a live track's box (a second box on one person: no birth).
* :func:`gallery_add` / :func:`gallery_distance`: a ring of each track's recent appearance features
  and the smallest cosine distance from any of them to a detection (DeepSORT's gallery; re-finding
  after an occlusion compares with how the person looked at any recent time, not with one average).
"""
from __future__ import annotations

import numpy as np

from core.boxes import iou_matrix
from trackers import kalman

MAX_REUPDATE = 600   # longer gaps are re-updated over their last MAX_REUPDATE frames only


def reupdate(obs_means: np.ndarray, obs_covs: np.ndarray, obs_z: np.ndarray, z_new: np.ndarray,
             gaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Kalman states (K, 8), (K, 8, 8) after re-running each track from its last observed state
    ``obs_means`` / ``obs_covs`` (measurement ``obs_z`` (K, 4) xyah) through ``gaps`` (K,) steps whose
    observations go linearly from ``obs_z`` to ``z_new`` (K, 4); the last step observes ``z_new``."""
    means, covs = obs_means.copy(), obs_covs.copy()
    gaps = np.minimum(np.asarray(gaps, np.int64), MAX_REUPDATE)
    for g in np.unique(gaps):
        rows = (gaps == g).nonzero()[0]
        m, c = obs_means[rows], obs_covs[rows]
        for k in range(1, int(g) + 1):
            m, c = kalman.predict(m, c)
            z = obs_z[rows] + (z_new[rows] - obs_z[rows]) * (k / g)
            m, c = kalman.update(m, c, z)
        means[rows], covs[rows] = m, c
    return means, covs


def covered(boxes: np.ndarray, live: np.ndarray, thresh: float) -> np.ndarray:
    """(N,) bool: boxes (N, 4) whose IoU with any of ``live`` (K, 4) is at least ``thresh``."""
    if not len(boxes) or not len(live):
        return np.zeros(len(boxes), dtype=bool)
    return iou_matrix(boxes, live).max(1) >= thresh


def gallery_add(gallery: np.ndarray, count: np.ndarray, rows: np.ndarray, feats: np.ndarray) -> None:
    """Write L2-normalised ``feats`` (K, D) into the rings ``gallery[rows]`` (T, G, D) in place, at slot
    ``count % G``; ``count`` (T,) is advanced."""
    size = gallery.shape[1]
    if size == 0 or not len(rows):
        return
    gallery[rows, count[rows] % size] = feats
    count[rows] += 1


def gallery_distance(gallery: np.ndarray, count: np.ndarray, feats: np.ndarray) -> np.ndarray:
    """Smallest cosine distance (T, M) in [0, 2] between the filled slots of each track's ring
    (T, G, D) and L2-normalised features (M, D); 2 for a track with an empty ring."""
    t, size = gallery.shape[:2]
    if t == 0 or len(feats) == 0 or size == 0:
        return np.full((t, len(feats)), 2.0)
    sim = np.einsum("tgd,md->tgm", gallery, np.asarray(feats, np.float32))       # (T, G, M)
    filled = np.arange(size)[None, :] < np.minimum(count, size)[:, None]            # (T, G)
    sim = np.where(filled[:, :, None], sim, -1.0)
    return np.clip(1.0 - sim.max(1), 0.0, 2.0).astype(np.float64)

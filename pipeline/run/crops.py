"""Which tracked boxes to embed, and their crops.

ReID cost must not scale with every box of every frame: a box is embedded only when its track is
confirmed (seen in ``min_hits`` frames), the box is tall enough, its score is high enough, it is not
overlapped by another box (intersection over the box's own area), and the track was not embedded in
the last ``every_k`` frames. Quality in [0, 1] weights the feature in the tracklet gallery. A track that
has fewer than ``few_features`` features so far is embedded from the lower score ``few_score`` up (a
blurred or compressed camera scores its people lower: its tracks would keep one or two crops). A track none
of whose boxes passed (overlapped all along, low scores on a blurred camera) keeps its best crop and
is embedded on it when it ends, so that no confirmed track is left without an appearance.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.boxes import ioa_matrix


@dataclass(frozen=True)
class CropPolicy:
    every_k: int = 3            # embed a track at most every k analysed frames
    min_height: float = 40.0    # pixels
    min_score: float = 0.5
    max_overlap: float = 0.1    # IoA with any other box in the frame
    few_features: int = 3       # a track with fewer features than this so far is embedded from ...
    few_score: float = 0.45     # ... this score up (0 features: off)
    min_hits: int = 2           # boxes a track must have before it is embedded (confirmed)
    every_track: bool = True    # a confirmed track never selected is embedded once, on its best crop




def track_overlap(tracks: np.ndarray, dets: np.ndarray) -> np.ndarray:
    """(M,) largest IoA of each track box with any detection other than its own (``det_idx``).

    tracks (M, 8) x1,y1,x2,y2,id,score,cls,det_idx; dets (N, >=4) xyxy of the same frame.
    """
    if len(tracks) == 0:
        return np.zeros((0,), np.float64)
    boxes = np.concatenate([tracks[:, :4], dets[:, :4]], axis=0)               # (M + N, 4)
    m = ioa_matrix(boxes)[: len(tracks)]                                          # (M, M + N)
    own = tracks[:, 7].astype(np.int64)
    rows = np.nonzero((own >= 0) & (own < len(dets)))[0]
    m[rows, len(tracks) + own[rows]] = 0.0                                        # not its own detection
    return m.max(axis=1)


def crop_quality(tracks: np.ndarray, overlap: np.ndarray, policy: CropPolicy) -> np.ndarray:
    """(M, 8) tracks + (M,) overlap -> (M,) quality in [0, 1]: score x size factor x visibility."""
    h = tracks[:, 3] - tracks[:, 1]
    size = np.clip(h / (2.0 * max(policy.min_height, 1.0)), 0.0, 1.0)
    return (np.clip(tracks[:, 5], 0.0, 1.0) * size * (1.0 - np.clip(overlap, 0.0, 1.0))).astype(np.float32)


def select_for_embedding(tracks: np.ndarray, hits: np.ndarray, last_embedded: np.ndarray, frame: int,
                         overlap: np.ndarray, policy: CropPolicy, features: np.ndarray | None = None) -> np.ndarray:
    """Boolean mask (M,) of tracks to embed now.

    tracks (M, 8) x1,y1,x2,y2,id,score,cls,det_idx; hits (M,) boxes seen so far per track;
    last_embedded (M,) analysed-frame number of the last embedding (-inf/very negative if never);
    frame: the current analysed-frame number; overlap (M,) max IoA with other boxes; features (M,) features
    each track has so far (None: one bar, ``min_score``, for every track).
    """
    h = tracks[:, 3] - tracks[:, 1]
    due = (frame - last_embedded) >= policy.every_k
    bar = np.full(len(tracks), policy.min_score)
    if features is not None and policy.few_features > 0:
        bar[np.asarray(features) < policy.few_features] = min(policy.min_score, policy.few_score)
    return ((hits >= policy.min_hits) & (h >= policy.min_height) & (tracks[:, 5] >= bar)
            & (overlap <= policy.max_overlap) & due)


def fallback_candidates(tracks: np.ndarray, hits: np.ndarray, n_dets: int, selected: np.ndarray,
                        policy: CropPolicy) -> np.ndarray:
    """Indices of the confirmed tracks matched to a detection this frame and not selected: their crop
    may become the track's fallback (its best crop, embedded when it ends without a feature)."""
    if not policy.every_track or len(tracks) == 0:
        return np.zeros((0,), np.int64)
    d = tracks[:, 7]
    ok = (hits >= policy.min_hits) & (d >= 0) & (d < n_dets)
    ok[np.asarray(selected, np.int64)] = False
    return np.flatnonzero(ok)


def crop(image: np.ndarray, box: np.ndarray) -> np.ndarray:
    """BGR crop of one xyxy box clipped to the image; at least 1x1 pixel."""
    h, w = image.shape[:2]
    x1 = int(np.clip(np.floor(box[0]), 0, w - 1))
    y1 = int(np.clip(np.floor(box[1]), 0, h - 1))
    x2 = int(np.clip(np.ceil(box[2]), x1 + 1, w))
    y2 = int(np.clip(np.ceil(box[3]), y1 + 1, h))
    return image[y1:y2, x1:x2]

"""Appearance-aware ByteTrack (BoT-SORT style), registered as "botsort".

Differences from :class:`ByteTracker`, all by overriding a few methods:
- first-stage cost: IoU distance fused with half the cosine distance of the track's feature EMA
  and the detection's embedding (appearance only counts near the track: IoU >= proximity_thresh
  and distance <= appearance_thresh), as in BoT-SORT; with ``appearance_veto`` > 0 a track is never
  matched in that stage to a detection that another track (tracked or lost) looks closer to by more than
  that, however much their boxes overlap (people crossing: the box of the one in front fits the other's
  predicted box, their looks do not). Relative, so a camera whose crops are noisy (compression, blur),
  which moves all distances up together, is vetoed no more often than a clean one;
- an extra "reacquire" stage: lost tracks vs the remaining high-score detections on appearance
  alone, gated by the Kalman Mahalanobis distance, to re-find people after an occlusion; with
  ``gallery_size`` > 0 the track's ring of recent features is compared (the closest of them), not the
  feature EMA, since a person coming out of an occlusion looks like some earlier view of them;
- per-track feature EMA (momentum ``ema_alpha``);
- identity-switch split (``switch_thresh`` > 0): when ``switch_count`` embedded matches in a row all lie
  farther than ``switch_thresh`` from what the track's feature EMA was just before the first of them, the
  track is following someone else (a swap at a crossing that nothing refused, or a person re-found by the
  track of another who had left): its id ends there and the track goes on under a new id whose feature is
  those embeddings' mean. The EMA is updated as usual meanwhile (the watch changes nothing until it
  splits); the boxes of those few matches stay with the old id. The distance is relative to the camera:
  at least ``switch_scale`` times the median distance of this camera's embedded matches to their tracks'
  features so far (a compressed or blurred camera's crops lie farther from their own tracks: JPEG quality
  8 gives a median 0.18 against 0.06-0.09 on the bench's clean cameras), and nothing is split before
  ``SWITCH_MIN_SEEN`` such distances were seen;
- optional camera-motion compensation from a ``warp`` passed to ``update`` (see trackers.gmc).
Without embeddings it behaves exactly like ByteTracker.

Embedding every detection of every frame is the expensive part. ``embedding_mask`` tells the caller
which detections need one: all high-score detections every ``appearance_every`` frames (to keep the
feature EMAs fresh), and in between only those whose first-stage match is not already forced by
motion (a detection and a track that are each other's only candidate are matched whatever their
appearance). Rows of ``embeds`` that are all zero count as "not embedded": appearance is ignored
for them and they leave the feature EMA unchanged.
"""
from __future__ import annotations

import numpy as np

from trackers import kalman
from trackers.byte_tracker import LOST, ByteTracker, Frame, Stage
from trackers.gmc import build_gmc, warp_states
from trackers.matching import buffered_iou, embedding_distance, fuse_score, gate
from trackers.occlusion import gallery_add, gallery_distance

SWITCH_MIN_SEEN = 100      # embedded matches of a camera seen before its noise level (median distance) is trusted
SWITCH_BINS = 200          # resolution of that median: half cosine distances in [0, 1]


class AppearanceTracker(ByteTracker):
    """ByteTracker + appearance (see the module docstring); extra arguments are the appearance settings."""

    def __init__(self, track_high_thresh: float = 0.5, track_low_thresh: float = 0.1,
                 new_track_thresh: float = 0.6, match_thresh: float = 0.8, low_match_thresh: float = 0.5,
                 unconfirmed_match_thresh: float = 0.7, track_buffer: int = 30, frame_rate: float = 30.0,
                 fuse_score: bool = True, min_box_area: float = 10.0, duplicate_iou: float = 0.85,
                 appearance_thresh: float = 0.25, proximity_thresh: float = 0.5,
                 reacquire_thresh: float = 0.2, ema_alpha: float = 0.9, gmc: str = "none",
                 appearance_every: int = 1, gallery_size: int = 0, observation_update: bool = False,
                 recover_thresh: float = 0.0, birth_iou: float = 1.0, score_reference: float = 0.0,
                 appearance_veto: float = 0.0, switch_thresh: float = 0.0, switch_count: int = 5,
                 switch_scale: float = 3.0, motion_buffer: float = 0.0, motion_buffer_from: float = 0.15):
        if not 0.0 <= ema_alpha <= 1.0:
            raise ValueError(f"ema_alpha must be in [0, 1], got {ema_alpha}")
        if appearance_every < 1:
            raise ValueError(f"appearance_every must be >= 1, got {appearance_every}")
        if gallery_size < 0:
            raise ValueError(f"gallery_size must be >= 0, got {gallery_size}")
        if switch_count < 1 or switch_scale < 0:
            raise ValueError(f"switch_count must be >= 1 and switch_scale >= 0, got {switch_count}, {switch_scale}")
        self.appearance_every = int(appearance_every)
        self.gallery_size = int(gallery_size)
        self.appearance_thresh = appearance_thresh
        self.appearance_veto = appearance_veto
        self.switch_thresh = float(switch_thresh)
        self.switch_count = int(switch_count)
        self.switch_scale = float(switch_scale)
        self._match_dist = np.zeros(SWITCH_BINS, np.int64)   # histogram of this camera's match distances
        self.switches = 0                    # tracks split at an identity switch so far
        self.proximity_thresh = proximity_thresh
        self.reacquire_thresh = reacquire_thresh
        self.ema_alpha = ema_alpha
        self.gmc = build_gmc(gmc)  # per-camera motion estimator for the caller, or None
        super().__init__(track_high_thresh, track_low_thresh, new_track_thresh, match_thresh,
                         low_match_thresh, unconfirmed_match_thresh, track_buffer, frame_rate,
                         fuse_score, min_box_area, duplicate_iou, observation_update, recover_thresh, birth_iou,
                         score_reference, motion_buffer, motion_buffer_from)

    def reset(self) -> None:
        super().reset()
        if self.gmc is not None:
            self.gmc.reset()

    def build_stages(self, match_thresh, low_match_thresh, unconfirmed_match_thresh):
        stages = list(super().build_stages(match_thresh, low_match_thresh, unconfirmed_match_thresh))
        if self.reacquire_thresh > 0:      # after ByteTrack's high and low stages, before the rest
            stages.insert(2, Stage("reacquire", "lost", "high", "reacquire_cost", self.reacquire_thresh))
        return tuple(stages)

    # ------------------------------------------------------------------ lazy embedding
    def embedding_mask(self, dets: np.ndarray) -> np.ndarray:
        """(N,) bool over the rows of ``dets`` (as passed to the next ``update``): the detections
        whose embeddings that update can use (see the module docstring). Changes no state."""
        dets = np.asarray(dets, dtype=np.float64).reshape(-1, 6)
        high = self._kept(dets) & (dets[:, 4] >= self.track_high_thresh)
        ts = self.tracks
        pool = (ts.ids > 0).nonzero()[0]
        if (self.appearance_every == 1 or (self.frame_id + 1) % self.appearance_every == 0
                or self.gmc is not None or not len(pool) or not high.any()):
            return high
        means = ts.means[pool].copy()
        means[ts.state[pool] == LOST, 7] = 0.0
        means, _ = kalman.predict(means, ts.covs[pool])
        d_idx = high.nonzero()[0]
        iou = buffered_iou(kalman.xyah_to_xyxy(means), dets[d_idx, :4], self.iou_buffer)   # (T, M), as the first stage
        cost = fuse_score(1.0 - iou, dets[d_idx, 4]) if self.fuse_score else 1.0 - iou
        cand = (cost <= self.stages[0].thresh) | (iou >= self.proximity_thresh)
        per_det, per_track = cand.sum(0), cand.sum(1)
        forced = (per_det == 1) & (per_track[cand.argmax(0)] == 1)
        mask = np.zeros(len(dets), dtype=bool)
        mask[d_idx[~forced]] = True
        return mask

    # ------------------------------------------------------------------ costs
    def _appearance(self, frame: Frame, t_idx: np.ndarray, d_idx: np.ndarray) -> np.ndarray | None:
        """Half cosine distance (n, m) between track feature EMAs and detection embeddings, 1 where a
        track has no feature yet; None without embeddings."""
        if frame.embeds is None:
            return None
        ts = self.tracks
        ts.ensure_feature_dim(frame.embeds.shape[1])
        dist = embedding_distance(ts.features[t_idx], frame.embeds[d_idx]) / 2.0
        dist[~ts.has_feat[t_idx]] = 1.0
        dist[:, ~_embedded(frame.embeds[d_idx])] = 1.0
        return dist

    def motion_cost(self, frame: Frame, t_idx: np.ndarray, d_idx: np.ndarray) -> np.ndarray:
        iou_cost = self.iou_cost(frame, t_idx, d_idx)
        cost = fuse_score(iou_cost, frame.scores[d_idx]) if self.fuse_score else iou_cost
        emb = self._appearance(frame, t_idx, d_idx)
        if emb is None:
            return cost
        veto = self._vetoed(frame, t_idx, d_idx, emb)
        emb[(emb > self.appearance_thresh) | (iou_cost > 1.0 - self.proximity_thresh)] = 1.0
        cost = np.minimum(cost, emb)
        if veto is not None:
            cost[veto] = 1.0
        return cost

    def _vetoed(self, frame: Frame, t_idx: np.ndarray, d_idx: np.ndarray, emb: np.ndarray) -> np.ndarray | None:
        """(n, m) bool: pairs (track, detection), both with a feature, where another of the stage's tracks looks
        closer to the detection by more than ``appearance_veto`` (the detection is someone else's)."""
        if not self.appearance_veto > 0 or len(t_idx) < 2:
            return None
        seen = self.tracks.has_feat[t_idx][:, None] & _embedded(frame.embeds[d_idx])[None, :]
        dist = np.where(seen, emb, np.inf)
        order = np.argsort(dist, axis=0)
        best = np.take_along_axis(dist, order[:1], axis=0)            # (1, m) closest track
        second = np.take_along_axis(dist, order[1:2], axis=0)         # (1, m) next closest
        rows = np.arange(len(t_idx))[:, None]
        closest_other = np.where(rows == order[:1], second, best)     # (n, m) closest track but this one
        with np.errstate(invalid="ignore"):
            return seen & (dist - closest_other > self.appearance_veto)

    def reacquire_cost(self, frame: Frame, t_idx: np.ndarray, d_idx: np.ndarray) -> np.ndarray:
        emb = self._appearance(frame, t_idx, d_idx)
        if emb is not None and self.gallery_size:
            ts = self.tracks
            gal = gallery_distance(ts.gallery[t_idx], ts.gallery_n[t_idx], _normalise(frame.embeds[d_idx])) / 2.0
            gal[:, ~_embedded(frame.embeds[d_idx])] = 1.0
            emb = np.where(ts.gallery_n[t_idx, None] > 0, gal, emb)
        if emb is None:
            return np.full((len(t_idx), len(d_idx)), np.inf)
        ts = self.tracks
        z = kalman.xyxy_to_xyah(frame.det_boxes[d_idx])
        maha = kalman.gating_distance(ts.means[t_idx], ts.covs[t_idx], z)
        return gate(emb, maha, kalman.CHI2_95[4])

    # ------------------------------------------------------------------ hooks
    def compensate_motion(self, means, covs, warp):
        warp = np.asarray(warp, dtype=np.float64)
        if warp.shape != (2, 3):
            raise ValueError(f"warp must be a (2, 3) affine matrix, got shape {warp.shape}")
        return warp_states(means, covs, warp)

    def on_matched(self, frame: Frame, t_idx: np.ndarray, d_idx: np.ndarray) -> None:
        if frame.embeds is None:
            return
        ts = self.tracks
        ts.ensure_feature_dim(frame.embeds.shape[1])
        ok = _embedded(frame.embeds[d_idx])
        t_idx, d_idx = t_idx[ok], d_idx[ok]
        new = _normalise(frame.embeds[d_idx])                              # (K, D)
        if self.switch_thresh > 0:
            t_idx, new = self._watch_switches(t_idx, new)
        old = np.where(ts.has_feat[t_idx, None], ts.features[t_idx], new)
        ts.features[t_idx] = _normalise(self.ema_alpha * old + (1.0 - self.ema_alpha) * new)
        ts.has_feat[t_idx] = True
        gallery_add(ts.gallery, ts.gallery_n, t_idx, new)

    def _watch_switches(self, t_idx: np.ndarray, new: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Count, per matched track, embeddings (K, D) in a row unlike the feature the track had before the
        first of them; split the tracks that reach ``switch_count``. Returns the rows (and their embeddings)
        that update the feature EMA: all but the split ones."""
        ts = self.tracks
        seen = ts.has_feat[t_idx] & (ts.ids[t_idx] > 0)
        noise = (1.0 - np.sum(ts.features[t_idx[seen]] * new[seen], axis=1)) / 2.0
        self._match_dist += np.bincount(np.clip((noise * SWITCH_BINS).astype(np.int64), 0, SWITCH_BINS - 1),
                                        minlength=SWITCH_BINS)
        fresh = ts.drift_n[t_idx] == 0
        ts.drift_ref[t_idx[fresh]] = ts.features[t_idx[fresh]]      # the look before a possible switch
        far = seen & ((1.0 - np.sum(ts.drift_ref[t_idx] * new, axis=1)) / 2.0 > self.switch_threshold())
        ts.drift_n[t_idx[~far]] = 0
        ts.drift_sum[t_idx[~far]] = 0.0
        rows = t_idx[far]
        ts.drift_n[rows] += 1
        ts.drift_sum[rows] += new[far]
        split = ts.drift_n[t_idx] >= self.switch_count
        self._split(t_idx[split])
        return t_idx[~split], new[~split]

    def switch_threshold(self) -> float:
        """The distance beyond which an embedded match counts towards a split: ``switch_thresh`` or
        ``switch_scale`` x this camera's median match distance, whichever is larger (inf until
        ``SWITCH_MIN_SEEN`` distances were seen)."""
        seen = int(self._match_dist.sum())
        if seen < SWITCH_MIN_SEEN:
            return np.inf
        median = (int(np.searchsorted(np.cumsum(self._match_dist), (seen + 1) / 2)) + 0.5) / SWITCH_BINS
        return max(self.switch_thresh, self.switch_scale * median)

    def _split(self, rows: np.ndarray) -> None:
        """End the ids of ``rows`` and go on under new ids whose feature is the drifting embeddings' mean
        (the Kalman state and the box stay: the new person is where the track is)."""
        if not len(rows):
            return
        ts = self.tracks
        self._end_ids(ts.ids[rows])
        ts.ids[rows] = 0
        self._confirm(rows)
        ts.start[rows] = self.frame_id
        ts.hits[rows] = ts.drift_n[rows]
        ts.features[rows] = _normalise(ts.drift_sum[rows])
        ts.gallery_n[rows] = 0
        gallery_add(ts.gallery, ts.gallery_n, rows, ts.features[rows])
        ts.drift_n[rows] = 0
        ts.drift_sum[rows] = 0.0
        self.switches += len(rows)

    def on_started(self, frame: Frame, t_idx: np.ndarray, d_idx: np.ndarray) -> None:
        if frame.embeds is None:
            return
        ts = self.tracks
        ts.ensure_feature_dim(frame.embeds.shape[1])
        ts.features[t_idx] = _normalise(frame.embeds[d_idx])
        ts.has_feat[t_idx] = _embedded(frame.embeds[d_idx])
        ok = ts.has_feat[t_idx]
        gallery_add(ts.gallery, ts.gallery_n, t_idx[ok], ts.features[t_idx[ok]])


def _embedded(x: np.ndarray) -> np.ndarray:
    """(N,) bool: rows of x (N, D) that hold an embedding (not all zero)."""
    return np.abs(x).sum(1) > 0


def _normalise(x: np.ndarray) -> np.ndarray:
    """Rows of x (N, D) scaled to unit L2 norm (zero rows stay zero)."""
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)

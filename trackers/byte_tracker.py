"""ByteTrack (Zhang et al., ECCV 2022): two-stage association of high- then low-score detections.

One instance per camera; numpy in, numpy out. ``update(dets, embeds)`` takes detections
(N, 6) x1, y1, x2, y2, score, cls and returns the confirmed, currently tracked boxes
(M, 8) x1, y1, x2, y2, track_id, score, cls, det_idx. The association is a list of
:class:`Stage` records run in order; subclasses add stages or override cost methods and hooks.
All tracks live in one :class:`~trackers.track.TrackSet`, so prediction, correction and
bookkeeping are batched numpy operations with no per-track Python loop.
"""
from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass

import numpy as np

from trackers import kalman
from core.boxes import iou_matrix
from trackers.matching import assignment_pairs, fuse_score, iou_distance
from trackers.occlusion import covered, reupdate
from trackers.score_scale import ScoreScale
from trackers.track import TrackSet, TrackState

log = logging.getLogger(__name__)

MAX_FINISHED = 100_000  # finished ids kept for pop_finished(); older ones are dropped with a warning
TRACKED, LOST, REMOVED = int(TrackState.TRACKED), int(TrackState.LOST), int(TrackState.REMOVED)


@dataclass(frozen=True)
class Stage:
    """One association step: free tracks of group ``tracks`` vs free detections of group ``dets``."""
    name: str
    tracks: str    # "pool" (confirmed, tracked or lost) | "tracked" | "lost" | "unconfirmed"
    dets: str      # "high" | "low"
    cost: str      # name of a tracker method (frame, track_idx, det_idx) -> cost (n, m)
    thresh: float  # pairs costing more are not matched


class Frame:
    """Scratch data of one ``update`` call (never kept between frames)."""

    __slots__ = ("boxes", "groups", "t_free", "dets", "det_ids", "det_boxes", "scores", "embeds",
                 "det_groups", "d_free", "match_t", "match_d")

    def __init__(self, dets: np.ndarray, det_ids: np.ndarray, embeds: np.ndarray | None, high: np.ndarray):
        self.boxes = np.zeros((0, 4))                          # (T, 4) predicted track boxes xyxy
        self.groups: dict[str, np.ndarray] = {}                # name -> (T,) bool
        self.t_free = np.zeros(0, dtype=bool)                  # (T,) not matched yet
        self.dets = dets                                       # (K, 6) kept detections
        self.det_ids = det_ids                                 # (K,) their rows in the input
        self.det_boxes = dets[:, :4]                           # (K, 4)
        self.scores = dets[:, 4]                               # (K,)
        self.embeds = embeds                                   # (K, D) float32 or None
        self.det_groups = {"high": high, "low": ~high}         # name -> (K,) bool
        self.d_free = np.ones(len(dets), dtype=bool)           # (K,)
        self.match_t: list[np.ndarray] = []                    # matched track rows, per stage
        self.match_d: list[np.ndarray] = []                    # matched detection rows, per stage


class ByteTracker:
    """ByteTrack with every threshold a named argument (see ``trackers.config.TrackerConfig``)."""

    def __init__(self, track_high_thresh: float = 0.5, track_low_thresh: float = 0.1,
                 new_track_thresh: float = 0.6, match_thresh: float = 0.8, low_match_thresh: float = 0.5,
                 unconfirmed_match_thresh: float = 0.7, track_buffer: int = 30, frame_rate: float = 30.0,
                 fuse_score: bool = True, min_box_area: float = 10.0, duplicate_iou: float = 0.85,
                 observation_update: bool = False, recover_thresh: float = 0.0, birth_iou: float = 1.0,
                 score_reference: float = 0.0, motion_buffer: float = 0.0, motion_buffer_from: float = 0.15):
        if not 0 <= track_low_thresh <= track_high_thresh:
            raise ValueError(f"need 0 <= track_low_thresh ({track_low_thresh}) <= track_high_thresh "
                             f"({track_high_thresh})")
        if frame_rate <= 0 or track_buffer < 0:
            raise ValueError(f"frame_rate must be > 0 and track_buffer >= 0, got {frame_rate}, {track_buffer}")
        if not (motion_buffer >= 0 and motion_buffer_from >= 0):
            raise ValueError(f"motion_buffer and motion_buffer_from must be >= 0, got {motion_buffer}, "
                             f"{motion_buffer_from}")
        self.track_high_thresh = track_high_thresh
        self.track_low_thresh = track_low_thresh
        self.new_track_thresh = new_track_thresh
        self.base_thresholds = (track_high_thresh, new_track_thresh)   # as set; scaled by the camera's scores
        self.score_scale = ScoreScale(score_reference)
        self.fuse_score = fuse_score
        self.min_box_area = min_box_area
        self.duplicate_iou = duplicate_iou
        self.observation_update = bool(observation_update)  # OC-SORT re-update after a gap
        self.recover_thresh = float(recover_thresh)          # OC-SORT recovery stage (0: off)
        self.birth_iou = float(birth_iou)                    # no birth on a live track's box (1: off)
        # boxes widened by this fraction of their size per side before IoU: motion_buffer box sizes per second of
        # the time between two analysed frames beyond motion_buffer_from (0 at frame rates the Kalman filter
        # follows people at; below, they move further between two frames than its prediction holds)
        self.iou_buffer = float(motion_buffer) * max(0.0, 1.0 / float(frame_rate) - float(motion_buffer_from))
        # a lost track can be re-found after at most max_lost frames without a match
        self.max_lost = max(1, int(frame_rate / 30.0 * track_buffer))
        self.stages = self.build_stages(match_thresh, low_match_thresh, unconfirmed_match_thresh)
        self.frame_id = 0
        self.tracks = self._new_trackset()      # live tracks: tracked (confirmed or not) and lost
        self._next_id = 1                       # per-instance id counter
        self._finished: deque[int] = deque()    # confirmed ids removed since the last pop_finished()
        self._warned_finished = False           # the overflow warning of _finished was logged

    def build_stages(self, match_thresh: float, low_match_thresh: float,
                     unconfirmed_match_thresh: float) -> tuple[Stage, ...]:
        """ByteTrack's association order (+ OC-SORT's recovery when ``recover_thresh`` > 0); subclasses
        may insert stages."""
        stages = [Stage("high", "pool", "high", "motion_cost", match_thresh),
                  Stage("low", "tracked", "low", "plain_iou_cost", low_match_thresh)]  # IoU only (paper 3.2)
        if self.recover_thresh > 0:
            stages.append(Stage("recover", "pool", "high", "observation_cost", self.recover_thresh))
        return (*stages, Stage("unconfirmed", "unconfirmed", "high", "motion_cost", unconfirmed_match_thresh))

    def _new_trackset(self) -> TrackSet:
        """An empty TrackSet (subclasses with a feature gallery give its size)."""
        return TrackSet(getattr(self, "gallery_size", 0))

    # ------------------------------------------------------------------ public API
    def update(self, dets: np.ndarray, embeds: np.ndarray | None = None,
               warp: np.ndarray | None = None) -> np.ndarray:
        """Advance one frame -> (M, 8) x1, y1, x2, y2, track_id, score, cls, det_idx of tracked boxes.

        dets: (N, 6) x1, y1, x2, y2, score, cls; embeds: (N, D) features or None; warp: optional
        (2, 3) affine camera motion from the previous frame to this one (see ``trackers.gmc``).
        """
        self.frame_id += 1
        frame = self._prepare(dets, embeds)
        self._predict(frame, warp)
        for stage in self.stages:
            self._run_stage(frame, stage)
        self._apply_matches(frame)
        self._end_unmatched(frame)
        self._start_tracks(frame)
        self._remove_stale_and_duplicates()
        self._rescale_thresholds(frame.scores)
        return self._output()

    def _rescale_thresholds(self, scores: np.ndarray) -> None:
        """Count this frame's scores; the next frames use thresholds scaled to the camera's score range
        (trackers.score_scale; unchanged while ``score_reference`` is 0)."""
        factor = self.score_scale.add(scores)
        high, new = self.base_thresholds
        self.track_high_thresh = max(self.track_low_thresh, high * factor)
        self.new_track_thresh = new * factor

    def pop_finished(self) -> list[int]:
        """Ids of confirmed tracks removed since the last call (so the caller can close tracklets)."""
        out = list(self._finished)
        self._finished.clear()
        return out

    def reset(self) -> None:
        """Forget all tracks and restart ids at 1 (for a new video on the same camera)."""
        self.frame_id, self.tracks, self._next_id = 0, self._new_trackset(), 1
        self._finished.clear()

    # ------------------------------------------------------------------ frame steps
    def _prepare(self, dets: np.ndarray, embeds: np.ndarray | None) -> Frame:
        dets = np.asarray(dets, dtype=np.float64)
        if dets.size == 0:
            dets = np.zeros((0, 6))
        if dets.ndim != 2 or dets.shape[1] != 6:
            raise ValueError(f"dets must be (N, 6) x1,y1,x2,y2,score,cls, got shape {dets.shape}")
        if embeds is not None and len(dets) == 0:
            embeds = None                                  # nothing to compare; any (0, ...) shape is fine
        if embeds is not None:
            embeds = np.asarray(embeds, dtype=np.float32)
            if embeds.ndim != 2 or len(embeds) != len(dets):
                raise ValueError(f"embeds must be (N, D) with N = {len(dets)} detections, got {embeds.shape}")
        det_ids = self._kept(dets).nonzero()[0]
        dets = dets[det_ids]
        high = dets[:, 4] >= self.track_high_thresh
        return Frame(dets, det_ids, None if embeds is None else embeds[det_ids], high)

    def _kept(self, dets: np.ndarray) -> np.ndarray:
        """(N,) bool: detections (N, 6) with a real box of at least ``min_box_area`` and a score above
        ``track_low_thresh`` (nan/inf boxes and scores fail these tests)."""
        w, h = dets[:, 2] - dets[:, 0], dets[:, 3] - dets[:, 1]
        area = w * h
        return ((w > 0) & (h > 0) & (area >= self.min_box_area) & (area < np.inf)
                & (dets[:, 4] > self.track_low_thresh))

    def _predict(self, frame: Frame, warp: np.ndarray | None) -> None:
        """Kalman-predict confirmed tracks (lost ones without height velocity); fill boxes and groups."""
        ts = self.tracks
        confirmed = ts.ids > 0
        lost = ts.state == LOST
        ts.means[lost, 7] = 0.0
        if confirmed.all():
            ts.means, ts.covs = kalman.predict(ts.means, ts.covs)
        elif confirmed.any():
            ts.means[confirmed], ts.covs[confirmed] = kalman.predict(ts.means[confirmed], ts.covs[confirmed])
        if warp is not None and len(ts):
            ts.means, ts.covs = self.compensate_motion(ts.means, ts.covs, warp)
        frame.boxes = kalman.xyah_to_xyxy(ts.means)
        frame.t_free = np.ones(len(ts), dtype=bool)
        frame.groups = {"pool": confirmed, "tracked": confirmed & ~lost, "lost": lost, "unconfirmed": ~confirmed}

    def compensate_motion(self, means: np.ndarray, covs: np.ndarray, warp: np.ndarray):
        """Hook for camera-motion compensation; ByteTrack has none and ignores ``warp``."""
        return means, covs

    def _run_stage(self, frame: Frame, stage: Stage) -> None:
        t_idx = (frame.t_free & frame.groups[stage.tracks]).nonzero()[0]
        if len(t_idx) == 0:
            return
        d_idx = (frame.d_free & frame.det_groups[stage.dets]).nonzero()[0]
        if len(d_idx) == 0:
            return
        cost = getattr(self, stage.cost)(frame, t_idx, d_idx)       # (n, m)
        rows, cols = assignment_pairs(cost, stage.thresh)
        if len(rows):
            ti, di = t_idx[rows], d_idx[cols]
            frame.t_free[ti] = False
            frame.d_free[di] = False
            frame.match_t.append(ti)
            frame.match_d.append(di)

    def _apply_matches(self, frame: Frame) -> None:
        """One batched Kalman correction for all tracks matched in any stage, then bookkeeping."""
        if not frame.match_t:
            return
        ti, di = np.concatenate(frame.match_t), np.concatenate(frame.match_d)
        ts = self.tracks
        z = kalman.xyxy_to_xyah(frame.det_boxes[di])
        ts.means[ti], ts.covs[ti] = kalman.update(ts.means[ti], ts.covs[ti], z)
        if self.observation_update:
            gap = self.frame_id - ts.last[ti]
            again = gap > 1
            if again.any():
                r = ti[again]
                ts.means[r], ts.covs[r] = reupdate(ts.obs_means[r], ts.obs_covs[r], ts.obs_z[r], z[again], gap[again])
        ts.obs_z[ti], ts.obs_means[ti], ts.obs_covs[ti] = z, ts.means[ti], ts.covs[ti]
        ts.state[ti] = TRACKED
        ts.score[ti] = frame.scores[di]
        ts.cls[ti] = frame.dets[di, 5]
        ts.det_idx[ti] = frame.det_ids[di]
        ts.last[ti] = self.frame_id
        ts.hits[ti] += 1
        self._confirm(ti[ts.ids[ti] == 0])
        self.on_matched(frame, ti, di)

    def on_matched(self, frame: Frame, t_idx: np.ndarray, d_idx: np.ndarray) -> None:
        """Hook after matched tracks t_idx were updated with detections d_idx (e.g. feature EMA)."""

    def _end_unmatched(self, frame: Frame) -> None:
        """Unmatched tracked tracks become lost; unmatched unconfirmed tracks are removed."""
        ts = self.tracks
        if not len(ts):
            return
        ts.state[frame.t_free & frame.groups["tracked"]] = LOST
        ts.state[frame.t_free & frame.groups["unconfirmed"]] = REMOVED

    def _start_tracks(self, frame: Frame) -> None:
        new = (frame.d_free & frame.det_groups["high"] & (frame.scores >= self.new_track_thresh)).nonzero()[0]
        if self.birth_iou < 1.0 and len(new):
            new = new[~covered(frame.det_boxes[new], self._live_boxes(), self.birth_iou)]
        if not len(new):
            return
        born = self.tracks.new_rows(len(new))
        born.means, born.covs = kalman.initiate(kalman.xyxy_to_xyah(frame.det_boxes[new]))
        born.obs_z, born.obs_means, born.obs_covs = kalman.xyxy_to_xyah(frame.det_boxes[new]), born.means, born.covs
        born.state[:] = TRACKED
        born.score, born.cls, born.det_idx = frame.scores[new], frame.dets[new, 5], frame.det_ids[new]
        born.start[:] = born.last[:] = self.frame_id
        born.hits[:] = 1
        first = len(self.tracks)
        self.tracks.extend(born)
        rows = np.arange(first, first + len(new))
        if self.frame_id == 1:  # as ByteTrack: tracks born in the first frame are confirmed
            self._confirm(rows)
        self.on_started(frame, rows, new)

    def on_started(self, frame: Frame, t_idx: np.ndarray, d_idx: np.ndarray) -> None:
        """Hook after new tracks t_idx were created from detections d_idx."""

    def _remove_stale_and_duplicates(self) -> None:
        """Drop lost tracks older than the buffer and lost/tracked pairs that overlap almost fully."""
        ts = self.tracks
        lost = ts.state == LOST
        self._remove((lost & (self.frame_id - ts.last > self.max_lost)).nonzero()[0])
        lost = (ts.state == LOST).nonzero()[0]
        if len(lost):
            tracked = (ts.state == TRACKED).nonzero()[0]
            boxes = kalman.xyah_to_xyxy(ts.means)
            p, q = np.nonzero(iou_matrix(boxes[tracked], boxes[lost]) > self.duplicate_iou)
            if len(p):
                a, b = tracked[p], lost[q]
                age = ts.last - ts.start
                self._remove(np.unique(np.where(age[a] > age[b], b, a)))  # keep the longer-lived one
        removed = ts.state == REMOVED
        if removed.any():
            ts.keep(~removed)

    def _output(self) -> np.ndarray:
        ts = self.tracks
        live = ((ts.state == TRACKED) & (ts.ids > 0)).nonzero()[0]
        out = np.empty((len(live), 8))
        out[:, :4] = kalman.xyah_to_xyxy(ts.means[live])
        out[:, 4], out[:, 5], out[:, 6], out[:, 7] = ts.ids[live], ts.score[live], ts.cls[live], ts.det_idx[live]
        return out

    # ------------------------------------------------------------------ helpers
    def _confirm(self, rows: np.ndarray) -> None:
        if len(rows):
            self.tracks.ids[rows] = np.arange(self._next_id, self._next_id + len(rows))
            self._next_id += len(rows)

    def _remove(self, rows: np.ndarray) -> None:
        if not len(rows):
            return
        ts = self.tracks
        ids = ts.ids[rows]
        ts.state[rows] = REMOVED
        self._end_ids(ids[ids > 0])

    def _end_ids(self, ids: np.ndarray) -> None:
        """Queue confirmed track ids that ended for ``pop_finished``."""
        self._finished.extend(ids.tolist())
        if len(self._finished) > MAX_FINISHED:
            if not self._warned_finished:
                log.warning("pop_finished() not called for %d finished tracks: dropping the oldest ids",
                            MAX_FINISHED)
                self._warned_finished = True
            while len(self._finished) > MAX_FINISHED:
                self._finished.popleft()

    def _live_boxes(self) -> np.ndarray:
        """(K, 4) boxes of the tracks matched in this frame (they were updated before births)."""
        ts = self.tracks
        live = (ts.state == TRACKED) & (ts.last == self.frame_id)
        return kalman.xyah_to_xyxy(ts.means[live])

    # ------------------------------------------------------------------ costs
    def observation_cost(self, frame: Frame, t_idx: np.ndarray, d_idx: np.ndarray) -> np.ndarray:
        """1 - IoU of each track's last observed box (not its prediction) and the detections (OC-SORT's
        observation-centric recovery) -> (n, m)."""
        return iou_distance(kalman.xyah_to_xyxy(self.tracks.obs_z[t_idx]), frame.det_boxes[d_idx])

    def iou_cost(self, frame: Frame, t_idx: np.ndarray, d_idx: np.ndarray) -> np.ndarray:
        """1 - IoU of predicted track boxes and detections, each widened by ``iou_buffer`` of its size -> (n, m)."""
        return iou_distance(frame.boxes[t_idx], frame.det_boxes[d_idx], self.iou_buffer)

    def plain_iou_cost(self, frame: Frame, t_idx: np.ndarray, d_idx: np.ndarray) -> np.ndarray:
        """1 - IoU of predicted track boxes and detections, never widened: the low-score stage (mostly people
        partly hidden by others, whom a widened box would reach from a neighbour's track) -> (n, m)."""
        return iou_distance(frame.boxes[t_idx], frame.det_boxes[d_idx])

    def motion_cost(self, frame: Frame, t_idx: np.ndarray, d_idx: np.ndarray) -> np.ndarray:
        """IoU cost, weighted by detection score when ``fuse_score`` -> (n, m)."""
        cost = self.iou_cost(frame, t_idx, d_idx)
        return fuse_score(cost, frame.scores[d_idx]) if self.fuse_score else cost

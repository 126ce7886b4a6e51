"""Per-camera tracklet accumulation with bounded memory.

For each live track the store keeps only: its frame span and box count, a gallery of the
``gallery_size`` best-quality features, a few JPEG thumbnails and a running (quality-weighted)
attribute mean. Boxes are streamed to ``box_path`` (one CSV line per box: frame, local id, x1, y1, x2,
y2, score) instead of being kept. Tracks are closed into :class:`pipeline.tracklet.Tracklet` when the
tracker reports them finished and at the end of the video; their thumbnails go to ``thumb_dir``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional, Sequence

import cv2
import numpy as np

from pipeline.runfolder.layout import cache_thumb_name
from pipeline.tracklet import Tracklet

log = logging.getLogger(__name__)

THUMB_HEIGHT = 128
NEVER = -(10 ** 9)


@dataclass(frozen=True)
class FallbackCrop:
    """The best crop of a track none of whose crops passed the embedding policy (crops.py)."""
    track_id: int
    quality: float
    frame: int
    image: np.ndarray            # BGR, owned (not a view of the frame)


class _LiveTrack:
    """State of one track that is still open (every attribute set here)."""

    def __init__(self, track_id: int, frame: int, gallery_size: int, num_thumbs: int):
        self.track_id = track_id
        self.start_frame = frame
        self.end_frame = frame
        self.n_boxes = 0
        self.first_box: Optional[np.ndarray] = None   # (4,) xyxy at start_frame
        self.last_box: Optional[np.ndarray] = None    # (4,) xyxy at end_frame
        self.last_embedded = NEVER          # analysed-frame number of the last embedding
        self.gallery_size = gallery_size
        self.num_thumbs = num_thumbs
        self.features: list[np.ndarray] = []   # up to gallery_size (D,) float32
        self.weights: list[float] = []
        self.attr_sum: Optional[np.ndarray] = None   # (A,) float64, quality-weighted
        self.attr_weight = 0.0
        self.thumbs: list[tuple[float, int, bytes]] = []   # (quality, frame, jpeg)
        self.fallback: Optional[FallbackCrop] = None   # its best crop so far, while it has no feature

    def add_feature(self, feat: np.ndarray, weight: float) -> None:
        self.fallback = None
        if len(self.features) < self.gallery_size:
            self.features.append(feat)
            self.weights.append(weight)
            return
        worst = int(np.argmin(self.weights))
        if weight > self.weights[worst]:
            self.features[worst] = feat
            self.weights[worst] = weight

    def add_attributes(self, attrs: np.ndarray, weight: float) -> None:
        w = max(weight, 1e-3)
        self.attr_sum = attrs.astype(np.float64) * w if self.attr_sum is None else self.attr_sum + attrs * w
        self.attr_weight += w

    def add_thumb(self, image: np.ndarray, quality: float, frame: int) -> None:
        if self.num_thumbs <= 0:
            return
        if len(self.thumbs) >= self.num_thumbs and quality <= min(t[0] for t in self.thumbs):
            return
        h, w = image.shape[:2]
        scale = THUMB_HEIGHT / max(h, 1)
        small = cv2.resize(image, (max(1, round(w * scale)), THUMB_HEIGHT), interpolation=cv2.INTER_AREA)
        ok, buf = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 85])
        if not ok:
            return
        self.thumbs.append((quality, frame, buf.tobytes()))
        self.thumbs.sort(key=lambda t: -t[0])
        del self.thumbs[self.num_thumbs:]


class TrackletStore:
    """Live tracks of one camera -> finished Tracklets; memory bounded by the number of live tracks."""

    def __init__(self, camera: str, fps: float, *, offset: float = 0.0, gallery_size: int = 10,
                 thumbnails: int = 4, box_path: Optional[Path] = None, thumb_dir: Optional[Path] = None,
                 attribute_names: Sequence[str] = ()):
        self.camera = camera
        self.fps = float(fps)
        self.offset = float(offset)
        self.gallery_size = max(1, int(gallery_size))
        self.num_thumbs = int(thumbnails)
        self.attribute_names = tuple(attribute_names)
        self.live: dict[int, _LiveTrack] = {}
        self.awaiting: dict[int, _LiveTrack] = {}       # ended tracks waiting for their fallback crop's feature
        self.finished: list[Tracklet] = []
        self.thumb_paths: dict[int, list[str]] = {}     # track id -> thumbnail files (relative to thumb_dir)
        self.thumb_dir = Path(thumb_dir) if thumb_dir is not None else None
        self._box_file = open(box_path, "w") if box_path is not None else None
        self.n_boxes = 0

    # ---- per frame -------------------------------------------------------------------------
    def add_tracks(self, frame: int, tracks: np.ndarray) -> np.ndarray:
        """Record the tracker output (M, 8) of ``frame``; returns (M,) boxes seen so far per track."""
        hits = np.zeros((len(tracks),), np.int64)
        for i, tid in enumerate(tracks[:, 4].astype(np.int64)):
            t = self.live.get(int(tid))
            if t is None:
                t = self.live[int(tid)] = _LiveTrack(int(tid), frame, self.gallery_size, self.num_thumbs)
            t.end_frame = frame
            t.last_box = tracks[i, :4].astype(np.float32)
            if t.first_box is None:
                t.first_box = t.last_box
            t.n_boxes += 1
            hits[i] = t.n_boxes
        if self._box_file is not None and len(tracks):
            rows = np.column_stack([np.full(len(tracks), frame), tracks[:, 4], tracks[:, :4], tracks[:, 5]])
            np.savetxt(self._box_file, rows, fmt=["%d", "%d", "%.2f", "%.2f", "%.2f", "%.2f", "%.4f"],
                       delimiter=",")
        self.n_boxes += len(tracks)
        return hits

    def embedding_state(self, track_ids: Iterable[int]) -> tuple[np.ndarray, np.ndarray]:
        """(K,) analysed-frame number of each track's last embedding (NEVER if none) and (K,) features in its
        gallery (0 for a track not live), in one pass."""
        live = [self.live.get(int(t)) for t in track_ids]
        return (np.array([NEVER if t is None else t.last_embedded for t in live], np.int64),
                np.array([0 if t is None else len(t.features) for t in live], np.int64))

    def wants_fallback(self, track_id: int, quality: float) -> bool:
        """Whether a crop of this quality would be the live track's fallback (it has no feature yet)."""
        t = self.live.get(int(track_id))
        return t is not None and not t.features and (t.fallback is None or quality > t.fallback.quality)

    def offer_fallback(self, crop: FallbackCrop) -> None:
        if self.wants_fallback(crop.track_id, crop.quality):
            self.live[crop.track_id].fallback = crop

    def add_features(self, frame: int, step: int, track_ids: Sequence[int], feats: np.ndarray,
                     attrs: Optional[np.ndarray], quality: np.ndarray,
                     crops: Optional[Sequence[np.ndarray]] = None) -> None:
        """Add embeddings (K, D), attribute probs (K, A) or None, quality (K,) of live tracks; a track
        awaiting its fallback crop's feature (:meth:`close_with_fallback`) is closed with it."""
        for k, tid in enumerate(track_ids):
            t = self.live.get(int(tid))
            ended = t is None
            if ended:
                t = self.awaiting.pop(int(tid), None)
            if t is None:
                continue
            t.last_embedded = step
            t.add_feature(np.asarray(feats[k], np.float32), float(quality[k]))
            if attrs is not None and attrs.shape[1] > 0:
                t.add_attributes(attrs[k], float(quality[k]))
            if crops is not None:
                t.add_thumb(crops[k], float(quality[k]), frame)
            if ended:
                self.finished.append(self._finish(t, fallback=True))

    # ---- closing ---------------------------------------------------------------------------
    def close(self, track_ids: Iterable[int]) -> list[Tracklet]:
        """Close the given tracks (finished by the tracker); returns the new Tracklets."""
        out = []
        for tid in track_ids:
            t = self.live.pop(int(tid), None)
            if t is not None and t.n_boxes > 0:
                out.append(self._finish(t))
        self.finished.extend(out)
        return out

    def close_with_fallback(self, track_ids: Iterable[int]) -> list[FallbackCrop]:
        """Close the given tracks, except those without a feature that have a fallback crop: they wait
        for its feature (:meth:`add_features` closes them); returns those crops, to be embedded."""
        wait = []
        for tid in track_ids:
            t = self.live.get(int(tid))
            if t is not None and not t.features and t.fallback is not None:
                self.awaiting[int(tid)] = self.live.pop(int(tid))
                wait.append(t.fallback)
            else:
                self.close([tid])
        return wait

    def close_all(self) -> list[Tracklet]:
        """Close every track as it is (those still awaiting a feature without one)."""
        waiting = [self._finish(t) for t in self.awaiting.values()]
        self.awaiting = {}
        self.finished.extend(waiting)
        out = waiting + self.close(sorted(self.live))
        if self._box_file is not None:
            self._box_file.close()
            self._box_file = None
        return out

    def _finish(self, t: _LiveTrack, fallback: bool = False) -> Tracklet:
        feats = np.stack(t.features).astype(np.float32) if t.features else np.zeros((0, 0), np.float32)
        attrs = (t.attr_sum / max(t.attr_weight, 1e-9)).astype(np.float32) if t.attr_sum is not None else None
        self.thumb_paths[t.track_id] = self._write_thumbs(t)
        return Tracklet(camera=self.camera, track_id=t.track_id, start_frame=t.start_frame,
                        end_frame=t.end_frame, start_time=self.offset + t.start_frame / self.fps,
                        end_time=self.offset + t.end_frame / self.fps, n_boxes=t.n_boxes, features=feats,
                        weights=np.asarray(t.weights, np.float32), attributes=attrs,
                        attribute_names=self.attribute_names if attrs is not None else (),
                        first_box=t.first_box, last_box=t.last_box, fallback=fallback)

    def _write_thumbs(self, t: _LiveTrack) -> list[str]:
        if self.thumb_dir is None or not t.thumbs:
            return []
        self.thumb_dir.mkdir(parents=True, exist_ok=True)
        names = []
        for k, (_, _, jpeg) in enumerate(sorted(t.thumbs, key=lambda x: x[1])):   # in time order
            name = cache_thumb_name(t.track_id, k)
            (self.thumb_dir / name).write_bytes(jpeg)
            names.append(name)
        return names

    def __del__(self):  # pragma: no cover - best effort if a run is interrupted
        f = getattr(self, "_box_file", None)
        if f is not None and not f.closed:
            try:
                f.close()
            except OSError:        # e.g. a full disk: the run has already failed with a message naming the file
                pass

"""The per-camera stage of ``mcmt run``: decode -> detect (batched over cameras) -> track -> embed
selected crops (batched over cameras) -> tracklets, with the stage cache in ``<out>/cache``.

``run_cameras`` does the loop for the cameras whose cache is missing or stale and returns statistics;
association and outputs are in :mod:`pipeline.outputs.write` so that ``mcmt associate`` can redo them alone.
"""
from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, NamedTuple, Optional, Sequence

import numpy as np

from pipeline.runfolder.cache import CameraCache, DetectionWriter, input_fingerprint, model_fingerprint, stage_key
from core.config import to_dict
from pipeline.run.colour import apply_gains, camera_gains
from pipeline.run.crops import (CropPolicy, crop, crop_quality, fallback_candidates, select_for_embedding,
                                track_overlap)
from pipeline.run.detectors.files import FileDetections
from pipeline.run.embedding import CropBatch, Embedder, ReIDQueue
from pipeline.run.sharpness import camera_amount, sharpen
from pipeline.run.tracklet_store import FallbackCrop, TrackletStore
from pipeline.run.video import Frame, VideoSource

if TYPE_CHECKING:
    from pipeline.config import RunConfig

log = logging.getLogger(__name__)


@dataclass
class RunStats:
    frames: int = 0                  # analysed frames, all cameras
    corrupt: int = 0                 # frames skipped because they did not decode
    seconds: float = 0.0             # wall time of the per-camera stage
    detect_seconds: float = 0.0
    reid_seconds: float = 0.0
    track_seconds: float = 0.0
    detected_frames: int = 0         # frames that went through the detector (0 when all were cached)
    embedded_crops: int = 0
    fallback_crops: int = 0          # of those, best crops of tracks none of whose crops passed the policy
    reused_cameras: list[str] = field(default_factory=list)
    per_camera: dict[str, dict] = field(default_factory=dict)


# settings that do not change a stage's result (left out of its key)
NOT_KEYED = {"detector": ("device", "batch", "threads"), "reid": ("device", "batch_size", "threads")}


class StageKeys(NamedTuple):
    """The keys of one unit's stages (a tuple: ``det_key, track_key = keys``)."""
    det: str
    track: str


def unit_id(src: VideoSource) -> tuple[str, Optional[int]]:
    """What names one work unit: its camera and chunk (None: the whole camera)."""
    return src.name, src.chunk


def stage_keys(src: VideoSource, cfg: RunConfig, det_file: Optional[Path]) -> StageKeys:
    """(detect key, track key) of one camera or chunk: hashes of everything the stage's result depends on.
    Computed once per unit by the planning step (:func:`pipeline.run.backend.plan`) and passed down."""
    det_part = {"input": input_fingerprint(src.path), "stride": src.stride,
                "detector": (to_dict(cfg.detector) if det_file is None
                             else {"file": input_fingerprint(det_file), "score_scale": cfg.detector.score_scale})}
    for k in NOT_KEYED["detector"]:
        det_part["detector"].pop(k, None)
    if det_file is None:
        det_part["detector"]["model_file"] = _detector_fingerprint(cfg.detector.model)
    if src.chunk is not None:                   # a time chunk: its own frame range (keys of whole videos unchanged)
        det_part["range"] = [src.start, src.stop]
    amount = sharpen_amount(src, cfg)
    if amount > 0:                              # what the frames look like (keys of unsharpened cameras unchanged)
        det_part["sharpen"] = amount
    det_key = stage_key(det_part)
    reid = {k: v for k, v in to_dict(cfg.reid).items() if k not in NOT_KEYED["reid"]}
    reid["model_file"] = model_fingerprint(cfg.reid.checkpoint)
    tracker = to_dict(cfg.tracker)
    if not cfg.tracker.switch_thresh:           # the identity-switch split off: keys as before it existed
        for key in ("switch_thresh", "switch_count", "switch_scale"):
            tracker.pop(key)
    track_key = stage_key({"det": det_key, "tracker": tracker, "reid": reid,
                           "max_frames": src.max_frames, "offset": src.offset, "fps": src.fps})
    return StageKeys(det_key, track_key)


def sharpen_amount(src: VideoSource, cfg: RunConfig) -> float:
    """How much this camera's frames are sharpened before detection and crops (``video.sharpen``)."""
    return camera_amount(src.path, cfg.video.sharpen, cfg.video.sharpen_from)


def _sharpened(frames: Iterator[Frame], amount: float) -> Iterator[Frame]:
    for fr in frames:
        yield dataclasses.replace(fr, image=sharpen(fr.image, amount))


def _detector_fingerprint(model: str) -> Optional[dict]:
    """``model_fingerprint`` of the detector; the embedded ``default`` by its content hash; None for a
    released ultralytics name (``yolo11n.pt``): that name says which weights they are, and the file
    ultralytics downloads on first use must not change the key of a run interrupted after the download."""
    from pipeline.run.detectors import DEFAULT, default_fingerprint, released_name

    if str(model).strip().lower() == DEFAULT:
        return default_fingerprint()
    if released_name(model):
        return None
    return model_fingerprint(model)


def build_tracker_for(cfg: RunConfig, fps: float | None = None):
    """One tracker instance for one camera (numpy in, numpy out). ``tracker.frame_rate`` only scales
    ``track_buffer`` (ByteTrack convention: frames at 30 fps); 0 takes ``fps``, the camera's analysed
    frame rate (30 when unknown), so that a lost track lives a time, not a number of frames."""
    from trackers import build_tracker

    params = dataclasses.asdict(cfg.tracker)
    name = params.pop("name")
    if params["frame_rate"] <= 0:
        params["frame_rate"] = float(fps) if fps and fps > 0 else 30.0
    rate = params["frame_rate"]
    if not params["motion_buffer"] and 1.0 / rate > params["motion_buffer_from"] and rate not in _SLOW_RATES_TOLD:
        _SLOW_RATES_TOLD.add(rate)
        log.warning("tracking at %.1f analysed frames/s with tracker.motion_buffer 0: people move further between "
                    "two frames than the motion model follows and tracks break; tracker.motion_buffer 2 (the default) "
                    "widens the boxes it matches (README, 'Every K-th frame')", rate)
    return build_tracker(name, **params)


_SLOW_RATES_TOLD: set = set()      # analysed frame rates the low-rate advice was logged for (once each)


def uses_appearance(tracker) -> bool:
    """Whether the tracker matches on embeddings of every detection (then they are computed first)."""
    from trackers import AppearanceTracker

    return bool(getattr(tracker, "uses_appearance", isinstance(tracker, AppearanceTracker)))


def _prefetch(frames: Iterator[Frame], size: int = 4) -> Iterator[Frame]:
    """Decode in a background thread (OpenCV releases the GIL) so decoding overlaps inference."""
    q: queue.Queue = queue.Queue(maxsize=size)
    done = object()
    stop = threading.Event()

    def work():
        try:
            for f in frames:
                while not stop.is_set():
                    try:
                        q.put(f, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
        except BaseException as exc:  # re-raised in the consumer
            q.put(exc)
        q.put(done)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()


class _Camera:
    """Everything the loop holds for one camera being processed."""

    def __init__(self, src: VideoSource, cache: CameraCache, det_key: str, track_key: str, cfg: RunConfig,
                 attribute_names: Sequence[str], prefetch: bool = True):
        self.src, self.cache, self.det_key, self.track_key = src, cache, det_key, track_key
        self.name = src.name
        self.cached = cache.cached_detections(det_key)
        cache.start_track_stage(track_key)
        self.det_writer = DetectionWriter(cache, det_key, self.cached)
        self.tracker = build_tracker_for(cfg, src.fps / max(1, src.stride))
        self.uses_appearance = uses_appearance(self.tracker)
        self.gmc = getattr(self.tracker, "gmc", None)       # camera-motion estimator, when configured
        self.embed_min_score = cfg.tracker.track_high_thresh  # detections the appearance tracker compares
        self.store = TrackletStore(src.name, src.fps, offset=src.offset, gallery_size=cfg.reid.gallery_size,
                                   thumbnails=cfg.reid.thumbnails, box_path=cache.boxes,
                                   thumb_dir=cache.thumbs, attribute_names=attribute_names)
        self.sharpen = sharpen_amount(src, cfg)
        frames = _sharpened(iter(src), self.sharpen) if self.sharpen > 0 else iter(src)
        self.frames = _prefetch(frames) if prefetch else frames
        self.gains = camera_gains(src.path) if cfg.reid.colour_constancy else None   # (3,) or None
        self.step = 0              # analysed frames so far
        self.last_index = -1
        self.done = False
        if self.cached:
            log.info("camera '%s': reusing the detections of frames 0-%d", self.name, self.cached.upto)

    def next_frame(self) -> Optional[Frame]:
        if self.done:
            return None
        try:
            return next(self.frames)
        except StopIteration:
            self.done = True
            return None

    def finish(self) -> None:
        self.store.close_all()
        self.det_writer.close(complete=True)
        info = {"camera": self.name, "analysed_frames": self.step, "frames": self.last_index + 1,
                "corrupt": self.src.corrupt, "fps": self.src.fps, "tracklets": len(self.store.finished),
                "boxes": self.store.n_boxes, "sharpen": self.sharpen,
                "identity_splits": int(getattr(self.tracker, "switches", 0))}   # tracker.switch_thresh
        self.cache.finish_track_stage(self.track_key, self.src.retime(self.store.finished), self.store.thumb_paths,
                                      info)

    def abort(self) -> None:
        """Interrupted: keep the detections made so far (resumable), the track stage stays incomplete."""
        self.frames.close()                  # stops the decoding thread (both iterators are generators)
        self.det_writer.close(complete=False)
        self.store.close_all()


def _detect(frames: dict[str, Frame], cams: dict[str, _Camera], detector, files: Optional[FileDetections],
            stats: RunStats) -> dict[str, np.ndarray]:
    """Detections (N, 6) per camera for this step: cache, detection files, or one detector call."""
    dets: dict[str, np.ndarray] = {}
    todo = []
    for name, fr in frames.items():
        if fr.index in cams[name].cached:
            dets[name] = cams[name].cached[fr.index]
        elif files is not None:
            dets[name] = files.for_frame(name, fr.index)
        else:
            todo.append(name)
    if todo:
        t0 = time.perf_counter()
        results = detector()([frames[n].image for n in todo])
        stats.detect_seconds += time.perf_counter() - t0
        stats.detected_frames += len(todo)
        dets.update(zip(todo, results))
    for name, fr in frames.items():
        cams[name].det_writer.add(fr.index, dets[name])
    return dets


def _detection_crops(frames, cams, dets, embed) -> tuple[dict[str, np.ndarray], list[np.ndarray]]:
    """Appearance-aware trackers match high-score detections on embeddings: the rows each such camera's
    tracker can use this step (its ``embedding_mask``) and their crops, in camera order."""
    names = [n for n in frames if cams[n].uses_appearance and embed is not None]
    picks = {n: np.flatnonzero(_embedding_mask(cams[n], dets[n])) for n in names}
    return picks, [apply_gains(crop(frames[n].image, dets[n][i]), cams[n].gains)
                   for n in names for i in picks[n]]


def _embedding_mask(cam: _Camera, dets: np.ndarray) -> np.ndarray:
    """The detections the camera's tracker can use embeddings of (its own rule when it has one)."""
    rule = getattr(cam.tracker, "embedding_mask", None)
    return rule(dets) if rule is not None else dets[:, 4] >= cam.embed_min_score


def _select(cam: _Camera, frame: Frame, dets: np.ndarray, tracks: np.ndarray, hits: np.ndarray,
            policy: CropPolicy):
    """Tracks of this frame worth embedding: (indices into tracks, quality)."""
    if len(tracks) == 0:
        return np.zeros((0,), np.int64), np.zeros((0,), np.float32)
    overlap = track_overlap(tracks, dets)
    last, features = cam.store.embedding_state(tracks[:, 4].astype(np.int64))
    factor = getattr(getattr(cam.tracker, "score_scale", None), "factor", 1.0)
    if factor != 1.0:                   # the camera's scores sit low: its crops' score bar follows the tracker's
        policy = dataclasses.replace(policy, min_score=policy.min_score * factor,
                                     few_score=policy.few_score * factor)
    mask = select_for_embedding(tracks, hits, last, cam.step, overlap, policy, features)
    return np.nonzero(mask)[0], crop_quality(tracks, overlap, policy)


def _crop_box(track: np.ndarray, dets: np.ndarray) -> np.ndarray:
    """The matched detection's box (sharper than the Kalman estimate), else the track's box."""
    d = int(track[7])
    return dets[d, :4] if 0 <= d < len(dets) else track[:4]


def process_step(frames: dict[str, Frame], cams: dict[str, _Camera], detector, files, embed,
                 policy: CropPolicy, stats: RunStats, reid: ReIDQueue) -> None:
    """One analysed frame of each camera in ``frames``: detect, track, embed selected crops, close.

    Cameras whose tracker matches on appearance are tracked one step late: their detections are
    embedded by the ReID worker while the next step decodes and detects (``finish_steps`` tracks
    the last one)."""
    dets = _detect(frames, cams, detector, files, stats)     # overlaps the previous step's ReID calls
    reid.collect()
    pending = []
    late = reid.take_detections()
    if late is not None:
        pending += _track(*late, cams, policy, stats, embed is not None)
    picks, crops = _detection_crops(frames, cams, dets, embed)
    now = {n: fr for n, fr in frames.items() if n not in picks}
    pending += _track(now, dets, {n: None for n in now}, cams, policy, stats, embed is not None)
    reid.submit(pending)
    if picks:
        reid.submit_detections({n: frames[n] for n in picks}, {n: dets[n] for n in picks}, picks, crops)


def finish_steps(cams: dict[str, _Camera], policy: CropPolicy, stats: RunStats, reid: ReIDQueue) -> None:
    """Track the step still waiting for its detection embeddings, apply the last features, then close the
    tracks still open that have no feature on their fallback crops."""
    reid.collect()
    late = reid.take_detections()
    if late is not None:
        reid.submit(_track(*late, cams, policy, stats, embeds=True))     # only ReID runs queue detections
    reid.collect()
    if reid.embed is not None and policy.every_track:     # the tracks still open get their fallback crops
        fallbacks = [b for cam in cams.values() for b in _close(cam, sorted(cam.store.live), True)]
        stats.fallback_crops += len(fallbacks)
        reid.submit(fallbacks)
        reid.collect()


def _track(frames: dict[str, Frame], dets: dict[str, np.ndarray], det_emb: dict[str, Optional[tuple]],
           cams: dict[str, _Camera], policy: CropPolicy, stats: RunStats, embeds: bool) -> list[CropBatch]:
    """Track one step of the cameras in ``frames`` and close finished tracklets; returns the crops to
    embed (none without ``embeds``, i.e. without a ReID model)."""
    pending: list[CropBatch] = []
    t0 = time.perf_counter()
    for name, fr in frames.items():
        cam = cams[name]
        emb = det_emb[name]
        warp = cam.gmc.apply(fr.image, dets[name][:, :4]) if cam.gmc is not None else None
        kwargs = {"warp": warp} if warp is not None else {}
        tracks = cam.tracker.update(dets[name], emb[0] if emb is not None else None, **kwargs)  # (M, 8)
        hits = cam.store.add_tracks(fr.index, tracks)
        idx, quality = _select(cam, fr, dets[name], tracks, hits, policy) if embeds else ([], [])
        if len(idx):
            crops = [_track_crop(cam, fr, tracks[i], dets[name]) for i in idx]
            pending.append(CropBatch(name, fr.index, cam.step, tracks[idx, 4].astype(np.int64), quality[idx],
                                     crops, tracks[idx, 7].astype(np.int64), emb))
        if embeds:
            for i in fallback_candidates(tracks, hits, len(dets[name]), idx, policy):
                tid, q = int(tracks[i, 4]), float(quality[i])
                if cam.store.wants_fallback(tid, q):
                    cam.store.offer_fallback(FallbackCrop(tid, q, fr.index, _track_crop(cam, fr, tracks[i],
                                                                                        dets[name]).copy()))
        fallbacks = _close(cam, cam.tracker.pop_finished(), embeds and policy.every_track)
        stats.fallback_crops += len(fallbacks)
        pending += fallbacks
        cam.step += 1
        cam.last_index = fr.index
    stats.track_seconds += time.perf_counter() - t0
    return pending


def _track_crop(cam: _Camera, fr: Frame, track: np.ndarray, dets: np.ndarray) -> np.ndarray:
    return apply_gains(crop(fr.image, _crop_box(track, dets)), cam.gains)


def _close(cam: _Camera, track_ids, fallback: bool) -> list[CropBatch]:
    """Close ended tracks; with ``fallback``, the batches that embed the best crop of those that have no
    feature (the store closes them when it gets it)."""
    if not fallback:
        cam.store.close(track_ids)
        return []
    return [CropBatch(cam.name, c.frame, cam.step, np.array([c.track_id], np.int64),
                      np.array([c.quality], np.float32), [c.image], np.array([-1], np.int64))
            for c in cam.store.close_with_fallback(track_ids)]


def run_cameras(sources: Sequence[VideoSource], cfg: RunConfig, run_dir: Path, *,
                detector_factory: Optional[Callable] = None, files: Optional[FileDetections] = None,
                det_files: Optional[dict] = None, encoder=None, progress: bool = True,
                concurrent: bool = True, keys: Optional[dict] = None) -> RunStats:
    """Fill the stage cache of every camera (reusing what is valid); returns statistics.
    ``concurrent=False``: no decoding and ReID threads beside the main one (a single-core Ray task;
    the results are the same). ``keys``: ``unit_id(src)`` -> :class:`StageKeys` already computed by the
    planning step (a unit not in it has its keys computed here)."""
    stats = RunStats()
    t_start = time.perf_counter()
    todo = []
    for src in sources:
        cache = CameraCache(run_dir, src.name, src.chunk)
        known = (keys or {}).get(unit_id(src))
        det_key, track_key = known if known is not None else stage_keys(src, cfg, (det_files or {}).get(src.name))
        if cache.track_complete(track_key):
            stats.reused_cameras.append(src.name)
            log.info("camera '%s': reusing the cached tracks and tracklets", src.name)
        else:
            todo.append((src, cache, det_key, track_key))
    if todo:
        _loop(todo, cfg, detector_factory, files, encoder, progress, stats, concurrent)
    for src in sources:
        info = CameraCache(run_dir, src.name, src.chunk).track_info()
        stats.per_camera[src.name] = info
        stats.frames += int(info.get("analysed_frames", 0))
        stats.corrupt += int(info.get("corrupt", 0))
    stats.seconds = time.perf_counter() - t_start
    return stats


def _loop(todo, cfg: RunConfig, detector_factory, files, encoder, progress: bool, stats: RunStats,
          concurrent: bool = True) -> None:
    from tqdm import tqdm

    names = tuple(getattr(encoder, "attribute_names", ()) or ())
    detector_holder: list = []

    def detector():
        if not detector_holder:
            detector_holder.append(detector_factory())
        return detector_holder[0]

    if files is None and detector_factory is not None and not all(c.detect_complete(dk) for _, c, dk, _ in todo):
        detector()          # a model that cannot load fails here, before any cache file is rewritten
    cams = {src.name: _Camera(src, cache, dk, tk, cfg, names, concurrent) for src, cache, dk, tk in todo}

    embed = Embedder(encoder, cfg.reid.batch_size) if encoder is not None else None
    policy = CropPolicy(every_k=cfg.reid.every_k_frames, min_height=cfg.reid.min_box_height,
                        min_score=cfg.reid.min_score, max_overlap=cfg.reid.max_overlap,
                        min_hits=cfg.reid.min_hits, every_track=cfg.reid.every_track,
                        few_features=cfg.reid.few_features, few_score=cfg.reid.few_score)

    def apply(batch: CropBatch, feats: np.ndarray, attrs: np.ndarray) -> None:
        cams[batch.camera].store.add_features(batch.frame_index, batch.step, batch.track_ids, feats, attrs,
                                              batch.quality, batch.crops)

    reid = ReIDQueue(embed, apply, stats, background=concurrent)
    total = max((c.src.num_frames for c in cams.values()), default=-1)
    bar = tqdm(total=total if total > 0 else None, unit="step", desc="run", disable=not progress,
               leave=False)
    try:
        while True:
            frames = {}
            for name, cam in cams.items():
                fr = cam.next_frame()
                if fr is not None:
                    frames[name] = fr
            if not frames:
                break
            process_step(frames, cams, detector, files, embed, policy, stats, reid)
            bar.update(1)
        finish_steps(cams, policy, stats, reid)
    except BaseException:
        for cam in cams.values():
            cam.abort()
        raise
    finally:
        reid.close()
        bar.close()
    for cam in cams.values():
        cam.finish()

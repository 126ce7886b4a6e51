"""Work units of the per-camera stage and where they run: this process, or Ray tasks.

A work unit is one camera, or one time chunk of a camera when ``scale.chunk_minutes`` is set
(:mod:`pipeline.run.chunks`). Every unit reads and writes only its own stage cache under
``<out>/cache/`` (on a cluster: a filesystem every node sees), so:

- a unit whose track stage is complete is never run again (checked on the driver before any task
  is submitted; a camera whose stitched result is complete skips all its chunks);
- a task that fails or whose worker dies is retried by Ray (``scale.max_retries``) and continues
  from the detections its earlier attempt made durable;
- a stopped run continues where it stopped when the same command is run again.

With ``--backend ray`` each unit is a Ray task (``ray.remote`` with ``scale.cpus_per_task`` CPUs and
``scale.gpus_per_task`` GPUs, fractional allowed) that loads its own detector and ReID model;
chunks are stitched and the cross-camera association runs on the driver. The driver (``mcmt run``) holds the
run folder's lock for the whole run, until every task it started has ended, and its tasks write only while
the lock names it (see pipeline/runfolder/lock.py): a second ``mcmt`` on the folder refuses meanwhile.
"""
from __future__ import annotations

import copy
import dataclasses
import logging
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional, Sequence

from core.errors import UserError
from pipeline.runfolder.cache import CameraCache
from pipeline.runfolder.lock import held_here
from pipeline.run.chunks import StitchParams, plan_chunks, stitch_camera, stitch_key
from pipeline.run.runner import NOT_KEYED, RunStats, StageKeys, run_cameras, stage_keys, unit_id
from pipeline.run.video import VideoSource

if TYPE_CHECKING:
    from pipeline.config import RunConfig

log = logging.getLogger(__name__)

CANCEL_WAIT_S = 60         # how long a failed or interrupted Ray run waits for its cancelled tasks to end
RAY_INSTALL = 'pip install -e ".[ray]"  (or: pip install "ray>=2.9")'


@dataclasses.dataclass
class Camera:
    """One camera's units: ``[source]`` whole, or its chunks; ``unit_keys``: each unit's stage keys (computed
    once, here); ``key`` of its final track stage."""
    source: VideoSource
    units: list[VideoSource]
    unit_keys: list[StageKeys]
    key: str
    det_file: Optional[Path]

    @property
    def chunked(self) -> bool:
        return self.units[0].chunk is not None

    def keys(self) -> dict:
        """``unit_id`` -> stage keys of its units (what ``run_cameras`` takes as ``keys``)."""
        return {unit_id(u): k for u, k in zip(self.units, self.unit_keys)}


def plan(sources: Sequence[VideoSource], cfg: RunConfig, det_files: Optional[dict] = None) -> list[Camera]:
    """The work units of every camera, their stage keys and the key of each camera's final track stage: the
    one place a run computes stage keys (what checks completeness or runs a unit takes them from here)."""
    cams = []
    keyed = keyed_config(cfg)          # keys of the same models are the same however their paths are spelled
    for src in sources:
        det_file = (det_files or {}).get(src.name)
        chunk = int(round(cfg.scale.chunk_minutes * 60 * src.fps))
        overlap = int(round(cfg.scale.overlap_seconds * src.fps))
        units = plan_chunks(src, chunk, overlap)          # [src] when not chunked
        keys = [stage_keys(u, keyed, det_file) for u in units]
        key = keys[0].track if units[0].chunk is None else stitch_key([k.track for k in keys], StitchParams())
        cams.append(Camera(src, units, keys, key, det_file))
    return cams


def keyed_config(cfg: RunConfig) -> RunConfig:
    """``cfg`` with its model files (``detector.model``, ``reid.checkpoint``) named by their resolved paths: what
    :func:`plan` computes stage keys from, so that a key does not depend on how a path is spelled (relative,
    absolute, through a symlink) nor on the folder ``mcmt run`` is started in. Names that are no local file stay
    as they are: ``default``, ``none``, and a released ultralytics name (``yolo11n.pt``), whose download on
    first use must not change the key."""
    from pipeline.run.detectors import released_name

    def resolved(spec: str) -> str:
        if not spec or str(spec).strip().lower() in ("default", "none") or released_name(spec):
            return spec
        p = Path(spec).expanduser()
        return str(p.resolve()) if p.exists() else spec

    return dataclasses.replace(cfg, detector=dataclasses.replace(cfg.detector, model=resolved(cfg.detector.model)),
                               reid=dataclasses.replace(cfg.reid, checkpoint=resolved(cfg.reid.checkpoint)))


def replaced_stages(run_dir: Path, cams: Sequence[Camera]) -> dict[str, list[Optional[dict]]]:
    """Camera -> the recorded settings (:meth:`CameraCache.settings_of`, None when unknown) of each finished
    stage of it in ``run_dir`` that running this :func:`plan` would replace: its finished track stage made with
    another key, or, while the camera's stitched stage is not finished with its key, each finished chunk made
    with another key (a killed chunked run's). Unfinished stages are resumed or recomputed, not listed."""
    out = {}
    for c in cams:
        final = CameraCache(run_dir, c.source.name)
        done = final.finished_key()
        if done == c.key:
            continue                          # reused (or, if damaged, recomputed with the same key)
        stages = [(final, done)] if done is not None else []
        if c.chunked:
            for u, k in zip(c.units, c.unit_keys):
                cache = CameraCache(run_dir, u.name, u.chunk)
                if cache.finished_key() not in (None, k.track):
                    stages.append((cache, cache.finished_key()))
        if stages:
            out[c.source.name] = [cache.settings_of(key) for cache, key in stages]
    return out


def replaced_cameras(run_dir: Path, cams: Sequence[Camera]) -> list[str]:
    """Cameras (of a :func:`plan`) with finished work in ``run_dir`` that running would replace
    (:func:`replaced_stages`)."""
    return list(replaced_stages(run_dir, cams))


def _record_settings(run_dir: Path, cfg: RunConfig, units: Sequence[tuple[VideoSource, str]]) -> None:
    """Beside each of ``units`` (source, track key) whose track stage is finished with that key: the keyed
    settings of this run, which a later rerun that would replace it names as changed."""
    from core.config import to_dict

    settings = keyed_settings(to_dict(cfg))
    for src, key in units:
        cache = CameraCache(run_dir, src.name, src.chunk)
        if cache.finished_key() == key:
            cache.record_settings(key, settings)


KEYED_SECTIONS = ("video", "detector", "reid", "tracker")   # and scale.chunk_minutes / overlap_seconds (stitching)


def keyed_settings(settings: dict) -> dict:
    """``section.field`` -> value of the settings (a RunConfig as a dict, e.g. run.json's) that stage keys
    depend on: what a rerun compares to say which changed."""
    flat = {}

    def walk(prefix: str, value) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}", v)
        else:
            flat[prefix] = value

    for section in KEYED_SECTIONS:
        for name, value in (settings.get(section) or {}).items():
            if name not in NOT_KEYED.get(section, ()):
                walk(f"{section}.{name}", value)
    for name in ("chunk_minutes", "overlap_seconds"):
        flat[f"scale.{name}"] = (settings.get("scale") or {}).get(name)
    return flat


def _pending(run_dir: Path, cam: Camera) -> list[VideoSource]:
    """Units of a camera still to run (none when the camera's final stage is complete)."""
    if CameraCache(run_dir, cam.source.name).track_complete(cam.key):
        return []
    if not cam.chunked:
        return cam.units
    return [u for u, k in zip(cam.units, cam.unit_keys)
            if not CameraCache(run_dir, u.name, u.chunk).track_complete(k.track)]


def local_calls(units: Sequence[VideoSource]) -> list[list[VideoSource]]:
    """How the local backend runs ``units``: every whole camera in one call (each step's frames detected and
    its crops embedded in one batch over the cameras), then each time chunk alone, as a Ray task runs it (so
    a chunk's cache is the same whichever backend made it)."""
    whole = [u for u in units if u.chunk is None]
    return ([whole] if whole else []) + [[u] for u in units if u.chunk is not None]


def _finish_camera(run_dir: Path, cam: Camera, cfg: RunConfig) -> None:
    if cam.chunked and not CameraCache(run_dir, cam.source.name).track_complete(cam.key):
        stitch_camera(run_dir, cam.units, cam.key, gallery_size=cfg.reid.gallery_size,
                      thumbnails=cfg.reid.thumbnails)


def run_unit(src: VideoSource, cfg: RunConfig, run_dir: str, det_file: Optional[str], threads: int,
             keys: Optional[StageKeys] = None, holder: str = "") -> dict:
    """Run one unit in this process with its own detector and ReID model on ``threads`` CPU threads
    (what a Ray task executes); returns its statistics. ``keys``: the unit's stage keys from the driver's
    :func:`plan` (a worker's ``cfg`` names its models by other paths: keys recomputed from it could differ).
    ``holder``: the driver's line in the run folder's lock; the unit writes nothing unless the lock still names
    it (pipeline/runfolder/lock.py: the driver's lock covers its workers)."""
    from pipeline.run.detectors import FileDetections, build_detector
    from pipeline.run.resources import load_encoder, torch_threads
    from pipeline.runfolder.lock import check_holder

    import cv2

    if holder:
        check_holder(Path(run_dir), holder)

    reid_cpu = max(1, threads // 2)
    det_threads = max(1, threads - reid_cpu)
    cv2.setNumThreads(threads)
    encoder = _cached(("reid", cfg.reid, reid_cpu), lambda: load_encoder(
        cfg.reid.checkpoint, cfg.reid.device, cfg.reid.batch_size, reid_cpu))
    det = {src.name: Path(det_file)} if det_file else None
    files = FileDetections(det, cfg.detector.score_scale) if det else None
    with torch_threads(reid_cpu):
        stats = run_cameras([src], cfg, Path(run_dir), files=files, det_files=det, encoder=encoder, progress=False,
                            keys={unit_id(src): keys} if keys is not None else None,
                            detector_factory=lambda: _cached(("detector", cfg.detector, det_threads),
                                                             lambda: build_detector(cfg.detector, threads=det_threads)),
                            concurrent=threads > 1)
    return _stats_dict(stats)


_MODELS: dict = {}      # models loaded by this worker process, reused by its next tasks (Ray reuses workers)


def _cached(key, load: Callable):
    """The model for ``key`` (frozen config sections and threads), loaded once per process. A model
    file rewritten in place between tasks of one run is not expected (the run's cache keys would
    mix both)."""
    if key not in _MODELS:
        _MODELS[key] = load()
    return _MODELS[key]


def _stats_dict(stats: RunStats) -> dict:
    return {k: getattr(stats, k) for k in ("frames", "seconds", "detect_seconds", "reid_seconds", "track_seconds",
                                           "detected_frames", "embedded_crops", "fallback_crops")}


def _add(total: RunStats, part: dict) -> None:
    for k, v in part.items():
        if k != "seconds":
            setattr(total, k, getattr(total, k) + v)


def _portable(src: VideoSource) -> VideoSource:
    """A copy with an absolute path (Ray workers may run in another folder)."""
    out = copy.copy(src)
    out.path = Path(src.path).resolve()
    return out


def _portable_config(cfg: RunConfig) -> RunConfig:
    """Model paths made absolute for workers that run elsewhere."""
    def absolute(spec: str) -> str:
        return str(Path(spec).resolve()) if spec and Path(spec).exists() else spec

    return dataclasses.replace(cfg, detector=dataclasses.replace(cfg.detector, model=absolute(cfg.detector.model)),
                               reid=dataclasses.replace(cfg.reid, checkpoint=absolute(cfg.reid.checkpoint)))


def run_stage(sources: Sequence[VideoSource], cfg: RunConfig, run_dir: Path, *, det_files: Optional[dict] = None,
              progress: bool = True, local_runner: Optional[Callable] = None,
              cams: Optional[Sequence[Camera]] = None) -> RunStats:
    """The per-camera stage of every camera by units (see the module docstring); returns statistics
    with a ``per_camera`` entry for each camera. ``local_runner(units, keys)`` runs units in this process
    (``scale.backend == "local"``, grouped by :func:`local_calls`) with their stage keys (``run_cameras``'
    ``keys``); ``mcmt run`` takes this one route for both backends. ``cams``: the
    :func:`plan` of ``sources`` when the caller already made it."""
    t0 = time.perf_counter()
    run_dir = Path(run_dir).resolve()
    cams = list(cams) if cams is not None else plan(sources, cfg, det_files)
    stats = RunStats()
    todo = {c.source.name: _pending(run_dir, c) for c in cams}
    stats.reused_cameras = [c.source.name for c in cams if not todo[c.source.name]]
    units = [u for c in cams for u in todo[c.source.name]]
    if units:
        log.info("%d work units (cameras x chunks) to run, %d cameras reused", len(units), len(stats.reused_cameras))
        if cfg.scale.backend == "ray":
            _run_ray(units, cams, cfg, run_dir, stats, progress)
        else:
            if local_runner is None:
                raise ValueError("local backend needs a local_runner")
            keys = {k: v for c in cams for k, v in c.keys().items()}
            for call in local_calls(units):
                _add(stats, _stats_dict(local_runner(call, {unit_id(u): keys[unit_id(u)] for u in call})))
                _record_settings(run_dir, cfg, [(u, keys[unit_id(u)].track) for u in call])
    for cam in cams:
        _finish_camera(run_dir, cam, cfg)
        _record_settings(run_dir, cfg, [(cam.source, cam.key)])
        info = CameraCache(run_dir, cam.source.name).track_info()
        stats.per_camera[cam.source.name] = info
        stats.corrupt += int(info.get("corrupt", 0))
    stats.frames = sum(int(i.get("analysed_frames", 0)) for i in stats.per_camera.values())
    stats.seconds = time.perf_counter() - t0
    return stats


def import_ray():
    try:
        import ray
    except ImportError:
        raise UserError(f"--backend ray needs Ray, which is not installed: {RAY_INSTALL}") from None
    return ray


def ray_init(cfg: RunConfig):
    """Connect to the cluster at ``scale.ray_address``, or start a local Ray with ``scale.workers``
    CPU slots (already connected: kept as is)."""
    ray = import_ray()
    if ray.is_initialized():
        return ray
    kwargs = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    if cfg.scale.ray_address:
        ray.init(address=cfg.scale.ray_address, **kwargs)
    else:
        ray.init(num_cpus=cfg.scale.workers or None, **kwargs)
    return ray


def _run_ray(units: list[VideoSource], cams: list[Camera], cfg: RunConfig, run_dir: Path, stats: RunStats,
             progress: bool) -> None:
    from tqdm import tqdm

    ray = ray_init(cfg)
    sc = cfg.scale
    task = ray.remote(run_unit).options(num_cpus=sc.cpus_per_task, num_gpus=sc.gpus_per_task,
                                        max_retries=sc.max_retries, retry_exceptions=[OSError])
    det_of = {c.source.name: (str(Path(c.det_file).resolve()) if c.det_file else None) for c in cams}
    threads = max(1, math.ceil(sc.cpus_per_task))
    wcfg = _portable_config(cfg)
    if sc.gpus_per_task <= 0:                    # no GPU asked for: the task must not look for one
        wcfg = dataclasses.replace(wcfg, detector=dataclasses.replace(wcfg.detector, device="cpu"),
                                   reid=dataclasses.replace(wcfg.reid, device="cpu"))
    keys = {k: v for c in cams for k, v in c.keys().items()}
    holder = held_here(run_dir)          # mcmt run holds the folder's lock: its tasks write only while it does
    refs = {task.remote(_portable(u), wcfg, str(run_dir), det_of[u.name], threads, keys[unit_id(u)], holder): u
            for u in units}
    bar = tqdm(total=len(refs), unit="unit", desc="ray", disable=not progress, leave=False)
    pending = list(refs)
    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                try:
                    _add(stats, ray.get(ref))
                    _record_settings(run_dir, cfg, [(refs[ref], keys[unit_id(refs[ref])].track)])
                except ray.exceptions.RayTaskError as exc:
                    u = refs[ref]
                    cause = exc.cause if getattr(exc, "cause", None) is not None else exc
                    if isinstance(cause, UserError):
                        raise cause from None
                    raise UserError(f"camera '{u.name}'{'' if u.chunk is None else f' chunk {u.chunk}'} failed "
                                    f"after {sc.max_retries} retries: {cause}; what finished is kept in "
                                    f"{run_dir / 'cache'}, rerun the same command to continue") from None
                bar.update(1)
    except BaseException:
        for ref in pending:
            ray.cancel(ref, force=True)
        # the caller releases the run folder's lock after this: not before the cancelled tasks have ended
        _, running = ray.wait(pending, num_returns=len(pending), timeout=CANCEL_WAIT_S) if pending else ([], [])
        if running:
            log.warning("%d Ray tasks still running %d s after their cancellation: start no other mcmt on %s "
                        "before they end", len(running), CANCEL_WAIT_S, run_dir)
        raise
    finally:
        bar.close()

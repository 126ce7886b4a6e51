"""Detect, track and identify people across several camera videos.

Each --videos entry is one camera: a video file or a folder of frames (e.g. MOTChallenge img1/).
Writes to --out: mot/<camera>.txt (global ids), mtmc.txt, identities.json, thumbs/, report.html,
videos/ (with --save-video) and cache/ (rerunning with the same inputs and settings reuses it; with other
inputs or tracker, detector or ReID settings a rerun stops before touching anything, unless --replace asks to
recompute in place; 'mcmt associate --run DIR' redoes only the association and outputs).

The default detector (--detector default) is embedded in mcmt and works offline: Intel's
person-vehicle-bike-detection-2003 (int8) on OpenVINO (pipeline/run/detectors/weights/MODEL_NOTE.md);
--detector also takes a YOLOX, SSD or boxes+labels .onnx/.xml file or anything ultralytics loads (e.g. yolo11n.pt,
which it downloads on first use).
The default ReID model is the checkpoint shipped in reid/weights/default.pt (appearance +
attributes; its measured quality is in reid/MODEL_CARD.md). --reid takes another model file, e.g.
an OpenVINO person-reidentification-retail-0286.xml or an OSNet .onnx; --reid none disables
appearance (every camera track is its own identity). README's "Measured here" table compares the
settings, e.g. --set association.same_camera_threshold=0 (no re-entry joins within one camera).

Examples:
  mcmt run --videos cam1.mp4 cam2.mp4 --out runs/x --reid osnet_x0_25_msmt17.onnx
  mcmt run --videos seq/img1 --detections seq/det/det.txt --reid none
  mcmt run --videos a.mp4 b.mp4 --detector yolo11n.pt --set video.offsets.b=2.5
  mcmt run --videos cams/*.mp4 --backend ray --chunk-minutes 10    # Ray tasks per camera and 10-min chunk

--backend ray (pip install -e ".[ray]") runs each camera, or each time chunk of a long video, as a
Ray task that writes its own part of cache/ (on a cluster the output folder must be shared by every
node); chunks are stitched and the association runs here. Rerunning continues an interrupted run.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Optional

from core.errors import UserError
from pipeline.config import RunConfig
from pipeline.runfolder.layout import CACHE_DIR
from pipeline.run.resources import (detector_threads, load_encoder, on_cpu, reid_threads,  # noqa: F401
                                    torch_thread_count, torch_threads)

CONFIG_CLASS = RunConfig
log = logging.getLogger(__name__)


def add_arguments(p):
    p.add_argument("--videos", nargs="+", required=True, metavar="VIDEO",
                   help="video files (or folders of frames), one per camera")
    p.add_argument("--names", nargs="+", metavar="NAME", help="camera names (default: the file stems)")
    p.add_argument("--out", metavar="DIR", help="output folder (default runs/<timestamp>)")
    p.add_argument("--detections", nargs="+", metavar="DET_TXT",
                   help="MOTChallenge detection files, one per video, instead of the detector")
    p.add_argument("--detector", metavar="MODEL",
                   help="detector model (sets detector.model): 'default' (embedded, works offline), a YOLOX or "
                        "SSD .onnx/.xml, or anything ultralytics loads (yolo11n.pt downloads on first use)")
    p.add_argument("--reid", metavar="MODEL",
                   help="ReID model: our .pt, .onnx, OpenVINO .xml, 'default' or 'none' (sets reid.checkpoint)")
    p.add_argument("--device", metavar="DEV", help="auto | cpu | cuda | cuda:N for detector and ReID")
    p.add_argument("--stride", type=int, metavar="K",
                   help="analyse every K-th frame (sets video.stride); the output files fill the frames in "
                        "between a track's boxes by interpolation (output.interpolate)")
    p.add_argument("--max-frames", type=int, metavar="N", help="stop each camera after N analysed frames")
    p.add_argument("--topology", metavar="YAML", help="camera topology file (sets association.topology)")
    p.add_argument("--calibration", metavar="YAML",
                   help="camera calibration: image -> ground homographies per camera (sets calibration; "
                        "'mcmt calibrate' writes one)")
    p.add_argument("--save-video", action="store_true", help="also write videos/<camera>.mp4")
    p.add_argument("--backend", choices=("local", "ray"),
                   help="local: this process (default); ray: one Ray task per camera or chunk (sets scale.backend)")
    p.add_argument("--ray-address", metavar="ADDR",
                   help="Ray cluster to join ('auto' or host:port; default: a local Ray on this machine)")
    p.add_argument("--workers", type=int, metavar="N", help="local Ray: CPU slots (sets scale.workers; 0: all cores)")
    p.add_argument("--chunk-minutes", type=float, metavar="MIN",
                   help="cut each video into chunks of MIN minutes tracked apart and stitched (sets scale.chunk_minutes)")
    p.add_argument("--replace", action="store_true",
                   help="recompute in --out the cameras whose finished tracks were made with other inputs or settings "
                        "(without it such a rerun stops before touching anything: give a new --out to keep both)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def apply_cli(cfg: RunConfig, args) -> RunConfig:
    """Fold the command-line options into the config (they win over --config and --set)."""
    rep = dataclasses.replace
    video, det, reid, out, assoc = cfg.video, cfg.detector, cfg.reid, cfg.output, cfg.association
    scale = cfg.scale
    try:
        if args.stride is not None:
            video = rep(video, stride=args.stride)
        if args.max_frames is not None:
            video = rep(video, max_frames=args.max_frames)
        for opt, field in (("backend", "backend"), ("ray_address", "ray_address"), ("workers", "workers"),
                           ("chunk_minutes", "chunk_minutes")):
            if getattr(args, opt, None) is not None:
                scale = rep(scale, **{field: getattr(args, opt)})
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if args.detector:
        det = rep(det, model=args.detector)
    if args.device:
        det, reid = rep(det, device=args.device), rep(reid, device=args.device)
    if args.reid:
        reid = rep(reid, checkpoint=args.reid)
    if args.save_video:
        out = rep(out, save_video=True)
    if args.topology:
        assoc = rep(assoc, topology=args.topology)
    if getattr(args, "calibration", None):
        cfg = rep(cfg, calibration=str(Path(args.calibration).resolve()))
    return rep(cfg, video=video, detector=det, reid=reid, output=out, association=assoc, scale=scale)


def default_out() -> Path:
    return Path("runs") / time.strftime("%Y%m%d-%H%M%S")


def main(args) -> int:
    from pipeline.run.detectors import FileDetections, check_model_path, detection_files
    from pipeline.outputs.write import check_association_inputs
    from pipeline.runfolder.generation import adopt_legacy
    from pipeline.runfolder.lock import RunLock
    from pipeline.run.video import open_sources

    cfg = apply_cli(args.cfg, args)
    t0 = time.perf_counter()
    # every input is checked before any work starts
    sources = open_sources(args.videos, args.names, stride=cfg.video.stride, offsets=cfg.video.offsets,
                           max_frames=cfg.video.max_frames, default_fps=cfg.video.default_fps)
    det_files = detection_files(args.detections, [s.name for s in sources]) if args.detections else None
    files = FileDetections(det_files, cfg.detector.score_scale) if det_files else None
    ground = check_association_inputs(cfg, [{"name": s.name, "width": s.width, "height": s.height}
                                            for s in sources])
    if files is None:
        check_model_path(cfg.detector.model)
    threads = reid_threads(cfg.reid.threads)
    encoder = load_encoder(cfg.reid.checkpoint, cfg.reid.device, cfg.reid.batch_size, threads)
    reid_on_cpu = encoder is not None and on_cpu(cfg.reid.device)
    det_threads = detector_threads(cfg.detector.threads, threads if reid_on_cpu else 0)
    log.info("CPU threads: detector %d, ReID %s", det_threads, threads if reid_on_cpu else "- (not on the CPU)")
    out = Path(args.out) if args.out else default_out()
    if cfg.scale.backend == "ray":
        from pipeline.run.backend import import_ray
        import_ray()                                  # a clear error before any work when Ray is missing
    out.mkdir(parents=True, exist_ok=True)
    with RunLock(out, "mcmt run"):                    # one writer per run folder
        from pipeline.run.backend import plan
        cams = plan(sources, cfg, det_files)          # the work units and their stage keys, computed once
        if not args.replace:
            refuse_replacing(out, cams, cfg)
        adopt_legacy(out, [s.name for s in sources])  # outputs of an older mcmt become a checked generation
        return _run(args, cfg, out, t0, _Inputs(sources, files, det_files, encoder, ground, threads, reid_on_cpu,
                                                det_threads), cams)


def refuse_replacing(out: Path, cams: list, cfg: RunConfig) -> None:
    """UserError, one line, when running would replace a camera's finished tracks made with other inputs or
    settings (a rerun never overwrites finished work unasked): it names the cameras, the settings that changed
    since run.json (when they are what changed) and the two ways on."""
    from core.config import to_dict
    from pipeline.run.backend import keyed_settings, replaced_stages
    from pipeline.runfolder.runfile import run_settings

    stages = replaced_stages(out, cams)       # finished tracks of whole cameras, and of chunks of killed runs
    if not stages:
        return
    cameras, now, last_run = list(stages), keyed_settings(to_dict(cfg)), run_settings(out)
    befores = [recorded if recorded is not None else keyed_settings(last_run) if last_run else None
               for recorded in (s for settings in stages.values() for s in settings)]
    changed = sorted({f"{k} {before.get(k)} -> {now.get(k)}" for before in befores if before
                      for k in before.keys() | now.keys() if before.get(k) != now.get(k)})
    what = (f"other settings ({', '.join(changed[:4])}{', ...' if len(changed) > 4 else ''})" if changed
            else "other inputs, models or settings")
    names = ", ".join(f"'{c}'" for c in cameras)
    raise UserError(f"{out} holds finished tracks of camera{'s' if len(cameras) > 1 else ''} {names} made with "
                    f"{what}; nothing was changed: give a new --out NEW_FOLDER to keep them, or add --replace "
                    "to recompute them in place")


@dataclasses.dataclass(frozen=True)
class _Inputs:
    """What main checked and loaded before the run folder is touched."""

    sources: list
    files: object                # FileDetections or None
    det_files: Optional[dict]
    encoder: object              # ReIDEncoder or None
    ground: object               # GroundCalibration or None
    threads: int                 # ReID threads
    reid_on_cpu: bool
    det_threads: int


def _run(args, cfg: RunConfig, out: Path, t0: float, inputs: _Inputs, cams: list) -> int:
    """The per-camera stage, run.json, the association and the summary lines (the run folder is locked);
    ``cams``: the plan of the work units (``pipeline.run.backend.plan``) with their stage keys."""
    sources, files, det_files, encoder, ground = (inputs.sources, inputs.files, inputs.det_files, inputs.encoder,
                                                  inputs.ground)
    threads, reid_on_cpu, det_threads = inputs.threads, inputs.reid_on_cpu, inputs.det_threads
    from pipeline.outputs.write import associate_and_write, write_run_file
    from pipeline.run.backend import run_stage
    from pipeline.run.detectors import build_detector
    from pipeline.run.runner import run_cameras

    def run_here(units, keys):
        return run_cameras(units, cfg, out, files=files, det_files=det_files, encoder=encoder, keys=keys,
                           detector_factory=lambda: build_detector(cfg.detector, threads=det_threads),
                           progress=not args.no_progress and cfg.scale.backend == "local")

    try:
        with torch_threads(torch_thread_count(cfg, threads, files is None)):
            stats = run_stage(sources, cfg, out, det_files=det_files, progress=not args.no_progress,
                              local_runner=run_here, cams=cams)      # local and Ray, whole cameras or chunks
    except KeyboardInterrupt:
        log.warning("interrupted: the detections made so far are kept in %s; rerun the same command "
                    "to continue from them", out / CACHE_DIR)
        raise
    cameras = [{"name": s.name, "video": str(s.path), "fps": s.fps,
                "frames": int(stats.per_camera[s.name].get("frames", 0)),
                "analysed_frames": int(stats.per_camera[s.name].get("analysed_frames", 0)),
                "corrupt_frames": int(stats.per_camera[s.name].get("corrupt", 0)),
                "offset": s.offset, "stride": s.stride, "width": s.width, "height": s.height,
                "sharpen": float(stats.per_camera[s.name].get("sharpen", 0.0)),
                "identity_splits": int(stats.per_camera[s.name].get("identity_splits", 0))} for s in sources]
    run_stats = {"frames": stats.frames, "corrupt_frames": stats.corrupt,
                 "stage_seconds": round(stats.seconds, 3), "detect_seconds": round(stats.detect_seconds, 3),
                 "reid_seconds": round(stats.reid_seconds, 3), "detected_frames": stats.detected_frames,
                 "embedded_crops": stats.embedded_crops,
                 "fallback_crops": stats.fallback_crops, "reused_cameras": stats.reused_cameras,
                 "reid_model": getattr(encoder, "name", cfg.reid.checkpoint) if encoder else "none",
                 "detector": files.name if files else cfg.detector.model,
                 "threads": {"detector": det_threads, "reid": threads if reid_on_cpu else None},
                 "backend": cfg.scale.backend}
    write_run_file(out, cameras, cfg, {"stats": run_stats})
    summary = associate_and_write(out, cfg, cameras, sources=sources, stats=run_stats, ground=ground)
    wall = time.perf_counter() - t0
    all_reused = len(stats.reused_cameras) == len(sources)
    speed = "all from the cache" if all_reused else \
        f"{stats.frames / stats.seconds if stats.seconds > 0 else 0.0:.1f} frames/s"
    reused = f" (cache reused: {', '.join(stats.reused_cameras)})" if stats.reused_cameras and not all_reused else ""
    corrupt = f", {stats.corrupt} corrupt skipped" if stats.corrupt else ""
    for c in cameras:
        info = stats.per_camera.get(c["name"], {})
        chunks = f", {info['chunks']} chunks" if info.get("chunks") else ""
        print(f"  {c['name']}: {c['analysed_frames']} frames{chunks}, {info.get('tracklets', 0)} tracklets, "
              f"{info.get('boxes', 0)} boxes{' (cached)' if c['name'] in stats.reused_cameras else ''}")
    print(f"mcmt run: {len(sources)} cameras, {stats.frames} frames{corrupt}, {speed}, "
          f"{summary['tracklets']} tracklets, {summary['identities']} identities in {wall:.1f} s{reused} "
          f"-> {out}")
    return 0

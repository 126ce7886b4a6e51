"""Detect, track and identify people across several camera videos.

Each --videos entry is one camera: a video file or a folder of frames (e.g. MOTChallenge img1/).
Writes to --out: mot/<camera>.txt (global ids), mtmc.txt, identities.json, thumbs/, report.html,
videos/ (with --save-video) and cache/ (rerunning with the same inputs and settings reuses it;
'mcmt associate --run DIR' redoes only the association and outputs).

The default detector (--detector default) is embedded in mcmt and works offline: Intel's
pedestrian-detection-adas-0002 on OpenVINO (pipeline/run/detectors/weights/MODEL_NOTE.md);
--detector also takes a YOLOX or SSD .onnx/.xml file or anything ultralytics loads (e.g. yolo11n.pt,
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
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from pathlib import Path

from core.errors import UserError
from pipeline.run.config import RunConfig

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
    p.add_argument("--stride", type=int, metavar="K", help="analyse every K-th frame (sets video.stride)")
    p.add_argument("--max-frames", type=int, metavar="N", help="stop each camera after N analysed frames")
    p.add_argument("--topology", metavar="YAML", help="camera topology file (sets association.topology)")
    p.add_argument("--save-video", action="store_true", help="also write videos/<camera>.mp4")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def apply_cli(cfg: RunConfig, args) -> RunConfig:
    """Fold the command-line options into the config (they win over --config and --set)."""
    rep = dataclasses.replace
    video, det, reid, out, assoc = cfg.video, cfg.detector, cfg.reid, cfg.output, cfg.association
    try:
        if args.stride is not None:
            video = rep(video, stride=args.stride)
        if args.max_frames is not None:
            video = rep(video, max_frames=args.max_frames)
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
    return rep(cfg, video=video, detector=det, reid=reid, output=out, association=assoc)


def reid_threads(threads: int) -> int:
    """CPU threads of the ReID network: ``threads``, or for 0 half the cores (at least 1)."""
    from pipeline.run.detectors.runtime import available_cores

    return int(threads) if threads and threads > 0 else max(1, available_cores() // 2)


def detector_threads(threads: int, reid_cpu_threads: int) -> int:
    """CPU threads of the detector: ``threads``, or for 0 the cores the ReID network leaves (at least
    1; all cores when no ReID runs on the CPU). The ReID worker thread embeds step t's crops while the
    main thread detects step t + 1, so together they must not ask for more threads than there are
    cores (more is slower in total; bench/pipeline.py measures it)."""
    from pipeline.run.detectors.runtime import available_cores

    if threads and threads > 0:
        return int(threads)
    return max(1, available_cores() - reid_cpu_threads)


def load_encoder(checkpoint: str, device: str, batch_size: int = 32, threads: int = 0):
    """The ReID encoder, or None for 'none'; a clear error when the model cannot be used. ``threads``:
    CPU threads of an ONNX / OpenVINO model (a PyTorch model follows ``torch_threads``)."""
    if checkpoint.lower() == "none":
        return None
    if checkpoint != "default" and not Path(checkpoint).exists():
        raise UserError(f"ReID model not found: {checkpoint} (pass --reid path/to/model.pt|.onnx|.xml, "
                        "or --reid none to run without appearance features)")
    from core.device import resolve_device
    from reid import ReIDEncoder

    return ReIDEncoder.from_checkpoint(checkpoint, device=resolve_device(device), batch_size=batch_size,
                                       num_threads=threads)


def _on_cpu(device: str) -> bool:
    from core.device import resolve_device

    return resolve_device(device) == "cpu"


def torch_thread_count(cfg: RunConfig, reid: int, detects: bool) -> int:
    """PyTorch threads of the run: the ReID network's, unless PyTorch also runs the detector (an
    ultralytics .pt model on the CPU), which then gets ``detector.threads`` (0: all cores)."""
    from pipeline.run.detectors import model_kind
    from pipeline.run.detectors.runtime import cpu_threads

    model = cfg.detector.model
    torch_detector = detects and model_kind(model) == "ultralytics" and Path(model).suffix.lower() in (".pt", ".pth")
    if torch_detector and _on_cpu(cfg.detector.device):
        return cpu_threads(cfg.detector.threads)
    return reid


@contextlib.contextmanager
def torch_threads(n: int):
    """PyTorch's intra-op threads (ReID on the CPU, an ultralytics .pt detector) set to ``n`` for the
    run and restored after it; threads started meanwhile (the ReID worker) take ``n`` on first use."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def default_out() -> Path:
    return Path("runs") / time.strftime("%Y%m%d-%H%M%S")


def main(args) -> int:
    from pipeline.run.detectors import FileDetections, build_detector, check_model_path, detection_files
    from pipeline.outputs.write import associate_and_write, write_run_file
    from pipeline.run.runner import run_cameras
    from pipeline.run.video import open_sources

    cfg = apply_cli(args.cfg, args)
    t0 = time.perf_counter()
    # every input is checked before any work starts
    sources = open_sources(args.videos, args.names, stride=cfg.video.stride, offsets=cfg.video.offsets,
                           max_frames=cfg.video.max_frames, default_fps=cfg.video.default_fps)
    det_files = detection_files(args.detections, [s.name for s in sources]) if args.detections else None
    files = FileDetections(det_files, cfg.detector.score_scale) if det_files else None
    if cfg.association.topology and not Path(cfg.association.topology).is_file():
        raise UserError(f"topology file not found: {cfg.association.topology}")
    if files is None:
        check_model_path(cfg.detector.model)
    threads = reid_threads(cfg.reid.threads)
    encoder = load_encoder(cfg.reid.checkpoint, cfg.reid.device, cfg.reid.batch_size, threads)
    reid_on_cpu = encoder is not None and _on_cpu(cfg.reid.device)
    det_threads = detector_threads(cfg.detector.threads, threads if reid_on_cpu else 0)
    log.info("CPU threads: detector %d, ReID %s", det_threads, threads if reid_on_cpu else "- (not on the CPU)")
    out = Path(args.out) if args.out else default_out()
    out.mkdir(parents=True, exist_ok=True)

    try:
        with torch_threads(torch_thread_count(cfg, threads, files is None)):
            stats = run_cameras(sources, cfg, out, files=files,
                                detector_factory=lambda: build_detector(cfg.detector, threads=det_threads),
                                det_files=det_files, encoder=encoder, progress=not args.no_progress)
    except KeyboardInterrupt:
        log.warning("interrupted: the detections made so far are kept in %s; rerun the same command "
                    "to continue from them", out / "cache")
        raise
    cameras = [{"name": s.name, "video": str(s.path), "fps": s.fps,
                "frames": int(stats.per_camera[s.name].get("frames", 0)),
                "analysed_frames": int(stats.per_camera[s.name].get("analysed_frames", 0)),
                "corrupt_frames": int(stats.per_camera[s.name].get("corrupt", 0)),
                "offset": s.offset, "stride": s.stride, "width": s.width, "height": s.height} for s in sources]
    run_stats = {"frames": stats.frames, "corrupt_frames": stats.corrupt,
                 "stage_seconds": round(stats.seconds, 3), "detect_seconds": round(stats.detect_seconds, 3),
                 "reid_seconds": round(stats.reid_seconds, 3), "detected_frames": stats.detected_frames,
                 "embedded_crops": stats.embedded_crops, "reused_cameras": stats.reused_cameras,
                 "reid_model": getattr(encoder, "name", cfg.reid.checkpoint) if encoder else "none",
                 "detector": files.name if files else cfg.detector.model,
                 "threads": {"detector": det_threads, "reid": threads if reid_on_cpu else None}}
    write_run_file(out, cameras, cfg, {"stats": run_stats})
    summary = associate_and_write(out, cfg, cameras, sources=sources, stats=run_stats)
    wall = time.perf_counter() - t0
    all_reused = len(stats.reused_cameras) == len(sources)
    speed = "all from the cache" if all_reused else \
        f"{stats.frames / stats.seconds if stats.seconds > 0 else 0.0:.1f} frames/s"
    reused = f" (cache reused: {', '.join(stats.reused_cameras)})" if stats.reused_cameras and not all_reused else ""
    corrupt = f", {stats.corrupt} corrupt skipped" if stats.corrupt else ""
    print(f"mcmt run: {len(sources)} cameras, {stats.frames} frames{corrupt}, {speed}, "
          f"{summary['tracklets']} tracklets, {summary['identities']} identities in {wall:.1f} s{reused} "
          f"-> {out}")
    return 0

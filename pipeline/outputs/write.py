"""Cross-camera association and outputs of a run folder, from its stage cache alone.

Used at the end of ``mcmt run`` and by ``mcmt associate --run DIR`` (which redoes only this part). The
outputs are written as a new generation of the run folder and switched in once complete
(pipeline/runfolder/generation.py); ``run.json`` records the cameras, the settings and the latest
association's thresholds (pipeline/runfolder/runfile.py).
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from pipeline.runfolder.cache import CameraCache, read_boxes
from core.config import to_dict
from core.errors import UserError
from pipeline.config import RunConfig
from pipeline.runfolder.generation import Generation, fingerprints
from pipeline.runfolder.runfile import read_run_file, record_association
from pipeline.runfolder import runfile
from pipeline.tracklet import Tracklet, attach_footprints
from pipeline.outputs.world import box_world, fields_of_view, load_for_run, trajectories, transitions
from pipeline.outputs.writers import build_identities, copy_thumbnails, write_identities, write_tracks, write_videos

log = logging.getLogger(__name__)
__all__ = ["associate_and_write", "load_all_tracklets", "read_run_file", "write_run_file"]


def write_run_file(run_dir: Path, cameras: Sequence[dict], cfg: RunConfig, extra: dict) -> None:
    runfile.write_run_file(run_dir, cameras, to_dict(cfg), extra)


def check_association_inputs(cfg: RunConfig, cameras: Sequence[dict]):
    """The topology (its file, its cameras) and the calibration checked against the run's cameras before
    any work, so that a bad one stops the run before its cache is touched; returns the calibration."""
    topology = cfg.association.topology
    if topology:
        from pipeline.association.topology import load_topology

        if not Path(topology).is_file():
            raise UserError(f"topology file not found: {topology}")
        _naming(topology, lambda: load_topology(topology).index([c["name"] for c in cameras]))
    return _naming(cfg.calibration, lambda: load_for_run(cfg.calibration, cameras))


def _naming(path: Optional[str], check):
    """``check()``, its UserError made one line that names the file ``path``."""
    try:
        return check()
    except UserError as exc:
        text = " ".join(str(exc).split())
        raise UserError(text if str(path) in text else f"{path}: {text}") from None


def load_all_tracklets(run_dir: Path, cameras: Sequence[str], boxes: Optional[dict] = None
                       ) -> tuple[list[Tracklet], dict, dict]:
    """Tracklets of every camera from the cache (with their foot points from the cached boxes);
    thumbnails keyed by (camera, track id). ``boxes``: a dict that receives each camera's boxes."""
    tracklets, thumbs, thumb_dirs = [], {}, {}
    for cam in cameras:
        cache = CameraCache(run_dir, cam)
        if not cache.track_complete():
            raise UserError(f"{run_dir}: camera '{cam}' has no finished tracks in the cache "
                            "(the run was interrupted?); rerun 'mcmt run' with the same --out to finish it")
        ts, th = cache.load_tracklets()
        cam_boxes = read_boxes(cache)
        attach_footprints(ts, cam_boxes)
        if boxes is not None:
            boxes[cam] = cam_boxes
        tracklets += ts
        thumbs.update({(cam, tid): v for tid, v in th.items()})
        thumb_dirs[cam] = cache.thumbs
    return tracklets, thumbs, thumb_dirs


def global_ids(tracklets: Sequence[Tracklet], cfg: RunConfig, topology_path: Optional[str] = None,
               ground=None) -> tuple[np.ndarray, dict]:
    """(T,) global ids from :func:`pipeline.association.associate.associate_detailed` and its statistics; sets
    ``flagged`` on the tracklets it flags. Every tracklet is its own identity when association is
    disabled. ``ground``: the camera calibration (GroundCalibration) for the ground-plane evidence."""
    from pipeline.association.associate import associate_detailed

    if not tracklets or not cfg.association.enabled:
        return np.arange(1, len(tracklets) + 1, dtype=np.int64), {}
    topology = None
    path = topology_path or cfg.association.topology
    if path:
        from pipeline.association.topology import load_topology
        topology = load_topology(path)
    res = associate_detailed(list(tracklets), cfg.association, topology, ground=ground)
    for t, f in zip(tracklets, res.flagged):
        t.flagged = bool(f)
    return np.asarray(res.global_ids, np.int64), dict(res.stats)


def associate_and_write(run_dir: Path, cfg: RunConfig, cameras: Sequence[dict], *, sources=None,
                        topology: Optional[str] = None, stats: Optional[dict] = None, ground=None) -> dict:
    """Association + every output file; returns the summary written into identities.json. ``ground``:
    the checked calibration (loaded from ``cfg.calibration`` when not given)."""
    run_dir = Path(run_dir)
    names = [c["name"] for c in cameras]
    ground = ground if ground is not None else load_for_run(cfg.calibration, cameras)
    t0 = time.perf_counter()
    boxes: dict = {}
    made_from = fingerprints(run_dir, names)          # the tracklets this generation is made from
    tracklets, thumbs, thumb_dirs = load_all_tracklets(run_dir, names, boxes)
    gids, assoc_stats = global_ids(tracklets, cfg, topology, ground)
    assoc_seconds = time.perf_counter() - t0
    gid_maps: dict[str, dict[int, int]] = {n: {} for n in names}
    for t, g in zip(tracklets, gids):
        gid_maps[t.camera][t.track_id] = int(g)
    interpolated = 0
    if cfg.output.interpolate:                         # short gaps of an identity in a camera (boxes only)
        from pipeline.outputs.interpolate import fill_cameras

        boxes, gid_maps, interpolated = fill_cameras(boxes, cameras, cfg.output.interpolate_seconds, gid_maps)
    gen = Generation(run_dir)                          # written aside, switched in once complete
    mot = write_tracks(gen.dir, names, boxes, gid_maps, {n: box_world(boxes[n], ground, n) for n in names})
    thumbnails = {}
    for gid in sorted(set(int(g) for g in gids if g > 0)):
        members = [t for t, g in zip(tracklets, gids) if int(g) == gid]
        thumbnails[gid] = copy_thumbnails(gen.dir, gid, members, thumbs, thumb_dirs, cfg.reid.thumbnails)
    attr_names = next((t.attribute_names for t in tracklets if t.attribute_names), ())
    summary = {"cameras": len(names), "tracklets": len(tracklets),
               "identities": int(len(set(int(g) for g in gids if g > 0))),
               "multi_camera_identities": _multi_camera(tracklets, gids),
               "flagged_tracklets": int(sum(t.flagged for t in tracklets)),
               "boxes": int(sum(len(m) for m in mot.values())), "interpolated_boxes": interpolated,
               "association_seconds": round(assoc_seconds, 3),
               "association_thresholds": association_thresholds(assoc_stats, cfg.association),
               "association": to_dict(cfg.association), "association_stats": assoc_stats, **(stats or {})}
    summary["calibration"] = ground.record() if ground is not None else None
    summary["fields_of_view"] = fields_of_view(ground, cameras)
    written = np.concatenate([m[:, 1] for m in mot.values()]).astype(np.int64) if mot else np.zeros(0, np.int64)
    counts = dict(zip(*(v.tolist() for v in np.unique(written, return_counts=True))))
    doc = build_identities(cameras, tracklets, gids, thumbnails, attr_names, summary, trajectories(mot, cameras),
                           counts)
    summary["transitions"] = transitions(doc["identities"])
    write_identities(gen.dir, doc)
    if cfg.output.save_video and sources is not None:
        write_videos(gen.dir, sources, mot)
    if cfg.output.report:
        from pipeline.outputs.report import write_report
        write_report(gen.dir, run_dir)
    gen.commit(made_from, {"config": to_dict(cfg)})
    record_association(run_dir, summary["association_thresholds"], assoc_stats, summary["calibration"])
    return summary


def association_thresholds(stats: dict, cfg) -> dict:
    """The thresholds the association used (``cfg``: its AssociationConfig) and where the ``auto`` ones
    came from, for the summary table of the report; empty when the association did not run."""
    if "link_threshold" not in stats:
        return {}
    cal = stats.get("calibration", {})
    auto = [name for name, value in (("link", cfg.link_threshold), ("merge", cfg.threshold),
                                     ("same_camera", cfg.same_camera_threshold)) if value == "auto"]
    return {"link": stats["link_threshold"], "merge": stats["threshold"],
            "same_camera": stats["same_camera_threshold"], "links": stats.get("links", 0),
            "calibrated": ", ".join(auto) or "none (all set)",
            "calibrated_from": f"{cal.get('negatives', 0)} pairs: {cal.get('source', '')}"}


def _multi_camera(tracklets: Sequence[Tracklet], gids: np.ndarray) -> int:
    cams: dict[int, set] = {}
    for t, g in zip(tracklets, gids):
        if g > 0:
            cams.setdefault(int(g), set()).add(t.camera)
    return sum(1 for v in cams.values() if len(v) > 1)

"""Outputs of a run folder (all written atomically).

``mot/<camera>.txt`` (MOTChallenge, global ids), ``mtmc.txt`` (AI City, camera_id = 1-based index in
``identities.json`` "cameras"), ``identities.json``, ``thumbs/<gid>_<camera>_<k>.jpg`` and, on request,
``videos/<camera>.mp4`` with boxes drawn in each identity's colour.
"""
from __future__ import annotations

import base64
import logging
import shutil
from pathlib import Path
from typing import Mapping, Optional, Sequence

import numpy as np

from core.atomic import atomic_write, atomic_write_json
from core.boxes import xywh_to_xyxy
from core.frames import group_by_frame
from pipeline.runfolder.layout import IDENTITIES_FILE, MTMC_FILE, mot_file, thumb_name, video_file
from pipeline.tracklet import Tracklet
from reid.schema import AttributeSchema

log = logging.getLogger(__name__)


def map_ids(ids: np.ndarray, mapping: Mapping[int, int]) -> np.ndarray:
    """(N,) track ids -> (N,) int64 ids of ``mapping`` (0 where it has none); one lookup per distinct id."""
    uniq, inv = np.unique(np.asarray(ids).astype(np.int64), return_inverse=True)
    return np.array([mapping.get(int(u), 0) for u in uniq], np.int64)[inv.reshape(-1)]


def local_to_mot(boxes: np.ndarray, gid_of: Mapping[int, int], world: Optional[np.ndarray] = None) -> np.ndarray:
    """(N, 7) frame0, local id, x1, y1, x2, y2, score -> (M, 10) MOT rows with global ids, 1-based frames;
    ``world`` (N, 2) ground positions go to columns 7-8 (MOT15's world x, y; -1 where unknown).

    Boxes whose local id has no global id (dropped tracklets) are left out, and so are all but the best scored
    of one identity's boxes in one frame (two tracklets of one camera share an identity and a frame only at a
    handover, pipeline/association/constraints.py): an id has one box per frame, as MOTChallenge files require.
    """
    if len(boxes) == 0:
        return np.zeros((0, 10), np.float64)
    gids = map_ids(boxes[:, 1], gid_of)
    keep = gids > 0
    order = np.lexsort((-boxes[:, 6], gids, boxes[:, 0]))             # by frame, identity, best score first
    first = np.ones(len(order), bool)
    first[1:] = (boxes[order[1:], 0] != boxes[order[:-1], 0]) | (gids[order[1:]] != gids[order[:-1]])
    keep[order[~first]] = False
    b = boxes[keep]
    rows = np.full((len(b), 10), -1.0)
    rows[:, 0] = b[:, 0] + 1
    rows[:, 1] = gids[keep]
    rows[:, 2:4] = b[:, 2:4]
    rows[:, 4:6] = b[:, 4:6] - b[:, 2:4]
    rows[:, 6] = b[:, 6]
    if world is not None:
        w = world[keep]
        rows[:, 7:9] = np.where(np.isfinite(w), w, -1.0)
    return rows[np.lexsort((rows[:, 1], rows[:, 0]))]


def write_tracks(run_dir: Path, cameras: Sequence[str], boxes: Mapping[str, np.ndarray],
                 gid_maps: Mapping[str, Mapping[int, int]], world: Optional[Mapping[str, np.ndarray]] = None
                 ) -> dict[str, np.ndarray]:
    """Write ``mot/<camera>.txt`` and ``mtmc.txt``; returns the MOT rows per camera. ``world``: camera ->
    (N, 2) ground positions of its boxes (calibrated cameras only)."""
    from pipeline.formats.mot import write_mot
    from pipeline.formats.aicity import mot_to_mtmc, write_mtmc

    world = world or {}
    mot = {cam: local_to_mot(boxes[cam], gid_maps.get(cam, {}), world.get(cam)) for cam in cameras}
    for cam in cameras:
        write_mot(mot_file(run_dir, cam), mot[cam])
    write_mtmc(Path(run_dir) / MTMC_FILE, mot_to_mtmc(mot, list(cameras)))
    return mot


def attribute_summary(names: Sequence[str], probs: Optional[np.ndarray], limit: int = 8) -> list[str]:
    """Readable attributes, most confident first: binary ones with p >= 0.5 ("female 0.93") and the
    most likely class of each multi-class group ("upper_color: white 0.88")."""
    if probs is None or len(names) == 0:
        return []
    return AttributeSchema.from_output_names(names).readable(probs, by_confidence=True)[:limit]


def _mean_attributes(tracklets: Sequence[Tracklet]) -> Optional[np.ndarray]:
    """Box-count-weighted mean of the tracklets' attribute means; None when none has attributes."""
    with_attrs = [t for t in tracklets if t.attributes is not None and t.attributes.size]
    if not with_attrs:
        return None
    w = np.array([max(t.n_boxes, 1) for t in with_attrs], np.float64)
    return (np.stack([t.attributes for t in with_attrs]) * w[:, None]).sum(0) / w.sum()


def identity_embedding(tracklets: Sequence[Tracklet]) -> Optional[np.ndarray]:
    """Box-count-weighted mean of the tracklets' mean features, L2-normalised (D,); None without features."""
    with_feats = [t for t in tracklets if t.has_features]
    if not with_feats:
        return None
    w = np.array([max(t.n_boxes, 1) for t in with_feats], np.float64)
    f = (np.stack([t.mean_feature() for t in with_feats]) * w[:, None]).sum(0)
    return (f / max(float(np.linalg.norm(f)), 1e-12)).astype(np.float32)


def encode_embedding(f: Optional[np.ndarray]) -> Optional[str]:
    """Base64 of the little-endian float16 values (the compact "embedding_f16" of identities.json)."""
    return None if f is None else base64.b64encode(np.asarray(f, "<f2").tobytes()).decode("ascii")


def copy_thumbnails(run_dir: Path, gid: int, members: Sequence[Tracklet], thumbs: Mapping[tuple, list[str]],
                    cache_thumb_dirs: Mapping[str, Path], per_camera: int) -> dict[str, list[str]]:
    """Copy up to ``per_camera`` thumbnails per camera (from the longest tracklets first)."""
    out: dict[str, list[str]] = {}
    for t in sorted(members, key=lambda t: -t.n_boxes):
        names = out.setdefault(t.camera, [])
        for src in thumbs.get(t.key, []):
            if len(names) >= per_camera:
                break
            rel = thumb_name(gid, t.camera, len(names))
            src_path = cache_thumb_dirs[t.camera] / src
            if src_path.is_file():
                atomic_write(Path(run_dir) / rel, lambda tmp, src=src_path: shutil.copyfile(src, tmp))
                names.append(rel)
    return {cam: v for cam, v in out.items() if v}


def build_identities(cameras: Sequence[dict], tracklets: Sequence[Tracklet], gids: np.ndarray,
                     thumbnails: Mapping[int, dict[str, list[str]]], attribute_names: Sequence[str],
                     summary: dict, paths: Optional[Mapping[int, list]] = None,
                     box_counts: Optional[Mapping[int, int]] = None) -> dict:
    """The ``identities.json`` document (see the agreed run-folder layout); ``paths``: global id ->
    ground trajectory [[t, X, Y], ...] of calibrated runs; ``box_counts``: global id -> boxes written for it
    (with the interpolated ones; default: its tracklets' boxes)."""
    identities = []
    for gid in sorted(set(int(g) for g in gids if g > 0)):
        members = [t for t, g in zip(tracklets, gids) if int(g) == gid]
        cams = [c["name"] for c in cameras if any(t.camera == c["name"] for t in members)]
        spans = {cam: [min(t.start_time for t in members if t.camera == cam),
                       max(t.end_time for t in members if t.camera == cam)] for cam in cams}
        attrs = _mean_attributes(members)
        identities.append({
            "global_id": gid, "cameras": cams,
            "tracklets": [{"camera": t.camera, "track_id": t.track_id, "start_frame": t.start_frame,
                           "end_frame": t.end_frame, "start_time": round(t.start_time, 3),
                           "end_time": round(t.end_time, 3), "n_boxes": t.n_boxes, "flagged": t.flagged}
                          for t in sorted(members, key=lambda t: (t.start_time, t.camera))],
            "time_spans": {c: [round(a, 3), round(b, 3)] for c, (a, b) in spans.items()},
            "box_count": int(box_counts.get(gid, 0) if box_counts is not None else sum(t.n_boxes for t in members)),
            "attributes": ({n: round(float(p), 4) for n, p in zip(attribute_names, attrs)}
                           if attrs is not None else {}),
            "attribute_summary": attribute_summary(attribute_names, attrs),
            "thumbnails": thumbnails.get(gid, {}),
            "embedding_f16": encode_embedding(identity_embedding(members)),
        })
        if paths and paths.get(gid):
            identities[-1]["trajectory"] = paths[gid]
    dim = next((t.features.shape[1] for t in tracklets if t.has_features), 0)
    return {"cameras": list(cameras), "attribute_names": list(attribute_names), "identities": identities,
            "summary": summary, "embedding_dim": int(dim)}


def write_identities(run_dir: Path, doc: dict) -> Path:
    path = Path(run_dir) / IDENTITIES_FILE
    atomic_write_json(path, doc)
    return path


def write_videos(run_dir: Path, sources: Sequence, mot: Mapping[str, np.ndarray]) -> list[Path]:
    """``videos/<camera>.mp4``: every analysed frame with its global-id boxes drawn (a second decode)."""
    import cv2

    from pipeline.outputs.draw import draw_tracks

    out = []
    for src in sources:
        rows = mot.get(src.name, np.zeros((0, 10)))
        by_frame = group_by_frame(rows[:, 0], rows)

        def write(tmp: str, src=src, by_frame=by_frame) -> None:
            writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*"mp4v"), src.fps / src.stride,
                                     (src.width, src.height))
            try:
                for frame in src:
                    r = by_frame.get(frame.index + 1, np.zeros((0, 10)))
                    writer.write(draw_tracks(frame.image, xywh_to_xyxy(r[:, 2:6]), r[:, 1].astype(np.int64)))
            finally:
                writer.release()

        out.append(atomic_write(video_file(run_dir, src.name), write, suffix=".tmp.mp4"))
    return out

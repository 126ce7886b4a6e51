"""Long recordings as time chunks: cut a camera into chunks tracked independently (in parallel on a
cluster), then stitch them back into one camera's continuous tracks.

Chunk ``k`` of a camera reads frames ``[s_k, s_{k+1} + overlap)``: its own part plus ``overlap``
frames of the next chunk. The tracker of chunk ``k + 1`` starts cold at ``s_{k+1}`` (tracks need a
few frames to be confirmed), so chunk ``k`` stays the authority over the overlap and chunk ``k + 1``
takes over right after it. In the overlap both chunks see the same people with the same detector:
a track of chunk ``k + 1`` continues the track of chunk ``k`` whose boxes it overlaps (mean IoU over
the common frames, one-to-one, Hungarian), with appearance as a tie-break when both have features.

``stitch_camera`` writes the camera's ordinary track stage (``boxes.csv``, tracklets, thumbnails,
``track.json``) from the chunks' caches, so association, outputs and ``mcmt associate`` read a
chunked camera exactly like a whole one.
"""
from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from core.atomic import atomic_write
from core.boxes import iou_pairs
from core.frames import group_by_frame
from pipeline.runfolder.cache import CameraCache, read_boxes, stage_key
from pipeline.runfolder.layout import cache_thumb_name
from pipeline.run.video import VideoSource
from pipeline.tracklet import Tracklet

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StitchParams:
    min_iou: float = 0.5           # mean IoU over the common overlap frames for two tracks to be one
    min_common: int = 3            # common overlap frames needed to compare two tracks
    appearance_weight: float = 0.1  # tie-break: score = mean IoU - weight * cosine distance of the means


def plan_chunks(src: VideoSource, chunk_frames: int, overlap_frames: int) -> list[VideoSource]:
    """The time chunks of one camera: ``[src]`` when chunking is off (``chunk_frames <= 0``), the
    length is unknown, or the video fits in one chunk. Bounds are on the stride grid."""
    end = src.num_frames * src.stride if src.num_frames >= 0 else -1
    if chunk_frames <= 0 or end < 0 or end <= chunk_frames:
        return [src]
    step = -(-int(chunk_frames) // src.stride) * src.stride
    overlap = -(-max(0, int(overlap_frames)) // src.stride) * src.stride
    starts = list(range(0, end, step))
    chunks = []
    for k, s in enumerate(starts):
        last = k == len(starts) - 1
        part = src.chunk_of(k, s, end if last else min(end, starts[k + 1] + overlap))
        part.max_frames = None                # the range already encodes max_frames
        chunks.append(part)
    return chunks


def _tracks_in(boxes: np.ndarray, lo: int, hi: int) -> dict[int, dict[int, np.ndarray]]:
    """track id -> {frame: box} of the rows with lo <= frame < hi."""
    rows = boxes[(boxes[:, 0] >= lo) & (boxes[:, 0] < hi)]
    out: dict[int, dict[int, np.ndarray]] = {}
    for f, r in group_by_frame(rows[:, 0], rows[:, 1:6]).items():
        for row in r:
            out.setdefault(int(row[0]), {})[int(f)] = row[1:5]
    return out


def match_overlap(prev: np.ndarray, nxt: np.ndarray, lo: int, hi: int, params: StitchParams,
                  prev_feats: Optional[dict] = None, next_feats: Optional[dict] = None) -> dict[int, int]:
    """{id in ``nxt`` -> id in ``prev``}: tracks of two chunks that are one person, from their boxes
    (N, 7: frame, id, x1, y1, x2, y2, score) in the overlap frames [lo, hi)."""
    from scipy.optimize import linear_sum_assignment

    a, b = _tracks_in(prev, lo, hi), _tracks_in(nxt, lo, hi)
    if not a or not b:
        return {}
    ids_a, ids_b = sorted(a), sorted(b)
    score = np.full((len(ids_a), len(ids_b)), -1.0)
    for i, ta in enumerate(ids_a):
        for j, tb in enumerate(ids_b):
            common = sorted(set(a[ta]) & set(b[tb]))
            if len(common) < params.min_common:
                continue
            s = float(iou_pairs(np.stack([a[ta][f] for f in common]), np.stack([b[tb][f] for f in common])).mean())
            if s < params.min_iou:
                continue
            fa, fb = (prev_feats or {}).get(ta), (next_feats or {}).get(tb)
            if fa is not None and fb is not None:
                s -= params.appearance_weight * (1.0 - float(fa @ fb))
            score[i, j] = s
    if not (score > -1).any():
        return {}
    rows, cols = linear_sum_assignment(-score)
    return {ids_b[c]: ids_a[r] for r, c in zip(rows, cols) if score[r, c] > -1}


def _mean_features(tracklets: Sequence[Tracklet]) -> dict[int, np.ndarray]:
    return {t.track_id: t.mean_feature() for t in tracklets if t.has_features}


def stitch_key(chunk_keys: Sequence[str], params: StitchParams) -> str:
    return stage_key({"stitch": list(chunk_keys), "params": vars(params)})


def stitch_camera(run_dir: Path, chunks: Sequence[VideoSource], key: str, *, gallery_size: int = 10,
                  thumbnails: int = 4, params: StitchParams = StitchParams()) -> dict:
    """Join the finished chunks of one camera into its track stage (see the module docstring);
    returns the camera's ``track.json`` info."""
    cam = chunks[0].name
    final = CameraCache(run_dir, cam)
    final.start_track_stage(key)
    pieces: dict[int, list[tuple[Tracklet, Path, list[str]]]] = {}   # global id -> (tracklet, thumb dir, names)
    kept_rows = []
    prev_boxes, prev_feats, prev_map = None, None, {}
    next_id = 1
    info = {"camera": cam, "analysed_frames": 0, "frames": 0, "corrupt": 0, "fps": chunks[0].fps,
            "chunks": len(chunks), "stitched_tracks": 0, "identity_splits": 0}
    for k, src in enumerate(chunks):
        cache = CameraCache(run_dir, cam, src.chunk)
        boxes = read_boxes(cache)
        tracklets, thumbs = cache.load_tracklets()
        feats = _mean_features(tracklets)
        take_from = chunks[k - 1].stop if k > 0 else src.start    # chunk k-1 owns its overlap
        mapping: dict[int, int] = {}
        if k > 0:
            matched = match_overlap(prev_boxes, boxes, src.start, take_from, params, prev_feats, feats)
            mapping = {b: prev_map[a] for b, a in matched.items() if a in prev_map}
            info["stitched_tracks"] += len(mapping)
        rows = boxes[boxes[:, 0] >= take_from]
        for tid in sorted(set(rows[:, 1].astype(int).tolist()) | set(mapping)):
            if tid not in mapping:
                mapping[tid] = next_id
                next_id += 1
            next_id = max(next_id, mapping[tid] + 1)
        if len(rows):
            rows = rows.copy()
            rows[:, 1] = [mapping[int(t)] for t in rows[:, 1]]
            kept_rows.append(rows)
        kept = set(rows[:, 1].astype(int).tolist())
        for t in tracklets:                  # a piece lying wholly in the previous chunk's overlap is dropped
            if mapping.get(t.track_id) in kept:
                pieces.setdefault(mapping[t.track_id], []).append((t, cache.thumbs, thumbs.get(t.track_id, [])))
        t_info = cache.track_info()
        info["corrupt"] += int(t_info.get("corrupt", 0))
        info["identity_splits"] += int(t_info.get("identity_splits", 0))
        info["frames"] = max(info["frames"], int(t_info.get("frames", 0)))
        info["sharpen"] = float(t_info.get("sharpen", 0.0))     # one amount per camera (its whole video)
        # frames of the overlap were analysed by both chunks: counted once
        info["analysed_frames"] += int(t_info.get("analysed_frames", 0)) - len(range(src.start, take_from, src.stride))
        prev_boxes, prev_feats, prev_map = boxes, feats, mapping
    all_rows = np.concatenate(kept_rows) if kept_rows else np.zeros((0, 7))
    all_rows = all_rows[np.lexsort((all_rows[:, 1], all_rows[:, 0]))]
    src = chunks[0]
    merged, thumb_names = [], {}
    by_id = {int(g): r for g, r in group_by_frame(all_rows[:, 1], all_rows[:, [0, 2, 3, 4, 5]]).items()}
    for gid in sorted(pieces):
        rows = by_id.get(gid)
        if rows is None:
            continue
        merged.append(_merge(cam, gid, pieces[gid], rows, src, gallery_size))
        thumb_names[gid] = _copy_thumbs(final.thumbs, gid, pieces[gid], thumbnails)
    atomic_write(final.boxes, lambda tmp: np.savetxt(
        tmp, all_rows, fmt=["%d", "%d", "%.2f", "%.2f", "%.2f", "%.2f", "%.4f"], delimiter=","), suffix=".csv")
    info.update(tracklets=len(merged), boxes=int(len(all_rows)))
    final.finish_track_stage(key, merged, thumb_names, info)
    log.info("camera '%s': %d chunks stitched, %d tracks continued across chunk borders",
             cam, len(chunks), info["stitched_tracks"])
    return info


def _merge(cam: str, gid: int, parts, rows: np.ndarray, src: VideoSource, gallery_size: int) -> Tracklet:
    """One tracklet from the pieces of one person in consecutive chunks; ``rows`` (N, 5) are its kept
    boxes (frame, x1, y1, x2, y2) in frame order."""
    ts = [p[0] for p in parts]
    real = [t for t in ts if t.has_features and not t.fallback]
    use = real or [t for t in ts if t.has_features]      # a piece's fallback crop only if no piece has better
    feats = [t.features for t in use]
    weights = [t.weights if len(t.weights) == len(t.features) else np.ones(len(t.features), np.float32)
               for t in use]
    if feats:
        f, w = np.concatenate(feats), np.concatenate(weights)
        best = np.argsort(-w, kind="stable")[:gallery_size]
        f, w = f[np.sort(best)], w[np.sort(best)]
    else:
        f, w = np.zeros((0, 0), np.float32), np.zeros((0,), np.float32)
    with_attr = [t for t in ts if t.attributes is not None]
    attrs = (np.average(np.stack([t.attributes for t in with_attr]), axis=0,
                        weights=[max(t.n_boxes, 1) for t in with_attr]).astype(np.float32)
             if with_attr else None)
    start, end = int(rows[0, 0]), int(rows[-1, 0])
    return Tracklet(camera=cam, track_id=gid, start_frame=start, end_frame=end,
                    start_time=src.time_of(start), end_time=src.time_of(end), n_boxes=len(rows),
                    features=f.astype(np.float32), weights=w.astype(np.float32), attributes=attrs,
                    attribute_names=with_attr[0].attribute_names if with_attr else (),
                    flagged=all(t.flagged for t in ts), fallback=bool(use) and not real,
                    first_box=rows[0, 1:5].astype(np.float32), last_box=rows[-1, 1:5].astype(np.float32))


def _copy_thumbs(dest: Path, gid: int, parts, limit: int) -> list[str]:
    """Thumbnails of the pieces, evenly spread over them, copied as ``<gid>_<k>.jpg``."""
    files = [folder / name for _, folder, names in parts for name in names if (folder / name).is_file()]
    if not files or limit <= 0:
        return []
    pick = [files[i] for i in np.unique(np.linspace(0, len(files) - 1, min(limit, len(files))).round().astype(int))]
    dest.mkdir(parents=True, exist_ok=True)
    names = []
    for k, f in enumerate(pick):
        name = cache_thumb_name(gid, k)
        shutil.copyfile(f, dest / name)
        names.append(name)
    return names

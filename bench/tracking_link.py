"""What ``mcmt run`` writes for one camera, on the tracking bench's cached detections: the tracker's tracks,
then the association's joins within that camera (pipeline/association: broken tracks linked over short
gaps, re-entries clustered under the strict same-camera threshold), with no other camera to help.

Each track becomes a :class:`pipeline.tracklet.Tracklet` whose gallery follows ``mcmt run``'s crop
policy (pipeline.run.config ReIDRunConfig) as far as the bench's features allow: matched detections with an
embedding (score >= bench.tracking_data.EMBED_MIN), at least ``min_box_height`` pixels tall, covered by
no other track or detection of the frame beyond ``max_overlap``, every ``every_k_frames``-th frame of the track, at most
``gallery_size`` of them spread over the track.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from pipeline.association.associate import associate_detailed
from pipeline.association.config import AssociationConfig
from pipeline.run.config import ReIDRunConfig
from pipeline.run.crops import track_overlap
from pipeline.tracklet import Tracklet


def _usable(outs: np.ndarray, dets: np.ndarray, emb: np.ndarray, policy: ReIDRunConfig) -> np.ndarray:
    """(M,) bool: the tracks of one frame whose matched detection's embedding the gallery may take."""
    d = outs[:, 7].astype(np.int64)
    ok = (d >= 0) & (d < len(emb))
    ok[ok] &= np.abs(emb[d[ok]]).sum(1) > 0
    ok &= (outs[:, 3] - outs[:, 1]) >= policy.min_box_height
    return ok & (track_overlap(outs, dets) <= policy.max_overlap)


def tracklets_from_outputs(outputs: Sequence[np.ndarray], dets: Sequence[np.ndarray], feats: Sequence[np.ndarray],
                           fps: float, camera: str = "cam", policy: ReIDRunConfig | None = None) -> list[Tracklet]:
    """One tracklet per track id in the per-frame tracker outputs (M, 8: box, id, score, cls, detection
    index), with its gallery (module docstring)."""
    policy = policy or ReIDRunConfig()
    boxes: dict[int, list] = {}
    gallery: dict[int, list] = {}
    for frame, (o, d, e) in enumerate(zip(outputs, dets, feats)):
        if not len(o):
            continue
        ok = _usable(o, d, e, policy) if e is not None else np.zeros(len(o), bool)
        for row, use in zip(o, ok):
            tid = int(row[4])
            seen = boxes.setdefault(tid, [])
            if use and len(seen) % policy.every_k_frames == 0:
                gallery.setdefault(tid, []).append(e[int(row[7])])
            seen.append((frame, row[:4].astype(np.float32)))
    out = []
    for tid, seen in boxes.items():
        g = gallery.get(tid, [])
        if len(g) > policy.gallery_size:
            g = [g[k] for k in np.linspace(0, len(g) - 1, policy.gallery_size).round().astype(int)]
        f = np.array(g, np.float32) if g else np.zeros((0, 0), np.float32)
        if len(f):
            f /= np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
        (f0, b0), (f1, b1) = seen[0], seen[-1]
        out.append(Tracklet(camera, tid, f0, f1, f0 / fps, f1 / fps, n_boxes=len(seen), features=f,
                            weights=np.ones(len(f), np.float32), first_box=b0, last_box=b1))
    return out


def link_one_camera(outputs: Sequence[np.ndarray], dets: Sequence[np.ndarray], feats: Sequence[np.ndarray],
                    fps: float, cfg: AssociationConfig | None = None) -> list[np.ndarray]:
    """The tracker outputs with each track id replaced by its identity after the association of this
    camera's tracklets alone."""
    tracklets = tracklets_from_outputs(outputs, dets, feats, fps)
    ids = associate_detailed(tracklets, cfg or AssociationConfig()).global_ids
    new = {t.track_id: int(g) for t, g in zip(tracklets, ids)}
    out = []
    for o in outputs:
        o = o.copy()
        if len(o):
            o[:, 4] = [new[int(t)] for t in o[:, 4]]
        out.append(o)
    return out

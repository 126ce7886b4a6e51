"""Cross-camera association: one global identity per tracklet, usable without video.

    ids = associate(tracklets, AssociationConfig(), load_topology("topo.yaml"))

Steps (pure functions in the modules of pipeline/association/):
1. distances (distance.py): appearance between tracklet galleries (cosine of crop-quality weighted
   means; optionally k-reciprocal re-ranked, camera-pair normalised) fused with attribute disagreement,
2. hard constraints (constraints.py): same camera and overlapping in time, same camera and a move
   faster than ``max_speed``; with a topology, views that cannot see one person at once and moves
   faster than the topology allows,
3. calibration (calibration.py): every ``auto`` threshold from the distances of tracklets known to be
   different people (same camera, same time),
4. overlapping views (overlap.py): where a floor homography between two cameras can be learned from
   the run, tracklets seen at once whose foot points agree are one person (joined before the
   clustering), those whose foot points disagree are cannot-link; then linking (linking.py):
   consecutive tracklets one-to-one over short gaps (broken tracks, handoffs), with entry / exit
   zones learned from the run,
5. clustering (clustering.py) of the linked chains, constrained, stopped at ``threshold``; two
   tracklets of one camera only within ``same_camera_threshold``; the topology's travel-time
   windows checked on every merge; optional refinement (``refine``),
6. short tracklets kept, flagged, attached afterwards ("merge") or dropped, per config.

Global ids are 1-based and consecutive, numbered by first appearance; 0 = dropped. The statistics
(``AssociationResult.stats``) record the thresholds used and how they were found.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from pipeline.association.calibration import Calibration, calibrate, gallery_half_distances
from pipeline.association.clustering import (attach_to_clusters, constrained_agglomerative, group_matrices,
                                             refine_labels)
from pipeline.association.config import AUTO, AssociationConfig
from pipeline.association.constraints import (box_ends, cannot_link_matrix, gap_pairs, motion_blocked_pairs,
                                              HANDOVER_GAP, overlapping_pairs, topology_validator,
                                              tracklet_times)
from pipeline.association.distance import fused_distance as _fused
from pipeline.association.ground import apply_ground, skip_calibrated
from pipeline.association.linking import MUTUAL_QUANTILE, chain_labels, link_tracklets
from pipeline.association.overlap import overlap_evidence
from pipeline.association.topology import CameraTopology, load_topology
from pipeline.tracklet import Tracklet

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AssociationResult:
    global_ids: np.ndarray              # (T,) int64, 1-based consecutive; 0 = dropped
    flagged: np.ndarray                 # (T,) bool: short or without features
    stats: dict = field(default_factory=dict)   # counts and settings for identities.json

    @property
    def num_identities(self) -> int:
        return int(self.global_ids.max()) if self.global_ids.size else 0


def associate(tracklets: Sequence[Tracklet], cfg: AssociationConfig | None = None,
              topology: CameraTopology | None = None) -> np.ndarray:
    """(T,) global ids (1-based, consecutive; 0 only for tracklets dropped by
    ``short_tracklets: drop``). ``topology`` defaults to ``cfg.topology`` when that is set."""
    return associate_detailed(tracklets, cfg, topology).global_ids


def tracklet_lengths(tracklets: Sequence[Tracklet]) -> np.ndarray:
    """(T,) boxes per tracklet: ``n_boxes``, or the gallery size when n_boxes was not filled."""
    return np.array([t.n_boxes if t.n_boxes > 0 else (t.features.shape[0] if t.has_features else 0)
                     for t in tracklets], np.int64)


def fused_distance(tracklets: Sequence[Tracklet], cfg: AssociationConfig) -> np.ndarray:
    """(T, T) fused appearance + attribute distance; rows of tracklets without features are inf."""
    cam, start, end = tracklet_times(tracklets)
    return _fused(tracklets, cfg, cam, overlapping_pairs(cam, start, end))


def associate_detailed(tracklets: Sequence[Tracklet], cfg: AssociationConfig | None = None,
                       topology: CameraTopology | None = None, ground=None) -> AssociationResult:
    """Like :func:`associate`, plus the flagged mask and statistics. ``ground``: a camera calibration
    (pipeline/formats/calibration.py GroundCalibration) for the ground-plane evidence of ground.py."""
    t0 = time.perf_counter()
    cfg = cfg or AssociationConfig()
    if topology is None and cfg.topology:
        topology = load_topology(cfg.topology)
    n = len(tracklets)
    has_feat = np.array([t.has_features for t in tracklets], bool)
    short = (tracklet_lengths(tracklets) < cfg.min_tracklet_length) | ~has_feat
    policy = cfg.short_tracklets
    weak = np.array([t.fallback for t in tracklets], bool)     # one feature from a crop that failed the policy
    flagged = ~has_feat | weak | (short if policy != "keep" else False)
    dropped = short if policy == "drop" else np.zeros(n, bool)
    cam, start, end = tracklet_times(tracklets, topology)
    stats = {"tracklets": n, "short": int(short.sum()), "without_features": int((~has_feat).sum()),
             "fallback_features": int(weak.sum()),
             "handovers": _handovers(tracklets, start, end),
             "dropped": int(dropped.sum()), "linkage": cfg.linkage,
             "topology": topology is not None, "cannot_link_pairs": 0, "topology_rejections": 0}
    if not cfg.enabled or n == 0:
        labels = np.arange(n)
    else:
        labels = _cluster(tracklets, cfg, topology, cam, start, end, short, has_feat, weak, stats, ground)
    ids = _number_by_first_appearance(labels, dropped, start, tracklets)
    stats["identities"] = int(ids.max()) if n else 0
    stats["seconds"] = round(time.perf_counter() - t0, 4)
    log.info("association: %d tracklets -> %d identities (%d short, %d cannot-link pairs, %.2f s)",
             n, stats["identities"], stats["short"], stats["cannot_link_pairs"], stats["seconds"])
    return AssociationResult(ids, flagged, stats)


def _handovers(tracklets: Sequence[Tracklet], start: np.ndarray, end: np.ndarray) -> int:
    """How many tracklets :func:`tracklet_times` moved to start after the one they took over from: their start
    lies past their end minus their own duration (topology offsets cancel)."""
    duration = np.array([t.end_time - t.start_time for t in tracklets], np.float64)
    return int(np.sum(start - (end - duration) > HANDOVER_GAP / 2))


def _cluster(tracklets, cfg, topology, cam, start, end, short, has_feat, weak, stats, ground=None) -> np.ndarray:
    """(T,) cluster labels (any integers); tracklets without features stay alone, tracklets whose feature
    is a fallback crop's (and short ones under ``short_tracklets: merge``) join an identity after the
    clustering, so that they never bridge two."""
    mats = topology.matrices() if topology is not None else None
    pairs = overlapping_pairs(cam, start, end, None if mats is None else ~mats["overlap"])
    dist = _fused(tracklets, cfg, cam, pairs)
    cannot = cannot_link_matrix(cam, start, end, mats)
    stats["cannot_link_pairs"] = int(cannot.sum()) // 2               # symmetric, diagonal False
    if cfg.max_speed is not None:
        i, j = motion_blocked_pairs(tracklets, cam, start, end, cfg.max_speed, cfg.speed_slack)
        stats["motion_blocked"] = int((~cannot[i, j]).sum())
        cannot[i, j] = cannot[j, i] = True
    calib = calibrate(dist, pairs, cfg, gallery_half_distances(tracklets), cross=mats is not None)
    cal = calib.as_dict()
    stats.update(threshold=cal["threshold"], link_threshold=cal["link_threshold"],
                 same_camera_threshold=cal["same_camera_threshold"], calibration=cal)
    same = None                                                 # (i, j, solid) pairs of one person seen twice
    if ground is not None:                                      # calibrated cameras: the ground plane first
        gi, gj = apply_ground(ground, tracklets, cam, start, end, dist, cannot, stats)
        same = (gi, gj, np.ones(len(gi), bool))
    if cfg.overlap_geometry:
        other = _apply_overlap(tracklets, cam, start, end, dist, cannot, calib, stats, ground, cfg)
        same = other if same is None else tuple(np.concatenate(p) for p in zip(same, other))
    validator = _counting_validator(cam, start, end, mats, stats)
    core = (has_feat & ~short if cfg.short_tracklets in ("merge", "drop") else has_feat) & ~weak
    first, last = box_ends(tracklets)
    link_cannot = cannot                                        # the linking also refuses what the overlap rules out
    if same is not None and cfg.overlap_link_check and same[2].any():
        link_cannot, stats["overlap_link_conflicts"] = with_partner_conflicts(cannot, same[0][same[2]],
                                                                              same[1][same[2]], cam)
    groups = _link(dist, link_cannot, cam, start, end, core, first, last, calib, cfg, mats, stats)
    if same is not None:
        groups, stats["overlap_joined"] = _join_groups(groups, same[0], same[1], cannot, core)
    labels = _merge_groups(dist, cannot, cam, groups, core, calib, cfg, validator, stats)
    attach = has_feat & ~core & (weak | (cfg.short_tracklets == "merge"))   # labelled -1 so far
    if attach.any():
        labels = attach_to_clusters(dist, cannot, labels, calib.threshold, cfg.linkage, validator,
                                    items=np.flatnonzero(attach))
    rest = np.flatnonzero(labels < 0)                            # no features (or dropped)
    labels[rest] = labels.max(initial=-1) + 1 + np.arange(len(rest))
    return labels


def _apply_overlap(tracklets, cam, start, end, dist, cannot, calib: Calibration, stats, ground=None,
                   cfg: AssociationConfig | None = None):
    """Overlapping views (overlap.py): pairs whose foot points disagree become cannot-link, pairs
    whose foot points agree get distance 0 (``dist`` and ``cannot`` changed in place) and are
    returned (i, j), best first, to be joined before the clustering, with (solid,): matched nearly
    all the time both are seen (overlap.SOLID)."""
    cfg = cfg or AssociationConfig()
    si, sj, solid, diff, ostats = overlap_evidence(tracklets, cam, start, end, dist, calib.link_threshold,
                                                   cfg.overlap_motion, cfg.overlap_one_to_one)
    stats.update(ostats)
    si, sj, solid, diff = skip_calibrated(ground, tracklets, si, sj, solid, diff)   # calibrated: ground.py decides
    cannot[diff[:, 0], diff[:, 1]] = cannot[diff[:, 1], diff[:, 0]] = True
    dist[si, sj] = dist[sj, si] = 0.0
    return si, sj, solid


def with_partner_conflicts(cannot: np.ndarray, si: np.ndarray, sj: np.ndarray, cam: np.ndarray
                           ) -> tuple[np.ndarray, int]:
    """(a copy of ``cannot`` with the pairs of two cameras that the overlap's "same person" pairs (si, sj) rule
    out, how many pairs that added): x is the person p that the other view shows at the same place, so x is
    no tracklet y of p's camera that p cannot be (one seen there at the same time as p). The caller passes
    solid pairs only (matched at overlap.SOLID of their shared times: a track that switched people at a
    crossing agrees with each of them for a while, and would rule out the right links of both), and only
    x's direct partners count: partners of partners carry such switches into every decision about the
    people they met (even from solid pairs: 46 of 154 cached EPFL and three-camera runs moved, by -71 IDF1
    in all)."""
    out = cannot.copy()
    for x in np.unique(np.concatenate([si, sj])).tolist():
        partners = np.concatenate([sj[si == x], si[sj == x]])
        row = cannot[partners].any(axis=0) & (cam != cam[x])
        out[x] |= row
        out[:, x] |= row
    np.fill_diagonal(out, False)
    return out, int((out & ~cannot).sum()) // 2


def _join_groups(groups: np.ndarray, si: np.ndarray, sj: np.ndarray, cannot: np.ndarray, core: np.ndarray
                 ) -> tuple[np.ndarray, int]:
    """Groups (chain labels, -1 outside ``core``) with the groups of each pair (si, sj) made one, in
    order, unless a cannot-link lies between their members; returns (labels, pairs joined)."""
    groups = groups.copy()
    joined = 0
    for a, b in zip(si.tolist(), sj.tolist()):
        ga, gb = groups[a], groups[b]
        if not (core[a] and core[b]) or ga == gb:
            continue
        ma, mb = np.flatnonzero(groups == ga), np.flatnonzero(groups == gb)
        if cannot[np.ix_(ma, mb)].any():
            continue
        groups[mb] = ga
        joined += 1
    idx = np.flatnonzero(groups >= 0)
    groups[idx] = np.unique(groups[idx], return_inverse=True)[1].reshape(-1)    # 0..G-1 again
    return groups, joined


def _counting_validator(cam, start, end, mats, stats):
    """The topology's merge check (None without topology), counting refusals in ``stats``."""
    if mats is None:
        return None
    check = topology_validator(cam, start, end, mats)

    def validator(a, b):
        ok = check(a, b)
        stats["topology_rejections"] += int(not ok)
        return ok

    return validator


def _link(dist, cannot, cam, start, end, core, first, last, calib: Calibration, cfg, mats, stats) -> np.ndarray:
    """(T,) chain label per core tracklet (-1 for the others) from the linking stage."""
    n = len(cam)
    pairs = [gap_pairs(cam, start, end, cfg.same_camera_window, same_camera=True),
             gap_pairs(cam, start, end, cfg.link_window, same_camera=False)] if cfg.link_window > 0 else []
    i = np.concatenate([p[0] for p in pairs]) if pairs else np.zeros(0, np.int64)
    j = np.concatenate([p[1] for p in pairs]) if pairs else np.zeros(0, np.int64)
    keep = core[i] & core[j] & ~cannot[i, j]
    if mats is not None:                                          # direct moves within their window
        gap, ci, cj = start[j] - end[i], cam[i], cam[j]
        keep &= (ci == cj) | mats["overlap"][ci, cj] | (
            mats["allowed"][ci, cj] & (gap >= mats["tmin"][ci, cj]) & (gap <= mats["tmax"][ci, cj]))
    i, j = i[keep], j[keep]
    thr = np.full(len(i), calib.link_threshold)
    if cfg.same_camera_threshold not in (AUTO, None):             # a number caps one camera's links too
        thr[cam[i] == cam[j]] = min(calib.link_threshold, calib.same_camera_threshold)
    cap = calib.known_negative_quantile(MUTUAL_QUANTILE) if cfg.mutual_links else None
    loose = calib.known_negative_quantile(cfg.handoff_quantile) if cfg.handoff_geometry or cfg.insert_links else None
    hcap = (loose, cfg.handoff_quantile) if cfg.handoff_geometry else None
    icap = loose if cfg.insert_links else None
    nxt, link_stats = link_tracklets(i, j, dist[i, j], thr, n, cam, first, last, cfg.zones, cannot, cap,
                                     hcap, (start, end), icap)
    stats.update(link_stats)
    labels = np.full(n, -1, np.int64)
    idx = np.flatnonzero(core)
    labels[idx] = chain_labels(_restrict(nxt, idx))
    return labels


def _restrict(nxt: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``next`` links among the items ``idx``, renumbered 0..len(idx)-1."""
    pos = np.full(len(nxt), -1, np.int64)
    pos[idx] = np.arange(len(idx))
    sub = nxt[idx]
    return np.where(sub >= 0, pos[np.maximum(sub, 0)], -1)


def _merge_groups(dist, cannot, cam, groups, core, calib: Calibration, cfg, validator, stats,
                  block: int = 1024) -> np.ndarray:
    """(T,) labels of the core tracklets after clustering the linked groups (-1 for the others).
    One camera's tracklets in different groups farther apart than the same-camera threshold become
    cannot-link (``cannot`` is updated in place, in row blocks)."""
    idx = np.flatnonzero(core)
    labels = np.full(len(cam), -1, np.int64)
    if not len(idx):
        return labels
    g, c = groups[idx], cam[idx]
    full = len(idx) == len(cam)
    blocked = 0
    for r0 in range(0, len(idx), block):                        # the core's rows, a block at a time (no copy)
        r = slice(r0, min(len(idx), r0 + block))
        at = r if full else np.ix_(idx[r], idx)
        strict = (c[r, None] == c[None, :]) & ~(dist[at] <= calib.same_camera_threshold) & (g[r, None] != g[None, :])
        blocked += int((strict & ~cannot[at]).sum())
        cannot[at] |= strict
    stats["same_camera_blocked"] = blocked // 2
    gd, gc, sizes = group_matrices(dist, cannot, g, cfg.linkage, items=idx)
    order = np.argsort(g, kind="stable")
    members = np.split(idx[order], np.cumsum(sizes.astype(np.int64))[:-1])
    gv = None if validator is None else (
        lambda a, b: validator(np.concatenate([members[k] for k in a]), np.concatenate([members[k] for k in b])))
    glab = constrained_agglomerative(gd, gc, calib.threshold, cfg.linkage, gv, sizes)
    if cfg.refine:                                               # linked chains move as a whole
        glab, stats["refine_moves"] = refine_labels(gd, gc, glab, calib.threshold, gv, sizes)
    labels[idx] = glab[g]
    return labels


def _number_by_first_appearance(labels: np.ndarray, dropped: np.ndarray, start: np.ndarray,
                                tracklets: Sequence[Tracklet]) -> np.ndarray:
    """Map cluster labels to 1-based consecutive ids ordered by the cluster's first tracklet
    (start time, then camera, then local id); dropped tracklets get 0."""
    ids = np.zeros(len(labels), np.int64)
    keep = np.flatnonzero(~dropped)
    if not len(keep):
        return ids
    cams = np.array([tracklets[i].camera for i in keep], dtype=object)
    local = np.array([tracklets[i].track_id for i in keep], np.int64)
    order = keep[np.lexsort((local, cams.astype(str), start[keep]))]
    _, first = np.unique(labels[order], return_index=True)      # first position of each label
    rank = np.empty(len(first), np.int64)
    rank[np.argsort(first)] = np.arange(1, len(first) + 1)
    uniq, inv = np.unique(labels[order], return_inverse=True)
    ids[order] = rank[inv.reshape(-1)]
    return ids

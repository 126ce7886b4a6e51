"""Cross-camera association: one global identity per tracklet, usable without video.

    ids = associate(tracklets, AssociationConfig(threshold=0.45), load_topology("topo.yaml"))

Steps (each a pure function in pipeline/assoc_distance.py, assoc_constraints.py, clustering.py):
1. appearance distance between tracklet galleries (cosine; optionally k-reciprocal re-ranked),
2. fused with attribute disagreement (per group: probability that the two values differ),
3. cannot-link: same camera and overlapping in time, same camera and farther apart than
   ``same_camera_threshold``, or same camera and a move faster than ``max_speed`` between them;
   with a topology, also views that cannot see the person at the same time and moves faster
   than the topology allows,
4. constrained agglomerative clustering stopped at ``threshold`` (the number of people is found),
   with the topology's travel-time windows checked on every merge,
5. short tracklets kept, flagged, attached afterwards ("merge") or dropped, per config.

Global ids are 1-based and consecutive, numbered by first appearance; 0 = dropped.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from pipeline.assoc_constraints import cannot_link_matrix, motion_cannot_link, topology_validator, tracklet_times
from pipeline.assoc_distance import (appearance_distance, attribute_disagreement, fuse,
                                     rerank_distance, stack_galleries, tracklet_attributes)
from pipeline.association_config import AssociationConfig
from pipeline.clustering import attach_to_clusters, constrained_agglomerative
from pipeline.topology import CameraTopology, load_topology
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
    has = np.array([t.has_features for t in tracklets], bool)
    t = len(tracklets)
    out = np.full((t, t), np.inf, np.float32)
    idx = np.flatnonzero(has)
    if not len(idx):
        return out
    sub = [tracklets[i] for i in idx]
    feats, weights = stack_galleries(sub)
    app = appearance_distance(feats, weights, cfg.appearance, cfg.topk)
    if cfg.rerank:
        app = rerank_distance(app, cfg.rerank_k1, cfg.rerank_k2, cfg.rerank_lambda)
    probs, has_attr, names = tracklet_attributes(sub)
    attr = attribute_disagreement(probs, names) if probs is not None and cfg.attribute_weight > 0 else None
    out[np.ix_(idx, idx)] = fuse(app, attr, has_attr, cfg.attribute_weight)
    return out


def associate_detailed(tracklets: Sequence[Tracklet], cfg: AssociationConfig | None = None,
                       topology: CameraTopology | None = None) -> AssociationResult:
    """Like :func:`associate`, plus the flagged mask and statistics."""
    t0 = time.perf_counter()
    cfg = cfg or AssociationConfig()
    if topology is None and cfg.topology:
        topology = load_topology(cfg.topology)
    n = len(tracklets)
    has_feat = np.array([t.has_features for t in tracklets], bool)
    short = (tracklet_lengths(tracklets) < cfg.min_tracklet_length) | ~has_feat
    policy = cfg.short_tracklets
    flagged = ~has_feat | (short if policy != "keep" else False)
    dropped = short if policy == "drop" else np.zeros(n, bool)
    cam, start, end = tracklet_times(tracklets, topology)
    stats = {"tracklets": n, "short": int(short.sum()), "without_features": int((~has_feat).sum()),
             "dropped": int(dropped.sum()), "threshold": cfg.threshold, "linkage": cfg.linkage,
             "topology": topology is not None, "cannot_link_pairs": 0, "topology_rejections": 0}
    if not cfg.enabled or n == 0:
        labels = np.arange(n)
    else:
        labels = _cluster(tracklets, cfg, topology, cam, start, end, short, has_feat, stats)
    ids = _number_by_first_appearance(labels, dropped, start, tracklets)
    stats["identities"] = int(ids.max()) if n else 0
    stats["seconds"] = round(time.perf_counter() - t0, 4)
    log.info("association: %d tracklets -> %d identities (%d short, %d cannot-link pairs, %.2f s)",
             n, stats["identities"], stats["short"], stats["cannot_link_pairs"], stats["seconds"])
    return AssociationResult(ids, flagged, stats)


def _cluster(tracklets, cfg, topology, cam, start, end, short, has_feat, stats) -> np.ndarray:
    """(T,) cluster labels (any integers); tracklets without features stay alone."""
    n = len(tracklets)
    mats = topology.matrices() if topology is not None else None
    cannot = cannot_link_matrix(cam, start, end, mats)
    stats["cannot_link_pairs"] = int(np.triu(cannot, 1).sum())
    validator = None
    if mats is not None:
        check = topology_validator(cam, start, end, mats)

        def validator(a, b):
            ok = check(a, b)
            stats["topology_rejections"] += int(not ok)
            return ok

    if cfg.max_speed is not None:
        fast = motion_cannot_link(tracklets, cam, start, end, cfg.max_speed, cfg.speed_slack)
        stats["motion_blocked"] = int(np.triu(fast & ~cannot, 1).sum())
        cannot = cannot | fast
    dist = fused_distance(tracklets, cfg)
    if cfg.same_camera_threshold is not None:
        strict = (cam[:, None] == cam[None, :]) & ~(dist <= cfg.same_camera_threshold)
        np.fill_diagonal(strict, False)
        stats["same_camera_blocked"] = int(np.triu(strict & ~cannot, 1).sum())
        cannot = cannot | strict
    core = has_feat & ~short if cfg.short_tracklets in ("merge", "drop") else has_feat
    labels = np.full(n, -1, np.int64)
    idx = np.flatnonzero(core)
    sub_validator = None if validator is None else (lambda a, b: validator(idx[a], idx[b]))
    labels[idx] = constrained_agglomerative(dist[np.ix_(idx, idx)], cannot[np.ix_(idx, idx)],
                                            cfg.threshold, cfg.linkage, sub_validator)
    if cfg.short_tracklets == "merge":
        pool = np.flatnonzero(has_feat)                          # long ones labelled, short ones -1
        labels[pool] = attach_to_clusters(dist[np.ix_(pool, pool)], cannot[np.ix_(pool, pool)],
                                          labels[pool], cfg.threshold, cfg.linkage,
                                          None if validator is None else
                                          (lambda a, b: validator(pool[a], pool[b])))
    rest = np.flatnonzero(labels < 0)                            # no features (or dropped)
    labels[rest] = labels.max(initial=-1) + 1 + np.arange(len(rest))
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

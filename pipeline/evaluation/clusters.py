"""Clustering quality of an association against ground-truth identities (pure functions).

- purity: share of items whose predicted cluster's majority true id is their own
  (1.0 = no cluster mixes people; all-singletons also scores 1.0).
- completeness (inverse purity): share of items in their true id's majority cluster
  (1.0 = no person split over clusters; one big cluster also scores 1.0).
- pairwise precision / recall / F1 over all item pairs put together / truly together.
Both purity and completeness are needed; F1 combines the pair view.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


def contingency(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """(P, G) counts of items per (predicted cluster, true id)."""
    _, p = np.unique(np.asarray(pred), return_inverse=True)
    _, g = np.unique(np.asarray(true), return_inverse=True)
    table = np.zeros((p.max(initial=-1) + 1, g.max(initial=-1) + 1), np.int64)
    np.add.at(table, (p.reshape(-1), g.reshape(-1)), 1)
    return table


def purity(pred: np.ndarray, true: np.ndarray) -> float:
    table = contingency(pred, true)
    return float(table.max(1).sum() / max(table.sum(), 1))


def completeness(pred: np.ndarray, true: np.ndarray) -> float:
    table = contingency(pred, true)
    return float(table.max(0).sum() / max(table.sum(), 1))


def pair_scores(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    """Pairwise precision, recall and F1 (pairs of distinct items)."""
    table = contingency(pred, true)
    both = (table * (table - 1) // 2).sum()
    in_pred = (table.sum(1) * (table.sum(1) - 1) // 2).sum()
    in_true = (table.sum(0) * (table.sum(0) - 1) // 2).sum()
    p = both / in_pred if in_pred else 1.0
    r = both / in_true if in_true else 1.0
    return {"precision": float(p), "recall": float(r), "f1": float(2 * p * r / (p + r)) if p + r else 0.0}


def cluster_scores(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    """purity, completeness, pair precision/recall/F1 and the cluster counts."""
    out = {"purity": purity(pred, true), "completeness": completeness(pred, true)}
    out.update({f"pair_{k}": v for k, v in pair_scores(pred, true).items()})
    out["clusters"] = int(len(np.unique(pred)))
    out["identities"] = int(len(np.unique(true)))
    return out


def cluster_tracklets(samples, img_feats: np.ndarray, img_attrs: np.ndarray,
                      attribute_names: Sequence[str] = (), assoc_cfg=None) -> dict | None:
    """Cross-camera clustering of all tracklets through the association stage (``mcmt eval-reid --dataset mars``).

    Each (pid, camera, tracklet) group becomes a :class:`pipeline.tracklet.Tracklet` with its image
    features as gallery and disjoint time spans (MARS gives no common clock, so only identity and
    appearance decide); junk/distractor tracklets (pid <= 0) are left out. Returns clustering scores
    against the true identities (purity, completeness, pair precision/recall/F1, counts); None
    without labelled tracklets.
    """
    from pipeline.association.associate import associate
    from pipeline.association.config import AssociationConfig
    from pipeline.tracklet import Tracklet

    groups: dict[tuple, list[int]] = {}
    for i, s in enumerate(samples):
        if s.pid > 0:
            groups.setdefault((s.pid, s.camid, s.tracklet), []).append(i)
    tracklets, true = [], []
    for t, ((pid, cam, tr), idx) in enumerate(groups.items()):
        attrs = img_attrs[idx].mean(axis=0) if img_attrs.shape[1] else None
        tracklets.append(Tracklet(camera=f"c{cam}", track_id=int(tr), start_frame=0, end_frame=len(idx) - 1,
                                  start_time=10.0 * t, end_time=10.0 * t + 1.0, n_boxes=len(idx),
                                  features=img_feats[idx], weights=np.ones(len(idx), np.float32),
                                  attributes=attrs, attribute_names=tuple(attribute_names)))
        true.append(pid)
    if not tracklets:
        return None
    cfg = assoc_cfg or AssociationConfig()
    pred = associate(tracklets, cfg)
    scores = cluster_scores(pred, np.asarray(true))
    scores["threshold"] = cfg.threshold
    return scores

"""Constrained agglomerative clustering with cannot-link pairs and a stopping threshold.

``constrained_agglomerative`` repeatedly merges the two closest clusters (average, single or
complete linkage, Lance-Williams updates) unless any pair of their members is cannot-linked
or an optional ``validate(members_a, members_b)`` check refuses the merge, and stops when the
closest admissible pair is farther than ``threshold``: the number of clusters is discovered.

Each cluster keeps its nearest admissible neighbour, so one merge costs O(T) vectorised work
(plus a row rescan for the clusters whose neighbour changed); a few thousand items take
about a second.
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np

Validator = Callable[[np.ndarray, np.ndarray], bool]
LINKAGES = ("average", "single", "complete")


def _lance_williams(linkage: str, d_a: np.ndarray, d_b: np.ndarray, n_a: float, n_b: float) -> np.ndarray:
    """Distance of the merged cluster (a + b) to every other cluster; (T,) rows."""
    if linkage == "average":
        return (n_a * d_a + n_b * d_b) / (n_a + n_b)
    if linkage == "single":
        return np.minimum(d_a, d_b)
    if linkage == "complete":
        return np.maximum(d_a, d_b)
    raise ValueError(f"unknown linkage {linkage!r}; valid: {', '.join(LINKAGES)}")


class _Agglomerator:
    """State of one clustering run (instance state only)."""

    def __init__(self, dist: np.ndarray, cannot: np.ndarray, linkage: str):
        t = dist.shape[0]
        self.linkage = linkage
        self.d = np.array(dist, dtype=np.float32)                # (T, T) linkage distances
        self.block = np.array(cannot, dtype=bool) | np.asarray(cannot, bool).T   # (T, T) cannot-link
        np.fill_diagonal(self.block, True)
        self.refused: dict[int, set[int]] = {}    # merges refused by `validate` until a side changes
        self.size = np.ones(t)
        self.members: list[list[int]] = [[i] for i in range(t)]
        self.active = np.ones(t, bool)
        self.nn_idx = np.zeros(t, np.int64)
        self.nn_dist = np.full(t, np.inf, np.float32)
        self.refresh(np.arange(t))

    def _admissible(self, rows: np.ndarray) -> np.ndarray:
        """(len(rows), T) distances with blocked, refused and merged-away clusters at inf."""
        eff = np.where(self.block[rows] | ~self.active[None, :], np.inf, self.d[rows])
        for i, r in enumerate(rows):
            if r in self.refused:
                eff[i, list(self.refused[r])] = np.inf
        return eff

    def refresh(self, rows: np.ndarray) -> None:
        """Recompute the nearest admissible neighbour of ``rows``."""
        rows = rows[self.active[rows]]
        for s in range(0, len(rows), 256):                        # bounded temporary (256, T)
            r = rows[s:s + 256]
            eff = self._admissible(r)
            j = eff.argmin(1)
            self.nn_idx[r] = j
            self.nn_dist[r] = eff[np.arange(len(r)), j]

    def refuse(self, a: int, b: int) -> None:
        """Refuse merging a and b as they are now (asked again once either has grown)."""
        self.refused.setdefault(a, set()).add(b)
        self.refused.setdefault(b, set()).add(a)
        self.refresh(np.array([a, b]))

    def _forget_refusals(self, x: int) -> None:
        for k in self.refused.pop(x, ()):
            self.refused[k].discard(x)

    def merge(self, r: int, c: int) -> None:
        """Merge cluster c into cluster r (r keeps its index)."""
        row = _lance_williams(self.linkage, self.d[r], self.d[c], self.size[r], self.size[c])
        self.d[r], self.d[:, r] = row, row
        blk = self.block[r] | self.block[c]
        self.block[r], self.block[:, r] = blk, blk
        self.active[c] = False                                   # c is gone
        self.nn_dist[c] = np.inf
        self._forget_refusals(r)                                 # r changed: re-ask refused merges
        self._forget_refusals(c)
        self.size[r] += self.size[c]
        if len(self.members[c]) > len(self.members[r]):
            self.members[r], self.members[c] = self.members[c], self.members[r]
        self.members[r].extend(self.members[c])
        self.members[c] = []
        stale = (self.nn_idx == r) | (self.nn_idx == c)
        stale[r] = True
        self.refresh(np.flatnonzero(stale & self.active))
        eff = np.where(self.block[r] | ~self.active, np.inf, self.d[r])   # (T,) to the new cluster
        better = self.active & (eff < self.nn_dist)
        self.nn_idx[better] = r
        self.nn_dist[better] = eff[better]

    def labels(self) -> np.ndarray:
        out = np.empty(len(self.active), np.int64)
        for lab, r in enumerate(np.flatnonzero(self.active)):
            out[self.members[r]] = lab
        return out


def constrained_agglomerative(dist: np.ndarray, cannot_link: Optional[np.ndarray] = None,
                              threshold: float = 0.5, linkage: str = "average",
                              validate: Optional[Validator] = None) -> np.ndarray:
    """Cluster T items from a symmetric (T, T) distance; returns (T,) labels 0..C-1.

    ``cannot_link`` (T, T) bool: items that may never share a cluster. ``validate(a, b)``
    (member index arrays) may refuse a merge that pairwise constraints cannot express.
    """
    if linkage not in LINKAGES:
        raise ValueError(f"unknown linkage {linkage!r}; valid: {', '.join(LINKAGES)}")
    t = dist.shape[0]
    if dist.shape != (t, t):
        raise ValueError(f"distance matrix must be square, got shape {dist.shape}")
    if t == 0:
        return np.zeros(0, np.int64)
    cannot = np.zeros((t, t), bool) if cannot_link is None else cannot_link
    agg = _Agglomerator(np.nan_to_num(dist, nan=np.inf), cannot, linkage)
    while True:
        r = int(agg.nn_dist.argmin())
        if not agg.nn_dist[r] <= threshold:
            break
        c = int(agg.nn_idx[r])
        if validate is not None and not validate(np.array(agg.members[r]), np.array(agg.members[c])):
            agg.refuse(r, c)
            continue
        agg.merge(r, c)
    return agg.labels()


def _cluster_distance(dist: np.ndarray, labels: np.ndarray, n_clusters: int, linkage: str) -> np.ndarray:
    """(S, C) linkage distance of S rows (S, T) to clusters given by ``labels`` (T,) (-1 = none)."""
    keep = labels >= 0
    d, lab = dist[:, keep], labels[keep]
    if linkage == "average":
        onehot = np.zeros((len(lab), n_clusters), np.float32)
        onehot[np.arange(len(lab)), lab] = 1.0
        return (d @ onehot) / np.maximum(onehot.sum(0), 1.0)
    order = np.argsort(lab, kind="stable")
    starts = np.searchsorted(lab[order], np.arange(n_clusters))
    red = np.minimum if linkage == "single" else np.maximum
    return red.reduceat(d[:, order], starts, axis=1)


def attach_to_clusters(dist: np.ndarray, cannot_link: np.ndarray, labels: np.ndarray,
                       threshold: float, linkage: str = "average",
                       validate: Optional[Validator] = None) -> np.ndarray:
    """Attach each unlabelled item (label -1) to its nearest admissible cluster within
    ``threshold``, closest pairs first, never to another unlabelled item's cluster alone;
    the rest become new singleton clusters. Returns new (T,) labels 0..C'-1."""
    labels = labels.copy()
    todo = np.flatnonzero(labels < 0)                            # (S,)
    n_clusters = int(labels.max()) + 1 if (labels >= 0).any() else 0
    if len(todo) and n_clusters:
        onehot = np.zeros((len(labels), n_clusters), bool)
        lab_idx = np.flatnonzero(labels >= 0)
        onehot[lab_idx, labels[lab_idx]] = True
        blocked = (cannot_link[todo].astype(np.float32) @ onehot.astype(np.float32)) > 0   # (S, C)
        cost = np.where(blocked, np.inf, _cluster_distance(dist[todo], labels, n_clusters, linkage))
        members = [list(np.flatnonzero(labels == c)) for c in range(n_clusters)]
        while cost.size:
            s, c = np.unravel_index(int(cost.argmin()), cost.shape)
            if not cost[s, c] <= threshold:
                break
            item = todo[s]
            if validate is not None and not validate(np.array(members[c]), np.array([item])):
                cost[s, c] = np.inf
                continue
            labels[item] = c
            members[c].append(item)
            cost[s] = np.inf
            cost[cannot_link[todo, item], c] = np.inf            # items that conflict with s
    rest = np.flatnonzero(labels < 0)
    labels[rest] = n_clusters + np.arange(len(rest))
    return labels

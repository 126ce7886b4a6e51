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

    def __init__(self, dist: np.ndarray, cannot: np.ndarray, linkage: str, sizes: Optional[np.ndarray] = None):
        t = dist.shape[0]
        self.linkage = linkage
        self.d = np.array(dist, dtype=np.float32)                # (T, T) linkage distances
        self.block = np.array(cannot, dtype=bool) | np.asarray(cannot, bool).T   # (T, T) cannot-link
        np.fill_diagonal(self.block, True)
        self.refused: dict[int, set[int]] = {}    # merges refused by `validate` until a side changes
        self.size = np.ones(t) if sizes is None else np.asarray(sizes, np.float64).copy()
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
                              validate: Optional[Validator] = None, sizes: Optional[np.ndarray] = None) -> np.ndarray:
    """Cluster T items from a symmetric (T, T) distance; returns (T,) labels 0..C-1.

    ``cannot_link`` (T, T) bool: items that may never share a cluster. ``validate(a, b)``
    (member index arrays) may refuse a merge that pairwise constraints cannot express.
    ``sizes`` (T,): items that are already groups (average linkage weights them by size).
    """
    if linkage not in LINKAGES:
        raise ValueError(f"unknown linkage {linkage!r}; valid: {', '.join(LINKAGES)}")
    t = dist.shape[0]
    if dist.shape != (t, t):
        raise ValueError(f"distance matrix must be square, got shape {dist.shape}")
    if t == 0:
        return np.zeros(0, np.int64)
    cannot = np.zeros((t, t), bool) if cannot_link is None else cannot_link
    agg = _Agglomerator(np.nan_to_num(dist, nan=np.inf), cannot, linkage, sizes)
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
                       validate: Optional[Validator] = None, items: Optional[np.ndarray] = None) -> np.ndarray:
    """Attach each unlabelled item (label -1; only those in ``items`` when given) to its nearest
    admissible cluster within ``threshold``, closest pairs first, never to another unlabelled item's
    cluster alone; the rest become new singleton clusters. Returns new (T,) labels 0..C'-1."""
    labels = labels.copy()
    todo = np.flatnonzero(labels < 0)                            # (S,)
    if items is not None:
        todo = np.intersect1d(todo, np.asarray(items, np.int64))
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


def group_matrices(dist: np.ndarray, cannot: np.ndarray, labels: np.ndarray, linkage: str = "average",
                   block: int = 1024, items: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Groups given by ``labels`` (T,) 0..G-1 as items: (G, G) linkage distance, (G, G) cannot-link
    (any member pair) and (G,) sizes. Built through (G, T) arrays, column / row blocks at a time.
    ``items``: the rows / columns of ``dist`` and ``cannot`` that ``labels`` label (default: all), so
    that a subset is grouped without copying the matrices."""
    items = np.arange(len(labels)) if items is None else np.asarray(items, np.int64)
    perm = np.argsort(labels, kind="stable")
    order = items[perm]                                          # matrix rows in group order
    lab = labels[perm]
    starts = np.flatnonzero(np.r_[True, lab[1:] != lab[:-1]])
    sizes = np.diff(np.r_[starts, len(lab)]).astype(np.float64)
    red = {"average": np.add, "single": np.minimum, "complete": np.maximum}[linkage]
    t, g = len(labels), len(starts)
    rows = np.empty((g, t), np.float32)                          # (G, T) members' rows reduced
    rows_blk = np.empty((g, t), bool)
    for c0 in range(0, t, block):
        cols = np.arange(c0, min(t, c0 + block))
        rows[:, cols] = red.reduceat(dist[np.ix_(order, items[cols])], starts, axis=0)
        rows_blk[:, cols] = np.logical_or.reduceat(cannot[np.ix_(order, items[cols])], starts, axis=0)
    d = np.empty((g, g), np.float32)
    blk = np.empty((g, g), bool)
    for r0 in range(0, g, block):
        r = slice(r0, min(g, r0 + block))
        d[r] = red.reduceat(rows[r][:, perm], starts, axis=1)
        blk[r] = np.logical_or.reduceat(rows_blk[r][:, perm], starts, axis=1)
    del rows, rows_blk
    if linkage == "average":
        d /= (sizes[:, None] * sizes[None, :]).astype(np.float32)
    np.fill_diagonal(blk, False)
    return d, blk, sizes


def _to_clusters(dist: np.ndarray, cannot: np.ndarray, labels: np.ndarray, weights: np.ndarray,
                 block: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """(T, C) weighted mean distance of each item to each cluster's other members (inf: none) and
    (T, C) any cannot-link with a member. Temporaries are (block, T)."""
    order = np.argsort(labels, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(labels[order]) != 0])
    w = weights.astype(np.float32)
    size = np.add.reduceat(w[order], starts)                     # (C,) summed weights
    t, c = len(labels), len(starts)
    mean = np.empty((t, c), np.float32)
    blocked = np.empty((t, c), bool)
    for r0 in range(0, t, block):
        r = np.arange(r0, min(t, r0 + block))
        d = dist[r][:, order]
        d = np.where(np.isfinite(d), d, np.float32(4.0)) * w[order][None, :]
        total = np.add.reduceat(d, starts, axis=1)               # (b, C)
        own = np.zeros((len(r), c), np.float32)
        own[np.arange(len(r)), labels[r]] = w[r]
        total -= own * np.where(np.isfinite(dist[r, r]), dist[r, r], 4.0)[:, None]
        cnt = size[None, :] - own
        mean[r] = np.where(cnt > 0, total / np.maximum(cnt, 1e-12), np.inf)
        blocked[r] = np.logical_or.reduceat(cannot[r][:, order], starts, axis=1)
    return mean, blocked


def refine_labels(dist: np.ndarray, cannot: np.ndarray, labels: np.ndarray, threshold: float,
                  validate: Optional[Validator] = None, weights: Optional[np.ndarray] = None,
                  rounds: int = 5) -> tuple[np.ndarray, int]:
    """Move single items to the cluster they are closest to (mean distance to its other members,
    weighted by ``weights``, e.g. group sizes) when that beats their own cluster, is within
    ``threshold`` and breaks no cannot-link or ``validate``. Each round applies the most improving
    moves, at most one per cluster touched, then recomputes. An item alone in its cluster is left to
    the clustering. Returns (labels 0..C-1, moves)."""
    _, labels = np.unique(labels, return_inverse=True)
    labels = labels.reshape(-1).astype(np.int64)
    weights = np.ones(len(labels)) if weights is None else np.asarray(weights, np.float64)
    moves = 0
    rows = np.arange(len(labels))
    for _ in range(rounds):
        mean, blocked = _to_clusters(dist, cannot, labels, weights)
        own = mean[rows, labels]
        cand = np.where(blocked, np.inf, mean)
        cand[rows, labels] = np.inf
        best = cand.argmin(1)
        with np.errstate(invalid="ignore"):
            gain = own - cand[rows, best]
        gain[~np.isfinite(own)] = -np.inf
        touched: set[int] = set()
        for x in np.argsort(-gain):
            c = int(best[x])
            if not gain[x] > 0:
                break
            if not cand[x, c] <= threshold or c in touched or int(labels[x]) in touched:
                continue
            members = np.flatnonzero(labels == c)
            if validate is not None and not validate(members, np.array([x])):
                continue
            touched.update((c, int(labels[x])))
            labels[x] = c
            moves += 1
        if not touched:
            break
    _, labels = np.unique(labels, return_inverse=True)
    return labels.reshape(-1).astype(np.int64), moves

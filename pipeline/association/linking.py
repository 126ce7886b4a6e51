"""Linking consecutive tracklets: each tracklet's end to at most one later start (one-to-one).

A person who leaves one view shows up in the next one seconds later; a track the tracker broke goes
on near where it stopped. Such short gaps are strong evidence, so they are linked first, under a
looser appearance threshold than the clustering's (pipeline/association/config.py):

1. candidates (sparse, from a sweep over start times): j starts after i ends, at most
   ``same_camera_window`` seconds later in the same camera (and the move is possible) or
   ``link_window`` seconds later in another camera; no cannot-link between them;
2. a one-to-one matching maximising the summed margins ``threshold - distance`` over the candidates
   within the threshold (a min-cost bipartite matching with a "no link" option on both sides);
3. entry / exit zones (``zones``): each foot point is on a side of its view (left, right, top or
   bottom border, within ``ZONE_MARGIN``; or inside). For each ordered pair of cameras with at least
   ``MIN_ZONE_LINKS`` links from step 2, the sides those links leave the first view by and enter the
   second by (each used by ``ZONE_SHARE`` of them) are its zones; a link between the two cameras must
   leave and enter by a zone (within the wider ``ZONE_ACCEPT`` of its border), and step 2 is solved again. This learns the cameras' layout from the
   run itself (no topology file needed) and rejects handoffs no one could walk, such as leaving the
   first view on the side away from the second.
4. handoffs that fit (``handoff_geometry``, handoffs.py): for each ordered pair of cameras, where and
   when the links of steps 2-3 leave the first view and enter the second (the move from exit to entry
   foot point and the gap, with their spreads); an end and a start both left free whose move and gap
   fit are matched one to one up to a looser appearance limit (a quantile of the known
   different-people distances), the closest first, unless the pair's fitting candidates beyond that
   limit say most of those within it would be strangers;
5. tracklets skipped by a link (``insert_links``): the matching of step 2 maximises summed margins, so
   where a -> b -> c is one person but b -> c lies past the link threshold (a blurred piece between two
   views), it links a -> c and leaves b alone. A tracklet b left free (no link in or out) with a -> b
   within its threshold and b -> c within the looser limit of step 4 (``handoff_quantile``) goes back
   in between: a -> b -> c, the closest first, one per link; so does a chain b -> b' left apart (no link
   into b or out of b': a visit to the other view the tracker broke in two), a -> b -> b' -> c;
6. mutual links (``mutual_links``): an end and a start of two cameras both left free that are each
   other's nearest candidate, by a margin, below a low quantile of the known different-people distances.

A chain must not hold two tracklets that can never be one person (one camera's tracklets before and
after a visit to another camera may be too far apart to walk): the weakest link between such a pair
is cut. The result is ``next[i]`` (the tracklet linked after i, or -1); :func:`chain_labels` turns it
into one label per chain.
"""
from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import min_weight_full_bipartite_matching

from pipeline.association.handoffs import gate, looks_like_strangers

MIN_ZONE_LINKS = 3
ZONE_MARGIN = 0.15         # a foot point this close to a border (fraction of the view) is on that side
ZONE_SHARE = 0.2           # a side is a zone when this share of the links (and at least 2) use it
MUTUAL_QUANTILE = 0.05    # mutual links stay below this quantile of the known different-people distances
MUTUAL_MARGIN = 0.02      # a mutual link's distance is this much below both second nearest candidates
ZONE_ACCEPT = 0.25         # a candidate's point this close to a learned side uses it (a person's first
#                            box in a view is often some way in: the detector misses them at the border)


def match_pairs(i: np.ndarray, j: np.ndarray, margin: np.ndarray, n: int) -> np.ndarray:
    """One-to-one links maximising the summed ``margin`` (> 0) over candidate pairs (i -> j);
    returns next (n,) with -1 where i has no link.

    Bipartite graph: rows = n ends + n "start j unlinked" dummies, columns = n starts + n "end i
    unlinked" dummies. Link i -> j costs 2b - margin, leaving i (or j) unlinked costs b, the dummy
    pair of a used link costs ~0, so a perfect matching always exists and its cost is
    const - sum(margins of the links).
    """
    nxt = np.full(n, -1, np.int64)
    keep = margin > 0
    i, j, margin = i[keep], j[keep], margin[keep].astype(np.float64)
    if not len(i):
        return nxt
    b = float(margin.max()) + 1.0
    idx = np.arange(n)
    rows = np.concatenate([i, idx, n + idx, n + j])               # link, i unlinked, j unlinked, mirror
    cols = np.concatenate([j, n + idx, idx, n + i])
    cost = np.concatenate([2 * b - margin, np.full(2 * n, b), np.full(len(i), 1e-9)])
    graph = coo_matrix((cost, (rows, cols)), shape=(2 * n, 2 * n)).tocsr()
    _, col_of_row = min_weight_full_bipartite_matching(graph)
    linked = col_of_row[:n] < n
    nxt[linked] = col_of_row[:n][linked]
    return nxt


def chain_labels(nxt: np.ndarray) -> np.ndarray:
    """(T,) label per chain of links (next[i] = j or -1): 0..C-1 in order of each chain's head."""
    n = len(nxt)
    prev = np.full(n, -1, np.int64)
    has = nxt >= 0
    prev[nxt[has]] = np.flatnonzero(has)
    labels = np.full(n, -1, np.int64)
    for lab, head in enumerate(np.flatnonzero(prev < 0)):
        k = head
        while k >= 0 and labels[k] < 0:
            labels[k] = lab
            k = nxt[k]
    rest = np.flatnonzero(labels < 0)                             # cycles cannot happen; be safe
    labels[rest] = labels.max(initial=-1) + 1 + np.arange(len(rest))
    return labels


def split_conflicts(nxt: np.ndarray, cannot: np.ndarray, strength: np.ndarray) -> tuple[np.ndarray, int]:
    """Cut links until no chain holds two tracklets that can never be one person (``cannot`` (T, T);
    consecutive pairs are allowed by construction, farther ones, e.g. one camera's tracklets around a
    visit to another camera, may not be). Each time the weakest link (``strength`` (T,) of the link
    leaving each tracklet) between a conflicting pair is cut. Returns (next, links cut)."""
    nxt = nxt.copy()
    cuts = 0
    labels = chain_labels(nxt)
    for lab in np.unique(labels[nxt >= 0]):
        todo = [_chain_from(nxt, np.flatnonzero(labels == lab))]
        while todo:
            chain = todo.pop()
            bad = np.argwhere(np.triu(cannot[np.ix_(chain, chain)], 2))
            if not len(bad):
                continue
            p, q = bad[0]
            cut = p + int(np.argmin(strength[chain[p:q]]))          # link chain[cut] -> chain[cut + 1]
            nxt[chain[cut]] = -1
            cuts += 1
            todo += [chain[:cut + 1], chain[cut + 1:]]
    return nxt, cuts


def _chain_from(nxt: np.ndarray, members: np.ndarray) -> np.ndarray:
    """The members of one chain in link order."""
    heads = set(members.tolist()) - set(nxt[members].tolist())
    k, out = heads.pop(), []
    while k >= 0:
        out.append(k)
        k = nxt[k]
    return np.array(out, np.int64)


def foot_points(first: np.ndarray, last: np.ndarray, cam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(T, 2) entry (first box) and exit (last box) foot points, normalised by the extent of all boxes
    of the tracklet's camera; NaN where unknown."""
    entry = np.column_stack([(first[:, 0] + first[:, 2]) / 2, first[:, 3]])
    exit_ = np.column_stack([(last[:, 0] + last[:, 2]) / 2, last[:, 3]])
    for c in np.unique(cam):
        m = cam == c
        pts = np.concatenate([first[m], last[m]])
        pts = pts[np.isfinite(pts).all(1)]
        if len(pts):
            ext = np.maximum([pts[:, [0, 2]].max(), pts[:, [1, 3]].max()], 1.0)
            entry[m] /= ext
            exit_[m] /= ext
    return entry, exit_


def side_mask(points: np.ndarray, margin: float = ZONE_MARGIN) -> np.ndarray:
    """(T,) int bit mask of where normalised points lie: 1 left, 2 right, 4 top, 8 bottom border
    (within ``margin`` of it; a corner has two bits), 16 inside the view; 0 when unknown."""
    x, y = points[:, 0], points[:, 1]
    with np.errstate(invalid="ignore"):
        bits = ((x <= margin) * 1 | (x >= 1 - margin) * 2 | (y <= margin) * 4 | (y >= 1 - margin) * 8)
    bits = np.where(bits == 0, 16, bits)
    return np.where(np.isfinite(points).all(1), bits, 0).astype(np.int64)


def zone_mask(i: np.ndarray, j: np.ndarray, nxt: np.ndarray, cam: np.ndarray, entry: np.ndarray,
              exit_: np.ndarray) -> tuple[np.ndarray, int]:
    """(P,) bool: candidate i -> j is consistent with the zones learned from the links ``nxt``
    (module docstring, step 3); pairs of cameras with too few links and unknown points pass.
    Also returns the number of camera pairs with a learned zone model."""
    src = np.flatnonzero((nxt >= 0) & (cam != cam[np.maximum(nxt, 0)]))
    dst = nxt[src]
    out_side, in_side = side_mask(exit_), side_mask(entry)
    out_near, in_near = side_mask(exit_, ZONE_ACCEPT), side_mask(entry, ZONE_ACCEPT)
    ok = np.ones(len(i), bool)
    models = 0
    for a, b in {(int(cam[s]), int(cam[d])) for s, d in zip(src, dst)}:
        sel = (cam[src] == a) & (cam[dst] == b)
        if sel.sum() < MIN_ZONE_LINKS:
            continue
        models += 1
        cand = np.flatnonzero((cam[i] == a) & (cam[j] == b))
        for sides, who in ((out_side[src[sel]], out_near[i[cand]]), (in_side[dst[sel]], in_near[j[cand]])):
            count = np.array([((sides & (1 << k)) > 0).sum() for k in range(5)])
            learned = sum(1 << k for k in range(5) if count[k] >= max(2, ZONE_SHARE * sel.sum()))
            ok[cand] &= ((who & learned) > 0) | (who == 0)
    return ok, models


def _two_smallest(key: np.ndarray, dist: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(n,) smallest and second smallest ``dist`` per value of ``key`` (inf where missing)."""
    order = np.lexsort((dist, key))
    k, d = key[order], dist[order]
    head = np.ones(len(k), bool)
    head[1:] = k[1:] != k[:-1]
    best, second = np.full(n, np.inf), np.full(n, np.inf)
    best[k[head]] = d[head]
    nxt_in_group = np.flatnonzero(~head)
    is_second = nxt_in_group[head[nxt_in_group - 1]]          # the element right after a group's head
    second[k[is_second]] = d[is_second]
    return best, second


def pair_positions(i: np.ndarray, j: np.ndarray, qi: np.ndarray, qj: np.ndarray, n: int) -> np.ndarray:
    """(Q,) position of each pair (qi, qj) among the candidate pairs (i, j) of ``n`` items (-1: not a candidate)."""
    key = i.astype(np.int64) * n + j
    want = np.asarray(qi, np.int64) * n + qj
    if not len(key):
        return np.full(len(want), -1, np.int64)
    order = np.argsort(key, kind="stable")
    at = order[np.minimum(np.searchsorted(key, want, sorter=order), len(key) - 1)]
    return np.where(key[at] == want, at, -1)


def insert_links(i: np.ndarray, j: np.ndarray, dist: np.ndarray, threshold: np.ndarray, nxt: np.ndarray,
                 cap: float, ok: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """``nxt`` with chains it left apart put inside the links that skip them (module docstring, step 5): a
    link a -> c and a chain b .. b' with no link into b or out of b' (often one tracklet, b = b'), with
    candidates a -> b (``dist`` < ``threshold``) and b' -> c (``dist`` < ``cap``), become a -> b .. b' -> c,
    the smallest summed distance first, one chain per link and one link per chain. ``ok`` (P,): candidates
    allowed (zones). Returns (next, chains inserted)."""
    n = len(nxt)
    usable = np.isfinite(dist) if ok is None else np.isfinite(dist) & ok
    has_prev = np.zeros(n, bool)
    has_prev[nxt[nxt >= 0]] = True
    labels = chain_labels(nxt)
    tail = _chain_tails(nxt, labels)                                                     # (T,) b -> b'
    first = np.flatnonzero(usable & (nxt[i] >= 0) & ~has_prev[j] & (dist < threshold)
                           & (labels[i] != labels[j]))      # a -> b; never b's own chain (a cycle) whatever i, j
    if not len(first):
        return nxt, 0
    second = pair_positions(i, j, tail[j[first]], nxt[i[first]], n)                      # b' -> c
    hit = second >= 0
    hit[hit] = usable[second[hit]] & (dist[second[hit]] < cap)
    first, second = first[hit], second[hit]
    nxt = nxt.copy()
    used_link, used_b = np.zeros(n, bool), np.zeros(n, bool)
    added = 0
    for k in np.argsort(dist[first] + dist[second], kind="stable"):
        a, b = int(i[first[k]]), int(j[first[k]])
        if used_link[a] or used_b[b]:
            continue
        nxt[tail[b]], nxt[a] = nxt[a], b
        used_link[a] = used_b[b] = True
        added += 1
    return nxt, added


def _chain_tails(nxt: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(T,) the last tracklet of each tracklet's chain."""
    last = np.flatnonzero(nxt < 0)
    tail_of = np.full(labels.max(initial=-1) + 1, -1, np.int64)
    tail_of[labels[last]] = last
    return tail_of[labels]


def mutual_links(i: np.ndarray, j: np.ndarray, dist: np.ndarray, nxt: np.ndarray, cam: np.ndarray,
                 cap: float, ok: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """``nxt`` with links added between ends and starts it left free (module docstring, step 6):
    i -> j of two cameras, ``dist`` < ``cap``, each the other's nearest candidate among the free ones
    (any camera), ahead of both second nearest by ``MUTUAL_MARGIN``. ``ok`` (P,): candidates allowed
    (zones). Returns (next, links added)."""
    nxt = nxt.copy()
    n = len(nxt)
    usable = np.isfinite(dist) if ok is None else np.isfinite(dist) & ok
    added = 0
    while True:
        has_prev = np.zeros(n, bool)
        has_prev[nxt[nxt >= 0]] = True
        free = usable & (nxt[i] < 0) & ~has_prev[j]
        fi, fj, fd = i[free], j[free], dist[free]
        if not len(fi):
            break
        best_i, second_i = _two_smallest(fi, fd, n)
        best_j, second_j = _two_smallest(fj, fd, n)
        take = ((cam[fi] != cam[fj]) & (fd < cap) & (fd <= best_i[fi]) & (fd <= best_j[fj])
                & (second_i[fi] - fd >= MUTUAL_MARGIN) & (second_j[fj] - fd >= MUTUAL_MARGIN))
        if not take.any():
            break
        nxt[fi[take]] = fj[take]                               # disjoint: each is the other's only best
        added += int(take.sum())
    return nxt, added


def handoff_links(i: np.ndarray, j: np.ndarray, dist: np.ndarray, nxt: np.ndarray, cam: np.ndarray,
                  entry: np.ndarray, exit_: np.ndarray, start: np.ndarray, end: np.ndarray, cap: float,
                  quantile: float, ok: np.ndarray | None = None) -> tuple[np.ndarray, int, int]:
    """``nxt`` with links added (module docstring, step 4) between ends and starts it left free whose
    move (``entry`` / ``exit_`` foot points, :func:`foot_points`) and gap fit the handoffs of ``nxt``
    between their two cameras (:func:`handoffs.gate`), one to one up to ``cap`` (the ``quantile`` of
    the known different-people distances), the closest first, unless that camera pair's fitting pairs
    look like strangers (:func:`handoffs.looks_like_strangers`). ``ok`` (P,): candidates allowed
    (zones). Returns (next, camera pairs with a model, links added)."""
    fit, models = gate(i, j, nxt, cam, entry, exit_, start, end)
    if not models:
        return nxt, 0, 0
    has_prev = np.zeros(len(nxt), bool)
    has_prev[nxt[nxt >= 0]] = True
    fit &= (nxt[i] < 0) & ~has_prev[j]
    if ok is not None:
        fit &= ok
    take = fit & (dist < cap) & ~looks_like_strangers(fit, dist < cap, cam[i], cam[j], quantile)
    extra = match_pairs(i[take], j[take], cap - dist[take], len(nxt))
    added = np.flatnonzero(extra >= 0)
    nxt = nxt.copy()
    nxt[added] = extra[added]
    return nxt, models, len(added)


def link_tracklets(i: np.ndarray, j: np.ndarray, dist: np.ndarray, threshold: np.ndarray, n: int,
                   cam: np.ndarray, first: np.ndarray, last: np.ndarray, zones: bool = True,
                   cannot: np.ndarray | None = None, mutual_cap: float | None = None,
                   handoff_cap: tuple | None = None, times: tuple | None = None,
                   insert_cap: float | None = None) -> tuple[np.ndarray, dict]:
    """next (n,) from candidate pairs (i -> j) (already windowed and constraint-free), their
    distances ``dist`` (P,) and per-pair ``threshold`` (P,); see the module docstring. With
    ``cannot`` (n, n), chains that would join two incompatible tracklets are cut (:func:`split_conflicts`);
    with ``insert_cap``, tracklets skipped by a link go back in between (:func:`insert_links`); with
    ``mutual_cap``, mutual nearest handoffs below it are linked too (:func:`mutual_links`)."""
    margin = np.where(np.isfinite(dist), threshold - dist, -1.0)
    nxt = match_pairs(i, j, margin, n)
    stats = {"link_candidates": int((margin > 0).sum()), "zone_models": 0, "zone_rejected": 0}
    ok = None
    use_handoffs = handoff_cap is not None and times is not None and len(i)
    if (zones or use_handoffs) and len(i):
        entry, exit_ = foot_points(first, last, cam)
    if zones and len(i):
        ok, models = zone_mask(i, j, nxt, cam, entry, exit_)
        stats["zone_models"] = models
        if models:
            stats["zone_rejected"] = int(((margin > 0) & ~ok).sum())
            nxt = match_pairs(i, j, np.where(ok, margin, -1.0), n)
    if use_handoffs:
        nxt, stats["handoff_models"], stats["links_handoff"] = handoff_links(
            i, j, dist, nxt, cam, entry, exit_, *times, *handoff_cap, ok)
    if insert_cap is not None and len(i):
        nxt, stats["links_inserted"] = insert_links(i, j, dist, threshold, nxt, insert_cap, ok)
    if mutual_cap is not None and len(i):
        nxt, stats["links_mutual"] = mutual_links(i, j, dist, nxt, cam, mutual_cap, ok)   # the weakest
        #                                   links (margin < 0) are cut first by split_conflicts
    if cannot is not None:
        strength = np.full(n, np.inf)
        linked = np.flatnonzero(nxt >= 0)
        strength[linked] = margin[pair_positions(i, j, linked, nxt[linked], n)]
        nxt, stats["links_cut"] = split_conflicts(nxt, cannot, strength)
    stats["links"] = int((nxt >= 0).sum())
    stats["links_same_camera"] = int(((nxt >= 0) & (cam == cam[np.maximum(nxt, 0)])).sum())
    return nxt, stats

"""k-reciprocal re-ranking (Zhong et al., CVPR 2017), computed in chunks with bounded memory.

Same result as the authors' reference code (``re_ranking(q_g_dist, q_q_dist, g_g_dist, k1, k2,
lambda_value)``) but it never builds a dense (Q+G, Q+G) matrix: the distance rows are built a
chunk at a time, only the k1+1 nearest neighbours of every image are kept, the k-reciprocal
encodings ``V`` are a sparse matrix, and the Jaccard distances are accumulated through
``V``'s inverted index for a chunk of queries at a time. Memory is O(N * k1^2 + chunk * N).
"""
from __future__ import annotations

import numpy as np
from scipy import sparse


def k_reciprocal_rerank(q_g: np.ndarray, q_q: np.ndarray, g_g: np.ndarray, k1: int = 20, k2: int = 6,
                        lambda_value: float = 0.3, chunk_size: int = 256) -> np.ndarray:
    """Re-ranked (Q, G) float32 distances from query-gallery, query-query, gallery-gallery distances."""
    q_g, q_q, g_g = (np.asarray(m, dtype=np.float32) for m in (q_g, q_q, g_g))
    num_q, num_g = q_g.shape
    if q_q.shape != (num_q, num_q) or g_g.shape != (num_g, num_g):
        raise ValueError(f"k_reciprocal_rerank: shapes q_g {q_g.shape}, q_q {q_q.shape}, g_g {g_g.shape} "
                         "do not fit together")
    if k1 < 1 or k2 < 1 or not 0.0 <= lambda_value <= 1.0:
        raise ValueError(f"k_reciprocal_rerank: need k1 >= 1, k2 >= 1, 0 <= lambda <= 1 "
                         f"(got k1={k1}, k2={k2}, lambda={lambda_value})")
    n = num_q + num_g
    rows = _DistRows(q_g, q_q, g_g)
    k1 = min(k1, n - 1)
    k2 = min(k2, n)
    rank = _initial_rank(rows, max(k1 + 1, k2), chunk_size)               # (N, max(k1+1, k2))
    v = _encodings(rows, rank, k1, chunk_size)                             # (N, N) sparse
    if k2 > 1:
        v = _query_expansion(v, rank[:, :k2])
    jaccard = _jaccard(v[:num_q], v[num_q:].tocsc(), chunk_size)          # (Q, G)
    orig = np.concatenate([rows.get(a, min(a + chunk_size, num_q))[:, num_q:]
                           for a in range(0, num_q, chunk_size)]) if num_q else np.zeros((0, num_g))
    return (jaccard * (1 - lambda_value) + orig * lambda_value).astype(np.float32)


class _DistRows:
    """Rows of the squared, row-max-normalised joint distance [[q_q, q_g], [q_g^T, g_g]]."""

    def __init__(self, q_g: np.ndarray, q_q: np.ndarray, g_g: np.ndarray):
        self.q_g, self.q_q, self.g_g = q_g, q_q, g_g
        self.num_q = len(q_q)

    def get(self, a: int, b: int) -> np.ndarray:
        nq = self.num_q
        parts = []
        if a < nq:
            e = min(b, nq)
            parts.append(np.concatenate([self.q_q[a:e], self.q_g[a:e]], axis=1))
        if b > nq:
            s = max(a, nq) - nq
            parts.append(np.concatenate([self.q_g[:, s:b - nq].T, self.g_g[s:b - nq]], axis=1))
        d = np.concatenate(parts) if len(parts) > 1 else parts[0]          # (b-a, N)
        d = np.power(d, 2).astype(np.float32)
        return d / np.maximum(np.max(d, axis=1, keepdims=True), np.float32(1e-12))  # all-zero rows stay 0


def _initial_rank(rows: _DistRows, k: int, chunk_size: int) -> np.ndarray:
    """Indices of the k nearest images of every image, nearest first (N, k) int64."""
    n = rows.num_q + len(rows.g_g)
    out = np.empty((n, k), dtype=np.int64)
    for a in range(0, n, chunk_size):
        b = min(a + chunk_size, n)
        out[a:b] = np.argsort(rows.get(a, b), axis=1)[:, :k]
    return out


def _reciprocal_mask(rank: np.ndarray, k: int) -> np.ndarray:
    """(N, k+1) bool: rank[i, j] is a k-reciprocal neighbour of i (i is in its k+1 nearest)."""
    nb = rank[:, :k + 1]                                                   # (N, k+1)
    out = np.empty(nb.shape, dtype=bool)
    ids = np.arange(len(rank))
    step = max(1, 2_000_000 // (nb.shape[1] ** 2))
    for a in range(0, len(rank), step):
        back = nb[nb[a:a + step]]                                          # (c, k+1, k+1)
        out[a:a + step] = (back == ids[a:a + step, None, None]).any(axis=2)
    return out


def _encodings(rows: _DistRows, rank: np.ndarray, k1: int, chunk_size: int) -> sparse.csr_matrix:
    """Sparse k-reciprocal feature V (N, N): Gaussian weights on the expanded reciprocal set."""
    n = len(rank)
    half = int(np.around(k1 / 2.0))
    recip = _reciprocal_mask(rank, k1)                                      # (N, k1+1)
    recip_half = _reciprocal_mask(rank, half)                               # (N, half+1)
    half_sets = [rank[i, :half + 1][recip_half[i]] for i in range(n)]
    indptr, indices, values = [0], [], []
    for a in range(0, n, chunk_size):
        b = min(a + chunk_size, n)
        dist = rows.get(a, b)                                              # (c, N)
        for i in range(a, b):
            r = rank[i, :k1 + 1][recip[i]]
            expansion = [r]
            for cand in r:
                c_set = half_sets[cand]
                if len(np.intersect1d(c_set, r)) > 2.0 / 3 * len(c_set):
                    expansion.append(c_set)
            idx = np.unique(np.concatenate(expansion))
            w = np.exp(-dist[i - a, idx])
            indices.append(idx)
            values.append((w / np.sum(w)).astype(np.float32))
            indptr.append(indptr[-1] + len(idx))
    return sparse.csr_matrix((np.concatenate(values), np.concatenate(indices), np.array(indptr)),
                             shape=(n, n))


def _query_expansion(v: sparse.csr_matrix, nearest: np.ndarray) -> sparse.csr_matrix:
    """Average each row of V over the image's k2 nearest neighbours: (A @ V) with A (N, N) sparse."""
    n, k2 = nearest.shape
    avg = sparse.csr_matrix((np.full(n * k2, 1.0 / k2, dtype=np.float32), nearest.ravel(),
                             np.arange(0, n * k2 + 1, k2)), shape=(n, n))
    return (avg @ v).tocsr().astype(np.float32)


def _jaccard(vq: sparse.csr_matrix, vg: sparse.csc_matrix, chunk_size: int) -> np.ndarray:
    """Jaccard distance 1 - m / (2 - m), m = sum_k min(Vq[i,k], Vg[j,k]) over the inverted index."""
    num_q, num_g = vq.shape[0], vg.shape[0]
    out = np.empty((num_q, num_g), dtype=np.float32)
    g_ptr, g_rows, g_vals = vg.indptr, vg.indices, vg.data
    deg = np.diff(g_ptr)                                                    # (N,) gallery images per column
    for a in range(0, num_q, chunk_size):
        b = min(a + chunk_size, num_q)
        coo = vq[a:b].tocoo()
        q_row, q_col, q_val = coo.row, coo.col, coo.data                   # query entries (E,)
        cnt = deg[q_col]                                                    # (E,) partners per entry
        total = int(cnt.sum())
        rep_row = np.repeat(q_row, cnt)                                     # (P,)
        rep_val = np.repeat(q_val, cnt)                                     # (P,)
        offsets = np.arange(total) - np.repeat(np.cumsum(cnt) - cnt, cnt)  # (P,) position within column
        pos = np.repeat(g_ptr[q_col], cnt) + offsets                        # (P,) index into vg.data
        m = np.bincount(rep_row * num_g + g_rows[pos], weights=np.minimum(rep_val, g_vals[pos]),
                        minlength=(b - a) * num_g).reshape(b - a, num_g).astype(np.float32)
        out[a:b] = 1 - m / (2.0 - m)
    return out

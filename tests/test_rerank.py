"""k-reciprocal re-ranking: the chunked sparse implementation against a dense reference."""
import numpy as np
import pytest

from reid.metrics import evaluate_rank
from reid.rerank import k_reciprocal_rerank


def dense_reference(q_g, q_q, g_g, k1=20, k2=6, lambda_value=0.3):
    """Straightforward transcription of Zhong et al.'s published re_ranking (dense N x N)."""
    original = np.concatenate([np.concatenate([q_q, q_g], axis=1),
                               np.concatenate([q_g.T, g_g], axis=1)], axis=0)
    original = np.power(original, 2).astype(np.float32)
    original = np.transpose(1.0 * original / np.max(original, axis=0))
    v = np.zeros_like(original).astype(np.float32)
    initial_rank = np.argsort(original).astype(np.int32)
    query_num = q_g.shape[0]
    all_num = q_g.shape[0] + q_g.shape[1]
    for i in range(all_num):
        forward = initial_rank[i, :k1 + 1]
        backward = initial_rank[forward, :k1 + 1]
        recip = forward[np.where(backward == i)[0]]
        expansion = recip
        for cand in recip:
            h = int(np.around(k1 / 2.0))
            c_fwd = initial_rank[cand, :h + 1]
            c_bwd = initial_rank[c_fwd, :h + 1]
            c_recip = c_fwd[np.where(c_bwd == cand)[0]]
            if len(np.intersect1d(c_recip, recip)) > 2.0 / 3 * len(c_recip):
                expansion = np.append(expansion, c_recip)
        expansion = np.unique(expansion)
        weight = np.exp(-original[i, expansion])
        v[i, expansion] = weight / np.sum(weight)
    original = original[:query_num]
    if k2 != 1:
        v = np.stack([np.mean(v[initial_rank[i, :k2], :], axis=0) for i in range(all_num)])
    jaccard = np.zeros_like(original, dtype=np.float32)
    for i in range(query_num):
        temp_min = np.minimum(v[i][None, :], v).sum(axis=1)  # (N,)
        jaccard[i] = 1 - temp_min / (2.0 - temp_min)
    final = jaccard * (1 - lambda_value) + original * lambda_value
    return final[:, query_num:]


def _random_set(rng, num_ids=12, per_id=5, dim=16, noise=0.6):
    centers = rng.normal(size=(num_ids, dim))
    pids = np.repeat(np.arange(num_ids), per_id)
    feats = centers[pids] + noise * rng.normal(size=(len(pids), dim))
    feats /= np.linalg.norm(feats, axis=1, keepdims=True)
    cams = np.tile(np.arange(per_id), num_ids) % 3
    return feats.astype(np.float32), pids, cams


def _dist(a, b):
    return np.sqrt(np.maximum(2 - 2 * a @ b.T, 0)).astype(np.float32)


@pytest.mark.parametrize("k1,k2,lam,chunk", [(20, 6, 0.3, 7), (6, 3, 0.3, 1000), (5, 1, 0.5, 4),
                                             (4, 8, 0.0, 3)])
def test_chunked_rerank_matches_dense_reference(k1, k2, lam, chunk):
    rng = np.random.default_rng(k1 * 10 + k2)
    feats, pids, cams = _random_set(rng)
    q = np.arange(0, len(pids), 4)                   # 15 queries
    g = np.setdiff1d(np.arange(len(pids)), q)        # 45 gallery images
    q_g, q_q, g_g = _dist(feats[q], feats[g]), _dist(feats[q], feats[q]), _dist(feats[g], feats[g])
    ref = dense_reference(q_g, q_q, g_g, k1, k2, lam)
    out = k_reciprocal_rerank(q_g, q_q, g_g, k1=k1, k2=k2, lambda_value=lam, chunk_size=chunk)
    assert out.shape == (len(q), len(g))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


def test_rerank_result_does_not_depend_on_chunk_size():
    rng = np.random.default_rng(3)
    feats, _, _ = _random_set(rng, num_ids=20, per_id=4)
    q, g = feats[:17], feats[17:]
    args = (_dist(q, g), _dist(q, q), _dist(g, g))
    a = k_reciprocal_rerank(*args, chunk_size=2)
    b = k_reciprocal_rerank(*args, chunk_size=4096)
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def test_lambda_one_gives_normalised_squared_distance():
    rng = np.random.default_rng(5)
    feats, _, _ = _random_set(rng, num_ids=6, per_id=3)
    q, g = feats[:5], feats[5:]
    q_g, q_q = _dist(q, g), _dist(q, q)
    out = k_reciprocal_rerank(q_g, q_q, _dist(g, g), k1=4, k2=2, lambda_value=1.0)
    row_max = np.maximum((q_q ** 2).max(1), (q_g ** 2).max(1))
    np.testing.assert_allclose(out, q_g ** 2 / row_max[:, None], rtol=1e-5)


def test_rerank_keeps_or_improves_map_on_clustered_data():
    rng = np.random.default_rng(11)
    feats, pids, cams = _random_set(rng, num_ids=30, per_id=6, noise=0.9)
    q = np.arange(0, len(pids), 6)
    g = np.setdiff1d(np.arange(len(pids)), q)
    q_g = _dist(feats[q], feats[g])
    _, map_plain = evaluate_rank(q_g, pids[q], pids[g], cams[q], cams[g] + 10)
    rr = k_reciprocal_rerank(q_g, _dist(feats[q], feats[q]), _dist(feats[g], feats[g]), k1=6, k2=3)
    _, map_rr = evaluate_rank(rr, pids[q], pids[g], cams[q], cams[g] + 10)
    assert map_rr >= map_plain - 0.01


def test_rerank_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="shapes"):
        k_reciprocal_rerank(np.zeros((2, 3)), np.zeros((2, 2)), np.zeros((2, 2)))


def test_identical_points_give_finite_distances():
    z = np.zeros((3, 3), np.float32)
    out = k_reciprocal_rerank(z, z, z, k1=2, k2=1)
    assert np.isfinite(out).all()
    assert out.shape == (3, 3)

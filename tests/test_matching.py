"""Pure matching functions: hand-computed IoU / distances, assignment equal to plain lapjv."""
import lap
import numpy as np
import pytest

from core.boxes import iou_matrix
from trackers.matching import (assignment_pairs, embedding_distance, expand_boxes, fuse_score, gate,
                               iou_distance, linear_assignment)


def test_iou_matrix_hand_computed():
    a = np.array([[0, 0, 10, 10], [100, 100, 110, 120]], dtype=float)
    b = np.array([[5, 5, 15, 15], [0, 0, 10, 10], [50, 50, 60, 60], [100, 100, 110, 110]], dtype=float)
    iou = iou_matrix(a, b)
    assert iou.shape == (2, 4)
    assert iou[0, 0] == pytest.approx(25 / 175)     # 5x5 overlap, 100 + 100 - 25
    assert iou[0, 1] == pytest.approx(1.0)
    assert iou[0, 2] == 0.0
    assert iou[1, 3] == pytest.approx(100 / 200)    # contained half-height box
    np.testing.assert_allclose(iou_distance(a, b), 1 - iou)


def test_buffered_iou_widens_each_box_by_its_own_size():
    a = np.array([[0, 0, 10, 20]], dtype=float)
    b = np.array([[15, 0, 25, 20], [0, 0, 10, 20]], dtype=float)
    assert iou_distance(a, b)[0, 0] == 1.0                       # 5 px apart: no overlap
    np.testing.assert_allclose(expand_boxes(a, 0.5), [[-5, -10, 15, 30]])
    # widened by half their size per side: [-5, -10, 15, 30] and [10, -10, 30, 30] share 5 x 40 of 800 + 800
    assert iou_distance(a, b, 0.5)[0, 0] == pytest.approx(1 - 200 / 1400)
    assert iou_distance(a, b, 0.5)[0, 1] == pytest.approx(0.0)   # the same box stays the same box
    np.testing.assert_array_equal(iou_distance(a, b, 0.0), iou_distance(a, b))


def test_iou_matrix_degenerate_and_empty():
    zero = np.array([[5, 5, 5, 5]], dtype=float)
    assert iou_matrix(zero, zero)[0, 0] == 0.0       # no nan for empty boxes
    assert iou_matrix(np.zeros((0, 4)), zero).shape == (0, 1)
    assert iou_matrix(zero, np.zeros((0, 4))).shape == (1, 0)


def test_embedding_distance_cosine():
    a = np.array([[1, 0], [0, 3]], dtype=np.float32)            # unnormalised on purpose
    b = np.array([[2, 0], [0, 1], [-1, 0], [1, 1]], dtype=np.float32)
    d = embedding_distance(a, b)
    np.testing.assert_allclose(d[0], [0, 1, 2, 1 - np.sqrt(0.5)], atol=1e-6)
    np.testing.assert_allclose(d[1], [1, 0, 1, 1 - np.sqrt(0.5)], atol=1e-6)
    assert embedding_distance(np.zeros((0, 2)), b).shape == (0, 4)


def test_fuse_score_and_gate():
    cost = np.array([[0.2, 1.0], [0.0, 0.5]])
    fused = fuse_score(cost, np.array([0.5, 0.9]))
    np.testing.assert_allclose(fused, [[1 - 0.8 * 0.5, 1.0], [1 - 0.5, 1 - 0.5 * 0.9]])
    gated = gate(cost, np.array([[1.0, 20.0], [9.0, 9.5]]), thresh=9.4877)
    assert gated[0, 0] == 0.2
    assert np.isinf(gated[0, 1])
    assert gated[1, 0] == 0.0
    assert np.isinf(gated[1, 1])
    assert cost[0, 1] == 1.0                                   # inputs untouched


def test_linear_assignment_competing_rows():
    matches, ua, ub = linear_assignment(np.array([[0.1, 0.9], [0.2, 0.3]]), thresh=0.5)
    assert sorted(map(tuple, matches.tolist())) == [(0, 0), (1, 1)]   # 0.4 total beats greedy 0.1 + nothing
    assert len(ua) == 0
    assert len(ub) == 0
    matches, ua, ub = linear_assignment(np.array([[0.1, 0.9], [0.2, 0.95]]), thresh=0.5)
    assert matches.tolist() == [[0, 0]]
    assert ua.tolist() == [1]
    assert ub.tolist() == [1]


def test_linear_assignment_threshold_inf_and_empty():
    matches, ua, ub = linear_assignment(np.array([[0.6, np.inf], [np.inf, 0.1]]), thresh=0.5)
    assert matches.tolist() == [[1, 1]]
    assert ua.tolist() == [0]
    assert ub.tolist() == [0]
    matches, ua, ub = linear_assignment(np.zeros((0, 3)), thresh=0.5)
    assert matches.shape == (0, 2)
    assert len(ua) == 0
    assert ub.tolist() == [0, 1, 2]


@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (6, 4), (8, 8), (12, 3)])
def test_assignment_matches_plain_lapjv(shape):
    """The fast path (distinct row minima) and the lapjv path give lapjv's optimum on random costs."""
    rng = np.random.default_rng(0)
    for trial in range(60):
        cost = rng.random(shape)
        if trial % 2:  # make the fast path likely: a clear diagonal
            k = min(shape)
            cost[np.arange(k), rng.permutation(shape[1])[:k]] *= 0.05
        thresh = 0.3 + 0.5 * rng.random()
        rows, cols = assignment_pairs(cost, thresh)
        _, x, _ = lap.lapjv(cost, extend_cost=True, cost_limit=thresh)
        ref_rows = np.flatnonzero(x >= 0)
        ref_obj = cost[ref_rows, x[ref_rows]].sum() + thresh / 2 * (sum(shape) - 2 * len(ref_rows))
        obj = cost[rows, cols].sum() + thresh / 2 * (sum(shape) - 2 * len(rows))
        assert obj == pytest.approx(ref_obj, abs=1e-9)
        assert len(set(rows.tolist())) == len(rows)
        assert len(set(cols.tolist())) == len(cols)
        assert np.all(cost[rows, cols] <= thresh)

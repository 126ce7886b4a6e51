"""CMC / mAP (Market-1501 protocol) and attribute accuracy on hand-computed toy cases."""
import numpy as np
import pytest

from reid.metrics import attribute_accuracy, evaluate_rank
from reid.schema import AttributeGroup, AttributeSchema

# gallery:       g0   g1   g2   g3   g4   g5   g6
G_PIDS = np.array([1,   2,  -1,   1,   0,   1,   3])
G_CAMS = np.array([0,   1,   1,   1,   1,   2,   1])
Q_PIDS = np.array([1, 2, 3])
Q_CAMS = np.array([0, 1, 0])
DIST = np.array([
    # q0 (pid 1, cam 0): g0 same id+cam -> dropped, g2 junk -> ignored.
    # kept order: g1(-) g3(+) g4(-) g5(+) g6(-): first hit at rank 2, AP = (1/2 + 2/4) / 2 = 0.5
    [0.10, 0.20, 0.30, 0.40, 0.50, 0.60, 0.70],
    # q1 (pid 2, cam 1): its only gallery image g1 is same camera -> no valid match -> skipped
    [0.90, 0.05, 0.01, 0.50, 0.60, 0.70, 0.80],
    # q2 (pid 3, cam 0): g6 is nearest -> rank 1, AP 1
    [0.50, 0.40, 0.30, 0.60, 0.70, 0.80, 0.01],
])


def test_toy_cmc_map_with_junk_and_same_camera_exclusion():
    cmc, mAP = evaluate_rank(DIST, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, max_rank=5)
    np.testing.assert_allclose(cmc, [0.5, 1.0, 1.0, 1.0, 1.0])
    assert mAP == pytest.approx(0.75)


def test_single_query_ap_by_hand():
    cmc, mAP = evaluate_rank(DIST[:1], Q_PIDS[:1], G_PIDS, Q_CAMS[:1], G_CAMS, max_rank=3)
    np.testing.assert_allclose(cmc, [0.0, 1.0, 1.0])
    assert mAP == pytest.approx(0.5)


def test_same_camera_image_would_count_without_the_protocol():
    # give g0 a different camera: now it is a valid rank-1 hit for q0; AP = (1 + 2/3 + 3/5) / 3
    cams = G_CAMS.copy()
    cams[0] = 5
    cmc, mAP = evaluate_rank(DIST[:1], Q_PIDS[:1], G_PIDS, Q_CAMS[:1], cams, max_rank=2)
    np.testing.assert_allclose(cmc, [1.0, 1.0])
    assert mAP == pytest.approx((1 + 2 / 3 + 3 / 5) / 3)


def test_junk_query_is_skipped_and_no_valid_query_raises():
    cmc, mAP = evaluate_rank(DIST[2:], np.array([3]), G_PIDS, Q_CAMS[2:], G_CAMS, max_rank=1)
    assert cmc[0] == 1.0
    assert mAP == 1.0
    with pytest.raises(ValueError, match="no query identity"):
        evaluate_rank(DIST[1:2], Q_PIDS[1:2], G_PIDS, Q_CAMS[1:2], G_CAMS)
    with pytest.raises(ValueError, match="no query identity"):
        evaluate_rank(DIST[2:], np.array([-1]), G_PIDS, Q_CAMS[2:], G_CAMS)


def test_max_rank_beyond_gallery_is_padded_with_the_final_value():
    cmc, _ = evaluate_rank(DIST, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, max_rank=50)
    assert cmc.shape == (50,)
    np.testing.assert_allclose(cmc[1:], 1.0)


def _naive(distmat, q_pids, g_pids, q_camids, g_camids, max_rank):
    """Per-query loop in the style of the official evaluation code."""
    cmcs, aps = [], []
    for i in range(len(q_pids)):
        order = np.argsort(distmat[i], kind="stable")
        keep = ~((g_pids[order] == q_pids[i]) & (g_camids[order] == q_camids[i])) & (g_pids[order] != -1)
        matches = (g_pids[order] == q_pids[i])[keep].astype(int)
        if not matches.any():
            continue
        c = matches.cumsum()
        c[c > 1] = 1
        c = np.pad(c, (0, max(0, max_rank - len(c))), mode="edge")
        cmcs.append(c[:max_rank])
        prec = matches.cumsum() / (np.arange(len(matches)) + 1)
        aps.append((prec * matches).sum() / matches.sum())
    return np.mean(cmcs, axis=0), float(np.mean(aps))


def test_vectorised_chunks_match_naive_loop_on_random_data():
    rng = np.random.default_rng(0)
    q_pids, g_pids = rng.integers(-1, 15, 40), rng.integers(-1, 15, 300)
    q_cams, g_cams = rng.integers(0, 4, 40), rng.integers(0, 4, 300)
    dist = rng.random((40, 300))
    ref_cmc, ref_map = _naive(dist, q_pids, g_pids, q_cams, g_cams, 20)
    cmc, mAP = evaluate_rank(dist, q_pids, g_pids, q_cams, g_cams, max_rank=20, chunk_size=7)
    np.testing.assert_allclose(cmc, ref_cmc, atol=1e-6)
    assert mAP == pytest.approx(ref_map)


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="does not match"):
        evaluate_rank(DIST, Q_PIDS[:2], G_PIDS, Q_CAMS, G_CAMS)


SCHEMA = AttributeSchema("toy", (AttributeGroup("female"), AttributeGroup("backpack", "upper"),
                                 AttributeGroup("age", "global", ("child", "adult", "old"))))


def test_attribute_accuracy_toy():
    #               female backpack  age: child adult old
    probs = np.array([[0.9,  0.2,       0.1, 0.8, 0.1],    # pred 1 0 adult
                      [0.4,  0.7,       0.6, 0.3, 0.1],    # pred 0 1 child
                      [0.5,  0.1,       0.2, 0.2, 0.6],    # pred 1 0 old   (0.5 counts as yes)
                      [0.1,  0.9,       0.3, 0.4, 0.3]])   # pred 0 1 adult
    targets = np.array([[1, 0, 1],
                        [1, 1, 0],
                        [1, -1, 1],
                        [-1, 0, -1]])
    out = attribute_accuracy(probs, targets, SCHEMA)
    assert out["per_attribute"]["female"] == pytest.approx(2 / 3)
    assert out["per_attribute"]["backpack"] == pytest.approx(2 / 3)
    assert out["per_attribute"]["age"] == pytest.approx(2 / 3)
    assert out["counts"] == {"female": 3, "backpack": 3, "age": 3}
    assert out["mean"] == pytest.approx(2 / 3)


def test_attribute_accuracy_unlabelled_attribute_is_left_out_of_the_mean():
    probs = np.array([[0.9, 0.9, 0.0, 1.0, 0.0]])
    out = attribute_accuracy(probs, np.array([[1, -1, 0]]), SCHEMA)
    assert "backpack" not in out["per_attribute"]
    assert out["counts"]["backpack"] == 0
    assert out["per_attribute"] == {"female": 1.0, "age": 0.0}
    assert out["mean"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="do not fit"):
        attribute_accuracy(probs[:, :4], np.array([[1, -1, 0]]), SCHEMA)


def test_attribute_ma_by_hand_on_the_toy_case():
    """mA: per attribute the mean recall of the classes present in the labels."""
    probs = np.array([[0.9, 0.2, 0.1, 0.8, 0.1], [0.4, 0.7, 0.6, 0.3, 0.1],
                      [0.5, 0.1, 0.2, 0.2, 0.6], [0.1, 0.9, 0.3, 0.4, 0.3]])
    targets = np.array([[1, 0, 1], [1, 1, 0], [1, -1, 1], [-1, 0, -1]])
    out = attribute_accuracy(probs, targets, SCHEMA)
    # female: only positives labelled -> no mA (a constant "yes" would score 100), left out of the mean
    # backpack: negatives rows 0, 3 -> 1 of 2 right; positive row 1 right -> (1/2 + 1) / 2
    # age: adult rows 0, 2 -> 1 of 2; child row 1 -> 1 of 1 -> (1/2 + 1) / 2
    assert out["per_attribute_ma"] == pytest.approx({"backpack": 0.75, "age": 0.75})
    assert out["ma"] == pytest.approx(0.75)
    assert out["per_attribute"]["female"] == pytest.approx(2 / 3)          # accuracy is still reported


def test_constant_answer_scores_50_ma_whatever_its_accuracy():
    rng = np.random.default_rng(0)
    targets = np.stack([(rng.random(200) < 0.1).astype(np.int64),          # female: 10% positive
                        (rng.random(200) < 0.7).astype(np.int64),          # backpack: 70% positive
                        rng.integers(0, 3, 200)], axis=1)                   # age: 3 classes
    for answer in (0.0, 1.0):
        probs = np.tile([answer, answer, 0.1, 0.7, 0.2], (200, 1))         # age: always "adult"
        out = attribute_accuracy(probs, targets, SCHEMA)
        assert out["per_attribute_ma"]["female"] == pytest.approx(0.5)
        assert out["per_attribute_ma"]["backpack"] == pytest.approx(0.5)
        assert out["per_attribute_ma"]["age"] == pytest.approx(1 / 3)    # balanced accuracy: 1/K
        assert out["per_attribute"]["female"] == pytest.approx(np.mean(targets[:, 0] == answer))
    perfect = np.zeros((200, 5))
    perfect[:, 0], perfect[:, 1] = targets[:, 0], targets[:, 1]
    perfect[np.arange(200), 2 + targets[:, 2]] = 1.0
    assert attribute_accuracy(perfect, targets, SCHEMA)["ma"] == pytest.approx(1.0)

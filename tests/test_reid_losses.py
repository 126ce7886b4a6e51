"""Losses: batch-hard triplet vs brute force, attribute loss (binary, multi-class, missing), ablations."""
from __future__ import annotations

import math

import pytest
import torch

from reid.losses import (MAX_CLASS_WEIGHT, MultiTaskLoss, attribute_frequencies, attribute_loss_weights,
                         attribute_part_loss, batch_hard_triplet_loss, pairwise_euclidean)
from reid.model import build_model
from reid.schema import AttributeGroup, AttributeSchema

SCHEMA = AttributeSchema("toy", (
    AttributeGroup("female", "global"),
    AttributeGroup("age", "global", ("young", "teen", "adult", "old")),
    AttributeGroup("up_color", "upper", ("white", "red", "blue")),
    AttributeGroup("downlong", "lower"),
))


def brute_force_batch_hard(feats, pids, margin):
    n = len(feats)
    losses = []
    for a in range(n):
        pos = [math.dist(feats[a].tolist(), feats[p].tolist()) for p in range(n) if pids[p] == pids[a]]
        neg = [math.dist(feats[a].tolist(), feats[q].tolist()) for q in range(n) if pids[q] != pids[a]]
        if neg:
            losses.append(max(0.0, max(pos) - min(neg) + margin))
    return sum(losses) / len(losses)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_batch_hard_matches_brute_force(seed):
    g = torch.Generator().manual_seed(seed)
    pids = torch.tensor([3, 3, 3, 3, 7, 7, 7, 7, 9, 9, 9, 9, 5])     # P x K plus a singleton identity
    feats = torch.randn(len(pids), 6, generator=g)
    for margin in (0.3, 1.2, 5.0):
        got = batch_hard_triplet_loss(feats, pids, margin)
        assert got.item() == pytest.approx(brute_force_batch_hard(feats, pids.tolist(), margin), rel=1e-5, abs=1e-6)


def test_batch_hard_gradients_finite_and_edge_cases():
    feats = torch.randn(4, 3, requires_grad=True)
    pids = torch.tensor([0, 0, 1, 1])
    feats_dup = torch.cat([feats, feats[:1]])                       # zero distance pair
    loss = batch_hard_triplet_loss(feats_dup, torch.tensor([0, 0, 1, 1, 0]), 1.2)
    loss.backward()
    assert torch.isfinite(feats.grad).all()
    assert batch_hard_triplet_loss(feats, torch.zeros(4, dtype=torch.long), 1.2).item() == 0.0  # no negatives
    d = pairwise_euclidean(torch.tensor([[0.0, 0.0], [3.0, 4.0]]))
    torch.testing.assert_close(d, torch.tensor([[0.0, 5.0], [5.0, 0.0]]))
    assert batch_hard_triplet_loss(feats, pids, 1.2).item() == pytest.approx(
        brute_force_batch_hard(feats.detach(), pids.tolist(), 1.2), rel=1e-5)


def _bce(z, y):
    p = 1 / (1 + math.exp(-z))
    return -(y * math.log(p) + (1 - y) * math.log(1 - p))


def _ce(zs, k):
    return -(zs[k] - math.log(sum(math.exp(z) for z in zs)))


def test_attribute_loss_binary_multiclass_missing():
    # columns: female | age x4 | up_color x3 | downlong
    logits = torch.tensor([[0.5, 1.0, 2.0, 0.0, -1.0, 0.3, 0.2, 0.1, -2.0],
                           [-1.5, 0.0, 0.0, 3.0, 0.0, 1.0, -1.0, 0.5, 0.7]])
    targets = torch.tensor([[1, 3, -1, 0],      # age class 3 (> 1: must go to softmax, not BCE); colour unknown
                            [0, 1, 2, -1]])
    glob = attribute_part_loss(logits, targets, SCHEMA, SCHEMA.part_groups("global"), "mean")
    terms = [_bce(0.5, 1), _bce(-1.5, 0), _ce([1.0, 2.0, 0.0, -1.0], 3), _ce([0.0, 0.0, 3.0, 0.0], 1)]
    assert glob.item() == pytest.approx(sum(terms) / 4, rel=1e-5)
    glob_sum = attribute_part_loss(logits, targets, SCHEMA, SCHEMA.part_groups("global"), "sum")
    assert glob_sum.item() == pytest.approx(sum(terms[:2]) / 2 + sum(terms[2:]) / 2, rel=1e-5)
    upper = attribute_part_loss(logits, targets, SCHEMA, SCHEMA.part_groups("upper"))
    assert upper.item() == pytest.approx(_ce([1.0, -1.0, 0.5], 2), rel=1e-5)   # only the labelled row
    lower = attribute_part_loss(logits, targets, SCHEMA, SCHEMA.part_groups("lower"))
    assert lower.item() == pytest.approx(_bce(-2.0, 0), rel=1e-5)

    # nothing labelled: 0 and no NaN, no gradient
    z = logits.clone().requires_grad_(True)
    none = attribute_part_loss(z, torch.full_like(targets, -1), SCHEMA, (0, 1, 2, 3))
    none.backward()
    assert none.item() == 0.0
    assert torch.count_nonzero(z.grad) == 0
    # the unknown colour of row 0 gets no gradient
    z.grad = None
    attribute_part_loss(z, targets, SCHEMA, SCHEMA.part_groups("upper")).backward()
    assert torch.count_nonzero(z.grad[0]) == 0
    assert torch.count_nonzero(z.grad[1, 5:8]) == 3


def small_model_batch(**model_options):
    """A tiny ResNet-18 multi-task model in train mode, a batch of 8 images, its pids and attribute targets."""
    torch.manual_seed(0)
    model = build_model("resnet18", num_ids=4, schema=SCHEMA, feat_dim=16, pretrained="none", input_size=(64, 32),
                        **model_options)
    x = torch.randn(8, 3, 64, 32)
    pids = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    targets = torch.tensor([[i % 2, i % 4, (i + 1) % 3, -1 if i == 0 else 1] for i in range(8)])
    return model.train(), x, pids, targets


@pytest.fixture(scope="module")
def real_outputs():
    return small_model_batch()


def test_total_and_ablation_switches(real_outputs):
    model, x, pids, targets = real_outputs
    out = model(x)
    base = MultiTaskLoss(SCHEMA, lambda_attr=0.5, lambda_trip=2.0, label_smoothing=0.1)
    total, parts = base(out, pids, targets)
    assert all(v > 0 for v in parts.values())
    assert total.item() == pytest.approx(parts["id"] + 0.5 * parts["attr"] + 2.0 * parts["trip"], rel=1e-5)
    id_ref = sum(torch.nn.functional.cross_entropy(lo, pids, label_smoothing=0.1) for lo in out.id_logits)
    assert parts["id"] == pytest.approx(id_ref.item(), rel=1e-5)
    trip_ref = batch_hard_triplet_loss(out.f_vg, pids, 1.2) + batch_hard_triplet_loss(out.f_vp, pids, 1.2)
    assert parts["trip"] == pytest.approx(trip_ref.item(), rel=1e-5)

    cases = {  # switch -> terms kept
        "use_id_loss": ("attr", "trip"), "use_attr_loss": ("id", "trip"),
        "identification": ("trip",), "verification": ("id", "attr"),
    }
    weights = {"id": 1.0, "attr": 0.5, "trip": 2.0}
    for switch, kept in cases.items():
        fn = MultiTaskLoss(SCHEMA, lambda_attr=0.5, lambda_trip=2.0, label_smoothing=0.1, **{switch: False})
        t, p = fn(out, pids, targets)
        for name in ("id", "attr", "trip"):
            assert p[name] == (pytest.approx(parts[name], rel=1e-5) if name in kept else 0.0), (switch, name)
        assert t.item() == pytest.approx(sum(weights[k] * parts[k] for k in kept), rel=1e-5), switch


def test_without_verification_no_gradient_to_verification_features(real_outputs):
    model, x, pids, targets = real_outputs
    model.zero_grad()
    out = model(x)
    total, _ = MultiTaskLoss(SCHEMA, verification=False)(out, pids, targets)
    total.backward()
    assert model.fc_vg[0].weight.grad is None or torch.count_nonzero(model.fc_vg[0].weight.grad) == 0
    assert torch.count_nonzero(model.fc_ig[0].weight.grad) > 0
    model.zero_grad()
    total, _ = MultiTaskLoss(SCHEMA, identification=False)(model(x), pids, targets)
    total.backward()
    assert model.fc_ig[0].weight.grad is None or torch.count_nonzero(model.fc_ig[0].weight.grad) == 0
    assert torch.count_nonzero(model.fc_vp[0].weight.grad) > 0


def test_bad_attribute_targets_shape(real_outputs):
    model, x, pids, targets = real_outputs
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        MultiTaskLoss(SCHEMA)(model(x), pids, targets[:, :2])


# ---- class-imbalance weighting, eq. 6 reduction, the six-feature model ------------------------------
TRAIN_TARGETS = torch.tensor([[1, 0, 0, 0],     # female | age (4) | up_color (3) | downlong
                              [0, 0, 1, 1],
                              [0, 1, 2, 0],
                              [0, 0, -1, -1]])
LOGITS = torch.tensor([[0.5, 1.0, 2.0, 0.0, -1.0, 0.3, 0.2, 0.1, -2.0],
                       [-1.5, 0.0, 0.0, 3.0, 0.0, 1.0, -1.0, 0.5, 0.7]])
TARGETS = torch.tensor([[1, 3, -1, 0], [0, 1, 2, -1]])


def test_label_frequencies_and_weights_by_hand():
    freq = attribute_frequencies(TRAIN_TARGETS.numpy(), SCHEMA)
    # female 1 of 4; age classes 3/4, 1/4, 0, 0; colours 1/3 each (one unlabelled); downlong 1 of 3
    torch.testing.assert_close(freq, torch.tensor([0.25, 0.75, 0.25, 0, 0, 1 / 3, 1 / 3, 1 / 3, 1 / 3],
                                                  dtype=torch.float64))
    w = attribute_loss_weights(freq, SCHEMA)
    e = math.exp
    torch.testing.assert_close(w[0], torch.tensor([e(0.75), 2 / 3, 2.0, 1, 1, 1, 1, 1, e(2 / 3)], dtype=torch.float64))
    torch.testing.assert_close(w[1, [0, 8]], torch.tensor([e(0.25), e(1 / 3)], dtype=torch.float64))
    rare = torch.tensor([0.5, 0.99, 0.01, 0, 0, 1 / 3, 1 / 3, 1 / 3, 0.5], dtype=torch.float64)
    assert attribute_loss_weights(rare, SCHEMA)[0, 2].item() == MAX_CLASS_WEIGHT     # 1 / (2 * 0.01) clipped


def test_frequency_weighting_changes_the_loss_as_computed_by_hand():
    w = attribute_loss_weights(attribute_frequencies(TRAIN_TARGETS, SCHEMA), SCHEMA).float()
    e = math.exp
    female = [e(0.75) * _bce(0.5, 1), e(0.25) * _bce(-1.5, 0)]
    age = [1.0 * _ce([1.0, 2.0, 0.0, -1.0], 3), 2.0 * _ce([0.0, 0.0, 3.0, 0.0], 1)]
    glob = SCHEMA.part_groups("global")
    assert attribute_part_loss(LOGITS, TARGETS, SCHEMA, glob, "mean", w).item() == pytest.approx(
        sum(female + age) / 4, rel=1e-5)
    assert attribute_part_loss(LOGITS, TARGETS, SCHEMA, glob, "sum", w).item() == pytest.approx(
        sum(female) / 2 + sum(age) / 2, rel=1e-5)
    assert attribute_part_loss(LOGITS, TARGETS, SCHEMA, SCHEMA.part_groups("lower"), "mean", w).item() == \
        pytest.approx(e(1 / 3) * _bce(-2.0, 0), rel=1e-5)
    # through MultiTaskLoss: the frequencies come from the training targets; off by default
    model_out = type("Out", (), {"attr_logits": LOGITS, "f_vg": torch.zeros(2, 1)})()
    fn = MultiTaskLoss(SCHEMA, use_id_loss=False, verification=False, attr_weighting="frequency",
                       attr_freq=attribute_frequencies(TRAIN_TARGETS, SCHEMA))
    plain = MultiTaskLoss(SCHEMA, use_id_loss=False, verification=False)
    upper = _ce([1.0, -1.0, 0.5], 2)
    assert fn(model_out, torch.zeros(2, dtype=torch.long), TARGETS)[1]["attr"] == pytest.approx(
        sum(female + age) / 4 + upper + e(1 / 3) * _bce(-2.0, 0), rel=1e-5)
    assert plain.attr_weights is None
    assert plain(model_out, torch.zeros(2, dtype=torch.long), TARGETS)[1]["attr"] == pytest.approx(
        (_bce(0.5, 1) + _bce(-1.5, 0) + _ce([1.0, 2.0, 0.0, -1.0], 3) + _ce([0.0, 0.0, 3.0, 0.0], 1)) / 4
        + upper + _bce(-2.0, 0), rel=1e-5)
    with pytest.raises(ValueError, match="attr_freq"):
        MultiTaskLoss(SCHEMA, attr_weighting="frequency")


def test_balanced_weighting_does_not_clip_rare_classes():
    """attr_weighting "balanced": class weights 1 / (K f_k) unclipped (class-balanced cross-entropy)."""
    rare = torch.tensor([0.5, 0.99, 0.01, 0, 0, 1 / 3, 1 / 3, 1 / 3, 0.5], dtype=torch.float64)
    w = attribute_loss_weights(rare, SCHEMA, float("inf"))
    assert w[0, 2].item() == pytest.approx(50.0) and w[0, 1].item() == pytest.approx(1 / (2 * 0.99))
    torch.testing.assert_close(w[:, [0, 8]], attribute_loss_weights(rare, SCHEMA)[:, [0, 8]])  # binary: same
    fn = MultiTaskLoss(SCHEMA, use_id_loss=False, verification=False, attr_weighting="balanced", attr_freq=rare)
    assert fn.attr_weights[0, 2].item() == pytest.approx(50.0)
    clipped = MultiTaskLoss(SCHEMA, use_id_loss=False, verification=False, attr_weighting="frequency", attr_freq=rare)
    assert clipped.attr_weights[0, 2].item() == MAX_CLASS_WEIGHT


@pytest.mark.parametrize("weighted", [False, True])
def test_sum_over_mean_reduction_is_the_number_of_attributes(weighted):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(6, SCHEMA.num_outputs, generator=g)
    targets = torch.stack([torch.randint(0, 2, (6,), generator=g), torch.randint(0, 4, (6,), generator=g),
                           torch.randint(0, 3, (6,), generator=g), torch.randint(0, 2, (6,), generator=g)], 1)
    w = attribute_loss_weights(attribute_frequencies(TRAIN_TARGETS, SCHEMA), SCHEMA) if weighted else None
    groups = tuple(range(SCHEMA.num_groups))
    mean = attribute_part_loss(logits, targets, SCHEMA, groups, "mean", w)
    total = attribute_part_loss(logits, targets, SCHEMA, groups, "sum", w)
    assert total.item() / mean.item() == pytest.approx(SCHEMA.num_groups, rel=1e-5)


@pytest.fixture(scope="module")
def six_outputs():
    return small_model_batch(part_whole_feature=True, global_attributes="all")


def test_six_feature_loss_has_the_extra_terms(six_outputs):
    """L_id gains f_I^P's classifier; L_attr^G covers all attributes (eq. 6) and L_attr^P is added."""
    model, x, pids, targets = six_outputs
    out = model(x)
    fn = MultiTaskLoss(SCHEMA, attr_reduction="sum")
    total, parts = fn(out, pids, targets)
    assert len(out.id_logits) == 4
    id_ref = sum(torch.nn.functional.cross_entropy(lo, pids) for lo in out.id_logits)
    assert parts["id"] == pytest.approx(id_ref.item(), rel=1e-5)
    every = tuple(range(SCHEMA.num_groups))
    attr_ref = (attribute_part_loss(out.attr_logits_global, targets, SCHEMA, every, "sum")
                + attribute_part_loss(out.attr_logits, targets, SCHEMA, SCHEMA.part_groups("upper"), "sum")
                + attribute_part_loss(out.attr_logits, targets, SCHEMA, SCHEMA.part_groups("lower"), "sum")
                + attribute_part_loss(out.attr_logits_part, targets, SCHEMA, every, "sum"))
    assert parts["attr"] == pytest.approx(attr_ref.item(), rel=1e-5)
    model.zero_grad()
    total.backward()
    upper_cols = list(SCHEMA.part_indices("upper"))
    assert torch.count_nonzero(model.attr_heads.heads["global"].weight.grad[upper_cols]) > 0  # global sees all
    assert torch.count_nonzero(model.attr_heads.heads["part"].weight.grad) > 0
    assert torch.count_nonzero(model.id_classifiers[3].weight.grad) > 0
    assert torch.count_nonzero(model.fc_ip[0].weight.grad) > 0


def test_ablation_switches_on_the_six_feature_model(six_outputs):
    model, x, pids, targets = six_outputs
    out = model(x)
    _, parts = MultiTaskLoss(SCHEMA)(out, pids, targets)
    cases = {"use_id_loss": ("attr", "trip"), "use_attr_loss": ("id", "trip"),
             "identification": ("trip",), "verification": ("id", "attr")}
    for switch, kept in cases.items():
        t, p = MultiTaskLoss(SCHEMA, attr_weighting="frequency",
                             attr_freq=attribute_frequencies(TRAIN_TARGETS, SCHEMA), **{switch: False})(out, pids, targets)
        for name in ("id", "trip"):
            assert p[name] == (pytest.approx(parts[name], rel=1e-5) if name in kept else 0.0), (switch, name)
        assert (p["attr"] > 0) == ("attr" in kept), switch
        assert t.item() == pytest.approx(sum(p.values()), rel=1e-5)

"""Per-group attribute weighting (``loss.attr_weighting_groups``): e.g. class-balanced weights for age only."""
from __future__ import annotations

import pytest
import torch

from core.config import ConfigError, load_config
from reid.losses import MAX_CLASS_WEIGHT, MultiTaskLoss, attribute_loss_weights, group_label_weights
from reid.schema import AttributeGroup, AttributeSchema
from reid.train_config import TrainConfig

SCHEMA = AttributeSchema("toy", (
    AttributeGroup("female", "global"),
    AttributeGroup("age", "global", ("young", "teen", "adult", "old")),
    AttributeGroup("up_color", "upper", ("white", "red", "blue")),
    AttributeGroup("downlong", "lower"),
))
# female 0.5 | age: teen 1 %, so 1 / (2 * 0.01) = 50 unclipped | up_color: red 1 %, 1 / (3 * 0.01) | downlong 0.5
RARE = torch.tensor([0.5, 0.99, 0.01, 0, 0, 0.495, 0.01, 0.495, 0.5], dtype=torch.float64)


def test_balanced_age_only_leaves_the_other_groups_as_the_base_weighting():
    w = group_label_weights(RARE, SCHEMA, "frequency", {"age": "balanced"})
    freq_w = attribute_loss_weights(RARE, SCHEMA)                                  # clipped at 10
    assert w[0, 2].item() == pytest.approx(50.0)                                  # age teen: not clipped
    assert w[0, 1].item() == pytest.approx(1 / (2 * 0.99))
    assert freq_w[0, 6].item() == MAX_CLASS_WEIGHT and w[0, 6].item() == MAX_CLASS_WEIGHT   # up_color: clipped
    keep = [0, 5, 6, 7, 8]
    torch.testing.assert_close(w[:, keep], freq_w[:, keep])
    # base "none": only the named group is weighted
    only = group_label_weights(RARE, SCHEMA, "none", {"age": "balanced"})
    torch.testing.assert_close(only[:, 1:5], w[:, 1:5])
    torch.testing.assert_close(only[:, keep], torch.ones(2, len(keep), dtype=torch.float64))
    # no groups named: the plain weighting
    torch.testing.assert_close(group_label_weights(RARE, SCHEMA, "frequency"), freq_w)


def test_loss_uses_the_group_weights_and_checks_the_names():
    fn = MultiTaskLoss(SCHEMA, use_id_loss=False, verification=False, attr_weighting="frequency",
                       attr_weighting_groups={"age": "balanced"}, attr_freq=RARE)
    assert fn.attr_weights[0, 2].item() == pytest.approx(50.0) and fn.attr_weights[0, 6].item() == MAX_CLASS_WEIGHT
    out = type("Out", (), {"attr_logits": torch.zeros(1, 9), "f_vg": torch.zeros(1, 1)})()
    teen = torch.tensor([[-1, 1, -1, -1]])                  # one image, age = teen: CE of 4 equal logits
    assert fn(out, torch.zeros(1, dtype=torch.long), teen)[1]["attr"] == pytest.approx(50.0 * torch.log(
        torch.tensor(4.0)).item(), rel=1e-5)
    only_age = MultiTaskLoss(SCHEMA, use_id_loss=False, verification=False, attr_freq=RARE,
                             attr_weighting_groups={"age": "balanced"})
    assert only_age.attr_weights is not None and only_age.attr_weights[0, 0].item() == 1.0
    with pytest.raises(ValueError, match="unknown attribute groups.*age"):
        MultiTaskLoss(SCHEMA, attr_weighting_groups={"agee": "balanced"}, attr_freq=RARE)
    with pytest.raises(ValueError, match="attr_freq"):
        MultiTaskLoss(SCHEMA, attr_weighting_groups={"age": "balanced"})


def test_config_key():
    cfg = load_config(TrainConfig, None, ["loss.attr_weighting_groups.age=balanced"])
    assert cfg.loss.attr_weighting_groups == {"age": "balanced"}
    assert load_config(TrainConfig, None, []).loss.attr_weighting_groups == {}
    with pytest.raises(ConfigError, match="attr_weighting_groups"):
        load_config(TrainConfig, None, ["loss.attr_weighting_groups.age=inverse"])


def test_logit_adjustment_effective_prior_follows_the_group_weighting():
    """The ``effective`` prior (f_k w_k) of a group weighted ``balanced`` is uniform over its seen classes,
    where the clipped ``frequency`` weights leave the rare class below its share."""
    from reid.logit_adjustment import group_priors

    age = slice(1, 5)
    plain = group_priors(RARE.numpy(), SCHEMA, "effective", "frequency")
    per_group = group_priors(RARE.numpy(), SCHEMA, "effective", "frequency", {"age": "balanced"})
    assert per_group[age][:2] == pytest.approx([0.5, 0.5])              # teen 1 %: weight 50, not 10
    assert plain[age][1] < 0.2
    assert per_group[5:8] == pytest.approx(plain[5:8])                   # up_color: still frequency

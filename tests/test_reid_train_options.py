"""Training with the paper-fidelity and attribute-weighting options: frequencies from the training
samples, stored with the training state, bit-for-bit resume, the six-feature model end to end."""
from dataclasses import replace

import numpy as np
import pytest
import torch

from reid.train_config import LossSection, ModelSection
from test_train import _one_thread, folder_data, tiny_config  # noqa: F401  (fixtures shared with test_train)


def _paper_like(out, epochs=2):
    cfg = tiny_config(out, epochs=epochs)
    return replace(cfg, model=replace(cfg.model, part_whole_feature=True, global_attributes="all"),
                   loss=LossSection(attr_reduction="sum", attr_weighting="frequency"))


def test_frequencies_from_training_samples_saved_and_resumed_bit_for_bit(folder_data, tmp_path):
    from reid.losses import attribute_frequencies
    from reid.train import Trainer, train

    cfg = _paper_like(tmp_path / "full")
    full = train(cfg, data_root=str(folder_data), progress=False)
    assert full["epoch"] == 2 and full["attr"] > 0
    t = Trainer(replace(cfg, out=str(tmp_path / "half")), data_root=str(folder_data), progress=False)
    targets = np.stack([s.attrs for s in t.data.train])
    expected = attribute_frequencies(targets, t.model.schema)
    torch.testing.assert_close(t.loss_fn.attr_freq, expected)
    assert 0 < expected[0] < 1                                      # the toy data's one binary attribute
    assert t.model.embedding_dim == 6 * cfg.model.feat_dim
    t.fit(until=1)
    state = torch.load(tmp_path / "half" / "last.state-0001.pt", weights_only=True)
    torch.testing.assert_close(state["attr_freq"], expected)
    t2 = Trainer(replace(cfg, out=str(tmp_path / "half")), data_root=str(folder_data), progress=False)
    t2.loss_fn.set_frequencies(torch.full_like(expected, 0.5))      # resume must restore the stored ones
    t2.resume(tmp_path / "half" / "last.pt")
    torch.testing.assert_close(t2.loss_fn.attr_freq, expected)
    t2.fit()
    a = torch.load(tmp_path / "full" / "last.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "half" / "last.pt", weights_only=True)["state_dict"]
    assert a.keys() == b.keys() and any(k.startswith("fc_ip.") for k in a)
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_default_options_store_no_frequencies(folder_data, tmp_path):
    from reid.train import Trainer

    cfg = tiny_config(tmp_path / "plain", epochs=1)
    assert (cfg.loss.attr_weighting, cfg.loss.attr_reduction) == ("none", "mean")
    assert (cfg.model.part_whole_feature, cfg.model.global_attributes) == (False, "global")
    t = Trainer(cfg, data_root=str(folder_data), progress=False)
    assert t.loss_fn.attr_freq is None and t.model.embedding_dim == 5 * cfg.model.feat_dim
    t.fit()
    assert "attr_freq" not in torch.load(tmp_path / "plain" / "last.state-0001.pt", weights_only=True)


def test_config_options_are_validated():
    from core.config import load_config
    from core.errors import ConfigError
    from reid.train_config import TrainConfig

    with pytest.raises(ConfigError, match="attr_weighting"):
        load_config(TrainConfig, None, ["loss.attr_weighting=inverse"])
    with pytest.raises(ConfigError, match="global_attributes"):
        load_config(TrainConfig, None, ["model.global_attributes=some"])
    cfg = load_config(TrainConfig, None, ["loss.attr_reduction=sum", "model.part_whole_feature=true"])
    assert cfg.loss.attr_reduction == "sum" and cfg.model.part_whole_feature is True
    assert ModelSection().part_whole_feature is False


@pytest.mark.parametrize("mult,bn", [(0.0, "train"), (0.1, "train"), (0.1, "frozen")])
def test_backbone_learning_rate_factor_and_frozen_backbone(folder_data, tmp_path, mult, bn):
    """optim.backbone_lr_mult: the pretrained part learns at lr * mult (two groups); 0 freezes it,
    batch-norm statistics included, while the heads learn. optim.backbone_bn=frozen: its weights
    learn, its batch-norm statistics stay."""
    from reid.train import Trainer
    from reid.train_config import OptimSection

    cfg = tiny_config(tmp_path / f"{mult}{bn}", epochs=1)
    cfg = replace(cfg, optim=OptimSection(name="sgd", lr=0.01, backbone_lr_mult=mult, backbone_bn=bn),
                  eval=replace(cfg.eval, every=0))
    t = Trainer(cfg, data_root=str(folder_data), progress=False)
    backbone = {k: v.clone() for m, prefix in zip(t.model.backbone_modules(), ("trunk.", "global_branch.", "part_branch."))
                for k, v in ((prefix + n, v) for n, v in m.state_dict().items())}
    heads = {k: v.clone() for k, v in t.model.state_dict().items() if k.startswith("fc_ig.0")}
    assert [g["lr"] for g in t.optimizer.param_groups] == ([0.01] if mult == 0 else [0.01, 0.01 * mult])
    t.fit()
    after = t.model.state_dict()
    changed = [k for k, v in backbone.items() if not torch.equal(v, after[k])]
    stats_changed = any(k.endswith("running_mean") for k in changed)
    assert (changed == []) if mult == 0 else (stats_changed == (bn == "train") and
                                              any(k.endswith("weight") for k in changed))
    assert not torch.equal(heads["fc_ig.0.weight"], after["fc_ig.0.weight"])
    with pytest.raises(ValueError, match="backbone_lr_mult"):
        OptimSection(backbone_lr_mult=-1)


def test_low_resolution_option_reaches_the_training_transform(folder_data, tmp_path):
    from core.config import from_dict
    from core.errors import ConfigError
    from reid.train import Trainer
    from reid.train_config import DataSection, TrainConfig

    cfg = tiny_config(tmp_path / "lr", epochs=1)
    cfg = replace(cfg, data=replace(cfg.data, low_resolution=1.0, low_heights=(16, 24)))
    t = Trainer(cfg, data_root=str(folder_data), progress=False)
    assert t.dataset.transform.low_resolution == 1.0 and t.dataset.transform.low_heights == (16, 24)
    parsed = from_dict(TrainConfig, {"data": {"low_resolution": 0.5, "low_heights": [40, 96]}})
    assert parsed.data.low_resolution == 0.5 and tuple(parsed.data.low_heights) == (40, 96)
    assert DataSection().low_resolution == 0.0                  # off unless a recipe asks for it
    with pytest.raises((ValueError, ConfigError), match="low_resolution"):
        from_dict(TrainConfig, {"data": {"low_resolution": 1.5}})
    with pytest.raises((ValueError, ConfigError), match="low_heights"):
        from_dict(TrainConfig, {"data": {"low_heights": [90, 40]}})

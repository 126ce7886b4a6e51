"""Attribute decision thresholds fitted on training images (reid/attribute_calibration.py)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from core.errors import UserError
from pipeline.cli import main as cli_main
from reid.attribute_calibration import MIN_PER_CLASS, fit_offsets, logits_of
from reid.checkpoint import load_checkpoint, save_checkpoint
from reid.metrics import balanced_accuracy
from reid.model import build_model
from reid.schema import AttributeGroup, AttributeSchema
from tests.test_train import make_folder_dataset, tiny_config

SCHEMA = AttributeSchema("t", (AttributeGroup("hat"), AttributeGroup("colour", classes=("red", "blue", "green")),
                               AttributeGroup("rare")))


def _scores(seed=0, n=2000):
    """A rare binary attribute whose positives score mostly below 0.5, a multi-class group, and an
    attribute with too few positives to fit."""
    rng = np.random.default_rng(seed)
    hat = (rng.random(n) < 0.1).astype(np.int64)
    colour = rng.integers(0, 3, n)
    rare = np.zeros(n, np.int64)
    rare[:MIN_PER_CLASS - 1] = 1
    p_hat = 1 / (1 + np.exp(-(2.0 * hat - 2.5 + rng.normal(0, 1, n))))
    p_col = rng.dirichlet(np.ones(3), n)
    p_rare = rng.random(n)
    return np.column_stack([p_hat, p_col, p_rare]), np.column_stack([hat, colour, rare])


def test_thresholds_balance_the_recalls_of_a_rare_attribute():
    probs, targets = _scores()
    offsets, report = fit_offsets(probs, targets, SCHEMA)
    before = balanced_accuracy((probs[:, 0] >= 0.5).astype(int), targets[:, 0])
    assert offsets[0] < 0                                         # a rare "yes" needs a lower threshold
    assert report["hat"]["after"] > 100 * before + 5
    assert report["hat"]["before"] == pytest.approx(100 * before, abs=0.01)
    np.testing.assert_array_equal(offsets[1:], 0)                 # multi-class and too-few-labels untouched
    assert set(report) == {"hat"}
    # the fitted threshold also holds on fresh images from the same distribution
    p2, t2 = _scores(seed=1)
    after = balanced_accuracy((logits_of(p2[:, 0]) >= offsets[0]).astype(int), t2[:, 0])
    assert after > balanced_accuracy((p2[:, 0] >= 0.5).astype(int), t2[:, 0]) + 0.05


def test_unlabelled_images_are_ignored_and_shapes_are_checked():
    probs, targets = _scores()
    t = targets.copy()
    t[::2, 0] = -1
    offsets, report = fit_offsets(probs, t, SCHEMA)
    assert report["hat"]["images"] == len(t) // 2
    with pytest.raises(ValueError, match="do not fit"):
        fit_offsets(probs[:, :3], targets, SCHEMA)


def test_model_offsets_shift_probabilities_and_survive_a_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = build_model("mobilenetv2", schema=SCHEMA, feat_dim=16, pretrained="none", input_size=(64, 32)).eval()
    x = torch.rand(3, 3, 64, 32)
    with torch.no_grad():
        p0 = model(x).attributes.numpy()
    assert "attribute_offsets" not in model.config               # configs of older checkpoints stay equal
    offsets = [-1.5, 0.0, 0.0, 0.0, 0.7]
    model.set_attribute_offsets(offsets)
    with torch.no_grad():
        p1 = model(x).attributes.numpy()
    np.testing.assert_allclose(logits_of(p1[:, 0]), logits_of(p0[:, 0]) + 1.5, atol=1e-3)
    np.testing.assert_allclose(logits_of(p1[:, 4]), logits_of(p0[:, 4]) - 0.7, atol=1e-3)
    np.testing.assert_allclose(p1[:, 1:4], p0[:, 1:4], atol=1e-6)
    save_checkpoint(tmp_path / "m.pt", model)
    back, meta = load_checkpoint(tmp_path / "m.pt")
    assert meta["model_config"]["attribute_offsets"] == pytest.approx(offsets)
    with torch.no_grad():
        np.testing.assert_allclose(back(x).attributes.numpy(), p1, atol=1e-6)
    with pytest.raises(UserError, match="expected 5 values"):
        model.set_attribute_offsets([0.1, 0.2])
    model.set_attribute_offsets(None)
    assert "attribute_offsets" not in model.config


def test_cli_calibrates_a_trained_checkpoint_on_its_training_images(tmp_path, capsys):
    from reid.train import train

    data = make_folder_dataset(tmp_path / "data", train_ids=30, per_id=3)
    cfg = tiny_config(tmp_path / "run", epochs=1)
    train(cfg, data_root=str(data), progress=False)
    src, out = tmp_path / "run" / "last.pt", tmp_path / "calibrated.pt"
    assert cli_main(["calibrate-attributes", "--checkpoint", str(src), "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "dark_upper" in printed and "90 training images" in printed
    model, meta = load_checkpoint(out)
    rep = meta["extra"]["attribute_calibration"]
    assert rep["images"] == 90 and rep["source"] == "last.pt"
    assert rep["attributes"]["dark_upper"]["after"] >= rep["attributes"]["dark_upper"]["before"]
    threshold = rep["attributes"]["dark_upper"]["threshold"]
    offset = float(model.attr_offset[0])
    assert 1 / (1 + np.exp(-offset)) == pytest.approx(threshold, abs=1e-3)
    # the original is unchanged, and the rest of the checkpoint is carried over
    orig, orig_meta = load_checkpoint(src)
    assert float(orig.attr_offset.abs().sum()) == 0
    assert meta["train_config"] == orig_meta["train_config"]
    assert cli_main(["calibrate-attributes", "--checkpoint", str(src), "--out", str(tmp_path / "x.onnx")]) != 0
    assert "must end in .pt" in capsys.readouterr().err

"""Logit adjustment of the multi-class attribute groups by their training prior (reid/logit_adjustment.py)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from reid.checkpoint import load_checkpoint, save_checkpoint
from reid.logit_adjustment import adjustment_offsets, fit_adjustment, fit_taus, group_priors
from reid.losses import MAX_CLASS_WEIGHT, attribute_frequencies
from reid.metrics import balanced_accuracy
from reid.model import build_model
from reid.schema import AttributeGroup, AttributeSchema

SCHEMA = AttributeSchema("t", (AttributeGroup("hat"),
                               AttributeGroup("colour", classes=("black", "blue", "red", "pink"))))
FREQ = np.array([0.3, 0.6, 0.3, 0.098, 0.002])       # hat's positive ratio, then the colour shares


def _prior_following_scores(seed=0, n=6000):
    """Colour labels with the prior FREQ[1:] and logits that add the log prior to a weak class signal
    (what plain cross-entropy learns): arg-max seldom says the rare colours."""
    rng = np.random.default_rng(seed)
    pi = FREQ[1:] / FREQ[1:].sum()
    y = rng.choice(4, n, p=pi)
    y[:40] = 3                                         # enough rare labels to measure their recall
    logits = 1.0 * np.eye(4)[y] + rng.normal(0, 1, (n, 4)) + np.log(pi)
    colour = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    hat = rng.random(n)
    return np.column_stack([hat, colour]), np.column_stack([(hat > 0.5).astype(int), y])


def test_priors_raw_and_effective():
    raw = group_priors(FREQ, SCHEMA, "raw")
    assert raw[0] == 1                                 # binary columns: no offset
    np.testing.assert_allclose(raw[1:], FREQ[1:] / FREQ[1:].sum())
    eff = group_priors(FREQ, SCHEMA, "effective")
    # the class-weighted loss (1 / (K f), clipped) leaves a uniform prior but for the clipped rare class
    np.testing.assert_allclose(eff[1:4] / eff[1], 1.0)
    assert eff[4] / eff[1] == pytest.approx(MAX_CLASS_WEIGHT * 0.002 * 4, rel=1e-6)
    off = adjustment_offsets(eff, SCHEMA, {"colour": 0.5})
    assert off[0] == 0 and np.allclose(off[1:], 0.5 * np.log(eff[1:]))
    assert not adjustment_offsets(eff, SCHEMA, {"colour": 0.0}).any()


def test_fitted_tau_raises_balanced_accuracy_on_fresh_images():
    probs, targets = _prior_following_scores()
    freq = attribute_frequencies(targets, SCHEMA).numpy()
    prior = group_priors(freq, SCHEMA, "raw")
    taus, report = fit_taus(probs, targets, SCHEMA, prior)
    assert set(taus) == {"colour"} and 0.5 <= taus["colour"] <= 1.5   # the truth is tau = 1
    assert report["colour"]["after"] > report["colour"]["before"] + 5
    p2, t2 = _prior_following_scores(seed=1)
    off = adjustment_offsets(prior, SCHEMA, taus)
    plain = balanced_accuracy(np.argmax(p2[:, 1:], 1), t2[:, 1])
    adjusted = balanced_accuracy(np.argmax(np.log(p2[:, 1:]) - off[1:], 1), t2[:, 1])
    assert adjusted > plain + 0.05
    fit = fit_adjustment(probs, targets, freq, SCHEMA)
    assert fit["priors"]["colour"] in ("raw", "effective") and fit["offsets"][0] == 0


def test_stored_adjustment_changes_the_decoded_colour(tmp_path):
    """Offsets in the checkpoint are subtracted from the colour logits by the model itself, so every
    consumer of its probabilities decodes the adjusted arg-max."""
    torch.manual_seed(0)
    model = build_model("mobilenetv2", schema=SCHEMA, feat_dim=16, pretrained="none", input_size=(64, 32)).eval()
    x = torch.rand(4, 3, 64, 32)
    with torch.no_grad():
        p0 = model(x).attributes.numpy()
    off = adjustment_offsets(group_priors(FREQ, SCHEMA, "raw"), SCHEMA, {"colour": 1.0})
    model.set_attribute_offsets(off)
    save_checkpoint(tmp_path / "m.pt", model)
    back, _ = load_checkpoint(tmp_path / "m.pt")
    with torch.no_grad():
        p1 = back(x).attributes.numpy()
    expect = np.log(p0[:, 1:]) - off[1:]
    expect = np.exp(expect) / np.exp(expect).sum(1, keepdims=True)
    np.testing.assert_allclose(p1[:, 1:], expect, atol=1e-5)
    np.testing.assert_allclose(p1[:, 0], p0[:, 0], atol=1e-6)
    assert (SCHEMA.decode(p1)[:, 1] == 3).all()         # pink's log prior -6.2 outweighs these logits

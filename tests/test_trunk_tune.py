"""Tuning the trunk's last block for worse cameras (reid/trunk_tune.py, reid/degrade.py): the degradation
family, the loss, and a real (small) run on Market-1501 crops that writes an IR OpenVINO runs, brings
degraded crops closer to their clean embedding, and resumes (skips without ../shared)."""
from __future__ import annotations

import json

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from conftest import shared_path
from reid.degrade import KINDS, NATIVE_HEIGHT, _APPLY, degrade
from reid.ir_trunk import IRTrunk
from reid.train_config import DatasetSpec
from reid.trunk_tune import TuneConfig, tune, tune_loss

IR_PARTS = ("models", "openvino", "person-reidentification-retail-0277", "FP16", "person-reidentification-retail-0277.xml")


def _person(h=128, w=64):
    img = np.full((h, w, 3), 90, np.uint8)
    cv2.rectangle(img, (16, 10), (48, 60), (40, 40, 200), -1)                  # a red top
    cv2.rectangle(img, (18, 62), (46, 120), (160, 80, 20), -1)                 # blue trousers
    return img


def test_degrade_is_seeded_keeps_the_shape_of_a_person_and_changes_the_pixels():
    img = _person()
    a, b = degrade(img, np.random.default_rng(3)), degrade(img, np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    for seed in range(20):
        out = degrade(img, np.random.default_rng(seed))
        assert out.dtype == np.uint8 and out.ndim == 3
        assert NATIVE_HEIGHT[0] - 1 <= out.shape[0] <= NATIVE_HEIGHT[1]
        assert abs(out.shape[1] / out.shape[0] - 0.5) < 0.05
    small = cv2.resize(img, (50, 100), interpolation=cv2.INTER_AREA)
    for kind in KINDS:                                                           # every kind alters the crop
        out = _APPLY[kind](small, np.random.default_rng(0))
        assert out.shape == small.shape and np.abs(out.astype(int) - small).mean() > 0.5, kind


def test_tune_loss_is_zero_when_the_student_is_the_teacher_and_grows_when_it_drifts():
    t = F.normalize(torch.randn(8, 16, generator=torch.Generator().manual_seed(0)), dim=1)
    pids = torch.arange(8)
    base = tune_loss(t, t, t, pids, 0.0, 0.05)
    assert abs(float(base)) < 1e-6
    other = F.normalize(t + 0.5 * torch.randn(8, 16, generator=torch.Generator().manual_seed(1)), dim=1)
    assert float(tune_loss(t, other, t, pids, 0.0, 0.05)) > 0.05
    swapped = other[torch.tensor([1, 0, 2, 3, 4, 5, 6, 7])]
    assert float(tune_loss(t, swapped, t, pids, 1.0, 0.05)) > float(tune_loss(t, other, t, pids, 1.0, 0.05))
    same = torch.tensor([0, 0, 1, 2, 3, 4, 5, 6])                                 # same identity: not a negative
    assert float(tune_loss(t, swapped, t, same, 1.0, 0.05)) < float(tune_loss(t, swapped, t, pids, 1.0, 0.05))


def test_a_small_tuning_run_brings_degraded_crops_to_their_clean_embedding(tmp_path, caplog):
    xml = shared_path(*IR_PARTS)
    market = shared_path("data", "market1501-mini")
    cfg = TuneConfig(trunk=str(xml), data=(DatasetSpec("market1501", root=str(market)),),
                     cache=str(tmp_path / "cache"), epochs=3, lr=1e-3, batch=16, threads=2, out=str(tmp_path / "out"))
    tuned = tune(cfg)
    assert tuned.is_file() and tuned.with_suffix(".bin").is_file()
    hist = json.loads((tmp_path / "out" / "history.json").read_text())
    assert [h["epoch"] for h in hist["history"]] == [0, 1, 2] and hist["replaced_constants"] > 10
    assert hist["history"][-1]["loss"] < hist["history"][0]["loss"]
    paths = sorted((market / "bounding_box_train").glob("*.jpg"))
    clean = [cv2.imread(str(p)) for p in paths]
    rng = np.random.default_rng(99)                                              # other copies than the cached ones
    worse = [degrade(c, rng) for c in clean]
    size = lambda cs: np.stack([cv2.resize(c, (128, 256)) for c in cs])         # noqa: E731
    teacher = IRTrunk(xml, num_threads=1)(size(clean))[0]
    before = IRTrunk(xml, num_threads=1)(size(worse))[0]
    after = IRTrunk(tuned, num_threads=1)(size(worse))[0]
    cos = lambda a, b: float(((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)).mean())  # noqa: E731
    assert cos(after, teacher) > cos(before, teacher) + 0.01
    caplog.set_level("INFO")
    more = TuneConfig(**{**cfg.__dict__, "epochs": 4})
    tune(more)                                                                   # resumes: one more epoch
    hist2 = json.loads((tmp_path / "out" / "history.json").read_text())
    assert hist2["history"][:3] == hist["history"] and len(hist2["history"]) == 4
    assert "resuming after epoch 3" in caplog.text


def test_a_detector_ir_is_refused_before_anything_is_cached(tmp_path):
    import pytest

    from core.errors import UserError

    det = shared_path("models", "openvino", "person-detection-0202", "FP16", "person-detection-0202.xml")
    market = shared_path("data", "market1501-mini")
    cfg = TuneConfig(trunk=str(det), data=(DatasetSpec("market1501", root=str(market)),), cache=str(tmp_path / "c"),
                     out=str(tmp_path / "o"))
    with pytest.raises(UserError, match="not a person ReID model"):
        tune(cfg)
    assert not (tmp_path / "c").exists()

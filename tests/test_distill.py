"""Distillation from a frozen teacher (reid/distill.py): losses, teacher-feature cache, training, resume."""
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from core.errors import UserError
from reid.distill import DistillLoss, centred, relational_loss, teacher_features
from reid.train_config import DistillSection, LossSection
from test_train import _one_thread, folder_data, tiny_config  # noqa: F401  (fixtures shared with test_train)

REPO = Path(__file__).resolve().parents[1]


def teacher() -> str:
    """A real trained model as the teacher, fixed whatever the shipped default is: torchreid's OSNet x0.25
    (512-d ONNX in ../shared; the test skips without it)."""
    from conftest import shared_path

    return str(shared_path("models", "osnet_x0_25_msmt17.onnx"))


def test_relational_loss_compares_similarity_structure():
    g = torch.Generator().manual_seed(0)
    t = torch.randn(8, 5, generator=g)
    assert float(relational_loss(t, t)) == pytest.approx(0.0, abs=1e-7)
    assert float(relational_loss(3.0 * t, t)) == pytest.approx(0.0, abs=1e-6)   # scale-free
    q, _ = torch.linalg.qr(torch.randn(5, 5, generator=g))
    assert float(relational_loss(t @ q, t)) == pytest.approx(0.0, abs=1e-6)     # rotation-free
    other = torch.randn(8, 7, generator=g)                                         # any dimension
    assert float(relational_loss(other, t)) > 0.05
    assert float(relational_loss(t[:1], t[:1])) == 0.0


def test_centred_teacher_features_have_zero_mean_and_unit_norm():
    x = np.abs(np.random.default_rng(0).normal(size=(50, 8))).astype(np.float32)   # one orthant
    c = centred(x)
    assert np.allclose(np.linalg.norm(c, axis=1), 1.0, atol=1e-5)
    assert np.abs(c.mean(0)).max() < 0.2
    assert (c @ c.T)[~np.eye(50, dtype=bool)].mean() < 0.05


def test_distill_loss_gradient_reaches_student_and_projection():
    loss = DistillLoss(6, 4, weight_feat=2.0, weight_rel=10.0)
    s = torch.randn(5, 6, requires_grad=True)
    t = torch.nn.functional.normalize(torch.randn(5, 4), dim=1)
    total, parts = loss(s, t)
    total.backward()
    assert set(parts) == {"feat", "rel"}
    assert 0 <= parts["feat"] <= 2
    assert parts["rel"] > 0
    assert float(total.detach()) == pytest.approx(2.0 * parts["feat"] + 10.0 * parts["rel"], rel=1e-5)
    assert s.grad.abs().sum() > 0
    assert loss.proj.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError):
        DistillLoss(6, 4, weight_feat=-1)


def test_teacher_features_are_cached_and_normalised(folder_data, tmp_path):
    paths = sorted(str(p) for p in (folder_data / "train").glob("*.png"))
    feats = teacher_features(paths, teacher(), tmp_path)
    assert feats.shape == (len(paths), 512)
    assert np.allclose(np.linalg.norm(feats, axis=1), 1.0, atol=1e-4)
    cached = list(tmp_path.glob("teacher-*.npy"))
    assert len(cached) == 1
    np.save(cached[0], feats * 0 + 0.5)                 # a reused cache is read, not recomputed
    assert np.all(teacher_features(paths, teacher(), tmp_path) == 0.5)
    assert teacher_features(paths[:3], teacher(), tmp_path).shape == (3, 512)   # other list: new file
    with pytest.raises(UserError, match="teacher not found"):
        teacher_features(paths, str(tmp_path / "missing.onnx"), tmp_path / "other")


def _distill_cfg(out: Path, epochs: int, **kw):
    return replace(tiny_config(out, epochs=epochs), distill=DistillSection(teacher=teacher(), **kw))


def test_training_with_distillation_pulls_towards_teacher_and_resumes_exactly(folder_data, tmp_path):
    from reid.train import Trainer, train

    # only the distillation terms: their loss must fall
    cfg = replace(_distill_cfg(tmp_path / "kd", epochs=20, weight_feat=1.0, weight_rel=10.0),
                  loss=LossSection(identification=False, verification=False))
    cfg = replace(cfg, optim=replace(cfg.optim, name="adam", lr=1e-3),
                  schedule=replace(cfg.schedule, decay="none"), eval=replace(cfg.eval, enabled=False))
    trainer = Trainer(cfg, data_root=str(folder_data), progress=False)
    trainer.fit()
    hist = trainer.history
    assert hist[-1]["rel"] < 0.8 * hist[0]["rel"]       # about 0.75x after 20 epochs with the OSNet teacher
    assert hist[-1]["feat"] < hist[0]["feat"]

    # with the multi-task losses: an interrupted + resumed run equals an uninterrupted one
    full_cfg = _distill_cfg(tmp_path / "full", epochs=2)
    train(full_cfg, data_root=str(folder_data), progress=False)
    half_cfg = replace(full_cfg, out=str(tmp_path / "half"))
    Trainer(half_cfg, data_root=str(folder_data), progress=False).fit(until=1)
    t2 = Trainer(half_cfg, data_root=str(folder_data), progress=False)
    t2.resume(tmp_path / "half" / "last.pt")
    t2.fit()
    a = torch.load(tmp_path / "full" / "last.pt", weights_only=False)["state_dict"]
    b = torch.load(tmp_path / "half" / "last.pt", weights_only=False)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not any("proj" in k for k in a)              # the projection never reaches the model

    # a checkpoint trained without distillation cannot be resumed with it
    plain = replace(tiny_config(tmp_path / "plain", epochs=1))
    Trainer(plain, data_root=str(folder_data), progress=False).fit()
    kd = Trainer(replace(full_cfg, out=str(tmp_path / "plain")), data_root=str(folder_data), progress=False)
    with pytest.raises(UserError, match="trained without distillation"):
        kd.resume(tmp_path / "plain" / "last.pt")

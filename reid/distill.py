"""Knowledge distillation from a frozen teacher ReID model (``distill`` section of ``mcmt train-reid``).

An extension of the paper's losses for small students trained on little data: a teacher encoder
(any model ``ReIDEncoder`` loads, e.g. torchreid's OSNet ONNX) embeds every *training* image once,
before training (cached in the output folder, so a resumed run does not recompute it). During
training the student's inference embedding (the concatenated five features, L2-normalised) is pulled
towards the teacher's with two terms added to the multi-task loss:

- ``feat``: ``1 - cos(P e_s, e_t)`` averaged over the batch, where ``P`` is a learned linear map from
  the student's embedding size to the teacher's (a training-only parameter: it lives in the loss,
  is saved with the optimizer state and never reaches the exported model);
- ``rel`` (relational, similarity-preserving): mean squared difference of the two batch cosine
  similarity matrices (off-diagonal), which needs no projection and matches what retrieval uses.

``L = L_multitask + weight_feat * L_feat + weight_rel * L_rel``. The teacher sees the plain
(un-augmented) image; the student the augmented one, which also teaches invariance to flips and
erasing. Teacher embeddings are centred over the training set first (:func:`centred`). The
teacher's training data must not contain the evaluation set (state it in the model card).
"""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.atomic import atomic_write
from core.errors import UserError

log = logging.getLogger(__name__)


def _samples_key(paths: Sequence[str], teacher: str) -> str:
    h = hashlib.sha1(Path(teacher).name.encode())
    for p in paths:
        h.update(b"\0" + str(p).encode())
    return h.hexdigest()[:16]


def teacher_features(paths: Sequence[str], teacher: str, cache_dir: str | Path | None = None,
                     batch_size: int = 64) -> np.ndarray:
    """(N, D) float32 L2-normalised teacher embeddings of the images ``paths`` (in order).

    With ``cache_dir`` the array is stored as ``teacher-<hash>.npy`` (hash of the teacher's file
    name and the image list) and reused by later calls with the same inputs.
    """
    import cv2

    from reid.encoder import ReIDEncoder

    if not paths:
        raise UserError("distillation: the training set is empty")
    cache = Path(cache_dir) / f"teacher-{_samples_key(paths, teacher)}.npy" if cache_dir else None
    if cache is not None and cache.is_file():
        feats = np.load(cache)
        if feats.shape[0] == len(paths):
            log.info("distillation: teacher features from %s", cache)
            return feats
    if not Path(teacher).exists():
        raise UserError(f"distillation teacher not found: {teacher} (give an .onnx, OpenVINO .xml or "
                        "our .pt ReID model in distill.teacher)")
    enc = ReIDEncoder.from_checkpoint(teacher, batch_size=batch_size)
    log.info("distillation: embedding %d training images with teacher %s (%d-d)", len(paths), enc.name, enc.dim)
    out = np.zeros((len(paths), enc.dim), np.float32)
    for start in range(0, len(paths), 512):
        chunk = paths[start:start + 512]
        imgs = []
        for p in chunk:
            img = cv2.imread(str(p), cv2.IMREAD_COLOR)
            if img is None:
                raise UserError(f"distillation: cannot read training image {p}")
            imgs.append(img)
        out[start:start + len(chunk)] = enc.embed(imgs)[0]
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(cache, lambda tmp: _save_npy(tmp, out))
    return out


def centred(feats: np.ndarray) -> np.ndarray:
    """Teacher embeddings minus their mean over the training set, re-normalised.

    Typical ReID embeddings (after a ReLU) all lie in one orthant, so every pair has a cosine
    similarity well above 0; the student's features pass a BatchNorm and are centred. Centring the
    teacher makes the two similarity structures comparable (the relational term can reach 0).
    """
    c = feats - feats.mean(0, keepdims=True)
    return (c / np.maximum(np.linalg.norm(c, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def _save_npy(path, array: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.save(f, array)


def relational_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of the off-diagonal cosine similarities of two (N, *) batches."""
    s, t = F.normalize(student, dim=1), F.normalize(teacher, dim=1)
    n = s.shape[0]
    if n < 2:
        return student.sum() * 0.0
    off = ~torch.eye(n, dtype=torch.bool, device=s.device)
    return ((s @ s.t() - t @ t.t())[off] ** 2).mean()


class DistillLoss(nn.Module):
    """``loss(student_embedding (N, Ds), teacher_embedding (N, Dt)) -> (total, {"feat", "rel"})``."""

    def __init__(self, student_dim: int, teacher_dim: int, weight_feat: float = 1.0, weight_rel: float = 1.0):
        super().__init__()
        if weight_feat < 0 or weight_rel < 0:
            raise ValueError(f"distillation weights must be >= 0, got {weight_feat}, {weight_rel}")
        self.weight_feat, self.weight_rel = float(weight_feat), float(weight_rel)
        self.proj = nn.Linear(student_dim, teacher_dim, bias=False)

    def forward(self, student: torch.Tensor, teacher: torch.Tensor):
        teacher = teacher.to(student.dtype)
        zero = student.sum() * 0.0
        feat = (1.0 - F.cosine_similarity(self.proj(F.normalize(student, dim=1)), teacher, dim=1)).mean() \
            if self.weight_feat > 0 else zero
        rel = relational_loss(student, teacher) if self.weight_rel > 0 else zero
        total = self.weight_feat * feat + self.weight_rel * rel
        return total, {"feat": float(feat.detach()), "rel": float(rel.detach())}

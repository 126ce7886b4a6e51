"""Losses of the multi-task network (Section III-C): ``L = L_id + lambda_attr * L_attr + lambda_trip * L_trip``.

- ``L_id``: softmax cross-entropy (optional label smoothing) of each identity classifier, summed
  over the three identity features f_I^G, f_I^U, f_I^L (eq. 2-3).
- ``L_attr = L_attr^G + L_attr^U + L_attr^L`` (eq. 4): per body part, binary attributes use
  sigmoid BCE (eq. 6) and multi-class groups (age, colours) a softmax cross-entropy over the
  group's columns; never labels > 1 inside BCE. Target ``-1`` (unknown, e.g. an identity with no
  colour labelled) is ignored. Each part term is the mean over its labelled (image, attribute)
  pairs (``attr_reduction="mean"``, default) or, as written in eq. 6, the sum over attributes of
  the per-attribute mean over images (``attr_reduction="sum"``).
- ``L_trip``: batch-hard triplet loss (eq. 8-10, Euclidean distance, margin 1.2), summed over the
  two verification features f_V^G and f_V^P; each term is the mean over anchors.

Ablation switches (Table 8): ``use_id_loss=False`` (Ours-woID), ``use_attr_loss=False``
(Ours-woAttr), ``identification=False`` (Ours-woIM: neither L_id nor L_attr),
``verification=False`` (Ours-woVM: no L_trip).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from reid.schema import PARTS, AttributeSchema


def pairwise_euclidean(x: torch.Tensor) -> torch.Tensor:
    """(N, d) -> (N, N) Euclidean distances, with a gradient-safe sqrt (0 on the diagonal)."""
    sq = (x * x).sum(1)
    d2 = (sq[:, None] + sq[None, :] - 2.0 * x @ x.t()).clamp_min(0.0)
    return torch.sqrt(d2 + 1e-12) * (d2 > 0)


def batch_hard_triplet_loss(feats: torch.Tensor, pids: torch.Tensor, margin: float = 1.2) -> torch.Tensor:
    """Batch-hard triplet loss (Hermans et al. 2017; paper eq. 8-10), vectorised.

    feats (N, d), pids (N,) -> scalar: mean over anchors of
    ``relu(max_{p: same id} D(a,p) - min_{n: other id} D(a,n) + margin)``.
    An anchor with no other image of its identity uses D(a,a) = 0 as its hardest positive;
    anchors with no negative in the batch are skipped (0 when none has one).
    """
    dist = pairwise_euclidean(feats)                       # (N, N)
    same = pids[:, None] == pids[None, :]                  # (N, N) bool
    hardest_pos = (dist * same).amax(1)                    # (N,)
    inf = torch.finfo(dist.dtype).max
    hardest_neg = dist.masked_fill(same, inf).amin(1)      # (N,)
    has_neg = (~same).any(1)
    if not bool(has_neg.any()):
        return feats.sum() * 0.0
    losses = F.relu(hardest_pos - hardest_neg + margin)
    return losses[has_neg].mean()


def attribute_part_loss(logits: torch.Tensor, targets: torch.Tensor, schema: AttributeSchema,
                        groups: tuple[int, ...], reduction: str = "mean") -> torch.Tensor:
    """Attribute loss of some groups. logits (N, num_outputs), targets (N, num_groups) int64, -1 = missing.

    Binary group: BCE with logits on its column. Multi-class group: cross-entropy over its columns.
    ``reduction="mean"``: mean over all labelled (image, group) pairs; ``"sum"``: sum over groups
    of each group's mean over labelled images. 0 when nothing is labelled.
    """
    slices = schema.group_slices()
    terms, counts = [], []
    for gi in groups:
        g, s, t = schema.groups[gi], slices[gi], targets[:, gi]
        valid = t >= 0
        n = int(valid.sum())
        if n == 0:
            continue
        if g.is_binary:
            loss = F.binary_cross_entropy_with_logits(logits[valid, s.start], t[valid].to(logits.dtype),
                                                      reduction="sum")
        else:
            loss = F.cross_entropy(logits[valid, s.start:s.stop], t[valid], reduction="sum")
        terms.append(loss)
        counts.append(n)
    if not terms:
        return logits.sum() * 0.0
    if reduction == "sum":
        return sum(term / n for term, n in zip(terms, counts))
    return sum(terms) / sum(counts)


class MultiTaskLoss(nn.Module):
    """``loss_fn(outputs: ReIDTrainOutput, pids (N,) int64, attr_targets (N, G) int64 | None)``
    -> ``(total, {"id": float, "attr": float, "trip": float})``. See the module docstring."""

    def __init__(self, schema: AttributeSchema | None, lambda_attr: float = 1.0, lambda_trip: float = 1.0,
                 margin: float = 1.2, label_smoothing: float = 0.0, use_id_loss: bool = True,
                 use_attr_loss: bool = True, identification: bool = True, verification: bool = True,
                 attr_reduction: str = "mean"):
        super().__init__()
        if attr_reduction not in ("mean", "sum"):
            raise ValueError(f"attr_reduction must be 'mean' or 'sum', got {attr_reduction!r}")
        self.schema = schema
        self.lambda_attr, self.lambda_trip, self.margin = float(lambda_attr), float(lambda_trip), float(margin)
        self.label_smoothing = float(label_smoothing)
        self.use_id = bool(use_id_loss and identification)
        self.use_attr = bool(use_attr_loss and identification and schema is not None and schema.num_groups)
        self.use_trip = bool(verification)
        self.attr_reduction = attr_reduction

    def id_loss(self, outputs, pids: torch.Tensor) -> torch.Tensor:
        if not outputs.id_logits:
            raise ValueError("the model has no identity classifiers (num_ids=0): build it with num_ids > 0 "
                             "or train with use_id_loss=False")
        return sum(F.cross_entropy(lo, pids, label_smoothing=self.label_smoothing) for lo in outputs.id_logits)

    def attr_loss(self, outputs, attr_targets: torch.Tensor) -> torch.Tensor:
        if attr_targets.shape != (outputs.attr_logits.shape[0], self.schema.num_groups):
            raise ValueError(f"attr_targets must be (N, {self.schema.num_groups}) int64, got "
                             f"{tuple(attr_targets.shape)}")
        return sum(attribute_part_loss(outputs.attr_logits, attr_targets, self.schema,
                                       self.schema.part_groups(part), self.attr_reduction) for part in PARTS)

    def trip_loss(self, outputs, pids: torch.Tensor) -> torch.Tensor:
        return (batch_hard_triplet_loss(outputs.f_vg, pids, self.margin)
                + batch_hard_triplet_loss(outputs.f_vp, pids, self.margin))

    def forward(self, outputs, pids: torch.Tensor, attr_targets: torch.Tensor | None = None):
        zero = outputs.f_vg.sum() * 0.0
        l_id = self.id_loss(outputs, pids) if self.use_id else zero
        l_attr = zero
        if self.use_attr and attr_targets is not None:
            l_attr = self.attr_loss(outputs, attr_targets.to(outputs.attr_logits.device).long())
        l_trip = self.trip_loss(outputs, pids) if self.use_trip else zero
        total = l_id + self.lambda_attr * l_attr + self.lambda_trip * l_trip
        return total, {"id": float(l_id.detach()), "attr": float(l_attr.detach()), "trip": float(l_trip.detach())}

"""Losses of the multi-task network (Section III-C): ``L = L_id + lambda_attr * L_attr + lambda_trip * L_trip``.

- ``L_id``: softmax cross-entropy (optional label smoothing) of each identity classifier, summed
  over the identity features f_I^G, f_I^U, f_I^L (and f_I^P when the model has it) (eq. 2-3).
- ``L_attr = L_attr^G + L_attr^U + L_attr^L`` (eq. 4): per body part, binary attributes use
  sigmoid BCE (eq. 6) and multi-class groups (age, colours) a softmax cross-entropy over the
  group's columns; never labels > 1 inside BCE. Target ``-1`` (unknown, e.g. an identity with no
  colour labelled) is ignored. Each part term is the mean over its labelled (image, attribute)
  pairs (``attr_reduction="mean"``, default) or, as written in eq. 6, the sum over attributes of
  the per-attribute mean over images (``attr_reduction="sum"``). When the model's global head
  predicts all attributes (``attr_logits_global``), ``L_attr^G`` covers all of them (eq. 6: "all m
  attribute classes"); a model with f_I^P adds ``L_attr^P`` on its head's attributes.
- Class imbalance (``attr_weighting="frequency"``, :func:`attribute_loss_weights`): with p_j the
  positive ratio of binary attribute j in the training set, a positive label weighs
  ``exp(1 - p_j)`` and a negative one ``exp(p_j)`` (Li et al., "Multi-attribute learning for
  pedestrian attribute recognition", ACPR 2015); a multi-class group's class k of training
  frequency f_k weighs ``1 / (K f_k)`` (K classes seen in training; 1 on average over the
  training labels), clipped to ``MAX_CLASS_WEIGHT``. ``attr_weighting="balanced"``: the same without
  the clipping (class-balanced cross-entropy: every class of a group weighs the same in total, as the
  balanced accuracy mA counts them). Each weighted term keeps the same normaliser (number of
  labelled pairs) as the unweighted one. ``attr_weighting_groups`` ({group: weighting}, e.g. ``{"age":
  "balanced"}``) weighs the named groups their own way and the others as ``attr_weighting`` says
  (:func:`group_label_weights`).
- ``L_trip``: batch-hard triplet loss (eq. 8-10, Euclidean distance, margin 1.2), summed over the
  two verification features f_V^G and f_V^P; each term is the mean over anchors.

Ablation switches (Table 8): ``use_id_loss=False`` (Ours-woID), ``use_attr_loss=False``
(Ours-woAttr), ``identification=False`` (Ours-woIM: neither L_id nor L_attr),
``verification=False`` (Ours-woVM: no L_trip).
"""
from __future__ import annotations

from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from reid.schema import PARTS, AttributeSchema

ATTR_WEIGHTINGS = ("none", "frequency", "balanced")
MAX_CLASS_WEIGHT = 10.0


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


def attribute_frequencies(targets, schema: AttributeSchema) -> torch.Tensor:
    """Training label frequency of each output column (num_outputs,) float64 from targets (N, G)
    (-1 = unlabelled, ignored): a binary column holds its positive ratio p_j, a multi-class group's
    columns the share of each class among the group's labelled samples (0 when none is labelled)."""
    t = torch.as_tensor(targets, dtype=torch.int64).reshape(-1, schema.num_groups)
    freq = torch.zeros(schema.num_outputs, dtype=torch.float64)
    for j, (g, s) in enumerate(zip(schema.groups, schema.group_slices())):
        col = t[:, j][t[:, j] >= 0]
        if len(col):
            counts = torch.bincount(col, minlength=max(2, g.num_outputs)).double()
            freq[s] = (counts[1:2] if g.is_binary else counts) / len(col)
    return freq


def class_weight_cap(weighting: str) -> float:
    """The largest multi-class weight of ``attr_weighting`` (``frequency``: clipped; ``balanced``: not)."""
    return MAX_CLASS_WEIGHT if weighting == "frequency" else float("inf")


def attribute_loss_weights(freq: torch.Tensor, schema: AttributeSchema,
                           max_class_weight: float = MAX_CLASS_WEIGHT) -> torch.Tensor:
    """(2, num_outputs) label weights from :func:`attribute_frequencies`: row 0 the weight of a
    positive label (binary: exp(1 - p_j); multi-class: the class weight min(1 / (K f_k),
    max_class_weight), 1 for classes never seen), row 1 of a negative binary label (exp(p_j); 1 for
    multi-class columns, unused)."""
    freq = torch.as_tensor(freq, dtype=torch.float64)
    w = torch.ones(2, schema.num_outputs, dtype=torch.float64)
    for g, s in zip(schema.groups, schema.group_slices()):
        f = freq[s]
        if g.is_binary:
            w[0, s], w[1, s] = torch.exp(1.0 - f), torch.exp(f)
        else:
            seen = f > 0
            w[0, s] = torch.where(seen, (1.0 / (int(seen.sum()) * f.clamp_min(1e-12))).clamp(max=max_class_weight),
                                  torch.ones_like(f))
    return w


def check_group_weighting(schema: AttributeSchema, groups: Mapping[str, str] | None) -> dict[str, str]:
    """``groups`` ({group name: weighting}) checked against the schema's groups and :data:`ATTR_WEIGHTINGS`."""
    groups = dict(groups or {})
    unknown = sorted(set(groups) - set(schema.group_names))
    if unknown:
        raise ValueError(f"attr_weighting_groups: unknown attribute groups {unknown}; the schema "
                         f"{schema.name!r} has {', '.join(schema.group_names)}")
    bad = {k: v for k, v in groups.items() if v not in ATTR_WEIGHTINGS}
    if bad:
        raise ValueError(f"attr_weighting_groups: weightings must be one of {ATTR_WEIGHTINGS}, got {bad}")
    return groups


def group_label_weights(freq: torch.Tensor, schema: AttributeSchema, weighting: str,
                        groups: Mapping[str, str] | None = None) -> torch.Tensor:
    """(2, num_outputs) label weights (as :func:`attribute_loss_weights`): each group weighted as
    ``groups`` names it ({group: weighting}) or else as ``weighting`` (``none``: all 1)."""
    groups = check_group_weighting(schema, groups)
    w = torch.ones(2, schema.num_outputs, dtype=torch.float64)
    for kind in sorted({weighting, *groups.values()} - {"none"}):
        full = attribute_loss_weights(freq, schema, class_weight_cap(kind))
        for g, s in zip(schema.groups, schema.group_slices()):
            if groups.get(g.name, weighting) == kind:
                w[:, s] = full[:, s]
    return w


def _group_loss(logits: torch.Tensor, t: torch.Tensor, g, s: slice, weights: torch.Tensor | None) -> torch.Tensor:
    """Summed loss of one group over labelled rows: logits (n, num_outputs), targets t (n,)."""
    if g.is_binary:
        y = t.to(logits.dtype)
        if weights is None:
            return F.binary_cross_entropy_with_logits(logits[:, s.start], y, reduction="sum")
        w = torch.where(t == 1, weights[0, s.start], weights[1, s.start])                     # (n,)
        return F.binary_cross_entropy_with_logits(logits[:, s.start], y, weight=w.to(logits.dtype),
                                                  reduction="sum")
    w = None if weights is None else weights[0, s.start:s.stop].to(logits.dtype)
    return F.cross_entropy(logits[:, s.start:s.stop], t, weight=w, reduction="sum")


def attribute_part_loss(logits: torch.Tensor, targets: torch.Tensor, schema: AttributeSchema,
                        groups: tuple[int, ...], reduction: str = "mean",
                        weights: torch.Tensor | None = None) -> torch.Tensor:
    """Attribute loss of some groups. logits (N, num_outputs), targets (N, num_groups) int64, -1 = missing.

    Binary group: BCE with logits on its column. Multi-class group: cross-entropy over its columns.
    ``reduction="mean"``: mean over all labelled (image, group) pairs; ``"sum"``: sum over groups
    of each group's mean over labelled images. 0 when nothing is labelled. ``weights``: (2,
    num_outputs) label weights (:func:`attribute_loss_weights`) or None (all 1).
    """
    slices = schema.group_slices()
    weights = None if weights is None else weights.to(logits.device)
    terms, counts = [], []
    for gi in groups:
        t = targets[:, gi]
        valid = t >= 0
        n = int(valid.sum())
        if n == 0:
            continue
        terms.append(_group_loss(logits[valid], t[valid], schema.groups[gi], slices[gi], weights))
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
                 attr_reduction: str = "mean", attr_weighting: str = "none", attr_freq=None,
                 attr_weighting_groups: Mapping[str, str] | None = None):
        super().__init__()
        if attr_reduction not in ("mean", "sum"):
            raise ValueError(f"attr_reduction must be 'mean' or 'sum', got {attr_reduction!r}")
        if attr_weighting not in ATTR_WEIGHTINGS:
            raise ValueError(f"attr_weighting must be one of {ATTR_WEIGHTINGS}, got {attr_weighting!r}")
        self.schema = schema
        self.lambda_attr, self.lambda_trip, self.margin = float(lambda_attr), float(lambda_trip), float(margin)
        self.label_smoothing = float(label_smoothing)
        self.use_id = bool(use_id_loss and identification)
        self.use_attr = bool(use_attr_loss and identification and schema is not None and schema.num_groups)
        self.use_trip = bool(verification)
        self.attr_reduction = attr_reduction
        self.attr_weighting = attr_weighting
        self.attr_weighting_groups = check_group_weighting(schema, attr_weighting_groups) if schema is not None else {}
        self.attr_freq: torch.Tensor | None = None
        self.register_buffer("attr_weights", None, persistent=False)
        if self.use_attr and {attr_weighting, *self.attr_weighting_groups.values()} != {"none"}:
            if attr_freq is None:
                raise ValueError(f"attr_weighting={attr_weighting!r} (groups: {self.attr_weighting_groups}) needs "
                                 "attr_freq: the training set's label frequencies (reid.losses.attribute_frequencies)")
            self.set_frequencies(attr_freq)

    def set_frequencies(self, freq) -> None:
        """Use training label frequencies ``freq`` (num_outputs,) (see :func:`attribute_frequencies`)."""
        freq = torch.as_tensor(freq, dtype=torch.float64).flatten()
        if freq.shape != (self.schema.num_outputs,):
            raise ValueError(f"attr_freq must have {self.schema.num_outputs} values, got {tuple(freq.shape)}")
        self.attr_freq = freq
        self.attr_weights = group_label_weights(freq, self.schema, self.attr_weighting,
                                                self.attr_weighting_groups).float()

    def id_loss(self, outputs, pids: torch.Tensor) -> torch.Tensor:
        if not outputs.id_logits:
            raise ValueError("the model has no identity classifiers (num_ids=0): build it with num_ids > 0 "
                             "or train with use_id_loss=False")
        return sum(F.cross_entropy(lo, pids, label_smoothing=self.label_smoothing) for lo in outputs.id_logits)

    def attr_loss(self, outputs, attr_targets: torch.Tensor) -> torch.Tensor:
        if attr_targets.shape != (outputs.attr_logits.shape[0], self.schema.num_groups):
            raise ValueError(f"attr_targets must be (N, {self.schema.num_groups}) int64, got "
                             f"{tuple(attr_targets.shape)}")
        return sum(attribute_part_loss(logits, attr_targets, self.schema, groups, self.attr_reduction,
                                       self.attr_weights) for logits, groups in self.attr_terms(outputs))

    def attr_terms(self, outputs) -> list[tuple[torch.Tensor, tuple[int, ...]]]:
        """(logits (N, num_outputs), groups) of each term: G, U, L (Table 1) and P (f_I^P's head)."""
        every = tuple(range(self.schema.num_groups))
        full_global = getattr(outputs, "attr_logits_global", None)
        terms = [(outputs.attr_logits if full_global is None else full_global,
                  self.schema.part_groups("global") if full_global is None else every)]
        terms += [(outputs.attr_logits, self.schema.part_groups(p)) for p in PARTS if p != "global"]
        part = getattr(outputs, "attr_logits_part", None)
        if part is not None:
            terms.append((part, terms[0][1]))
        return terms

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

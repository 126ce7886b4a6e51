"""Small building blocks of the multi-task head: FC features, classifiers, attribute probabilities."""
from __future__ import annotations

import torch
from torch import nn

from reid.schema import PARTS, AttributeSchema

GLOBAL_ATTRIBUTES = ("global", "all")   # what the global attribute head predicts (model option)


class FCFeature(nn.Sequential):
    """One of the paper's fully connected features: Linear(C -> d, no bias) + BatchNorm1d(d).

    (N, C) pooled map -> (N, d). The BatchNorm keeps the concatenated features on a
    comparable scale for matching (a "BNNeck"-like normalisation).
    """

    def __init__(self, in_channels: int, dim: int):
        fc = nn.Linear(in_channels, dim, bias=False)
        if in_channels == dim:      # start as the identity: keeps a pretrained ReID backbone's feature
            nn.init.eye_(fc.weight)
        else:
            nn.init.kaiming_normal_(fc.weight, mode="fan_out")
        bn = nn.BatchNorm1d(dim)
        super().__init__(fc, bn)


def classifier(dim: int, num_classes: int) -> nn.Linear:
    layer = nn.Linear(dim, num_classes)
    nn.init.normal_(layer.weight, std=0.001)
    nn.init.zeros_(layer.bias)
    return layer


def head_columns(schema: AttributeSchema, global_attributes: str = "global",
                 part_whole: bool = False) -> dict[str, tuple[int, ...]]:
    """Output columns (into ``schema.num_outputs``) each attribute classifier predicts.

    ``global``/``upper``/``lower``: the paper's Table 1 parts; with ``global_attributes="all"`` the
    global head predicts every column (eq. 6 sums over all m attributes). ``part`` (the part
    branch's whole-map feature f_I^P, with ``part_whole``) predicts the same columns as the global
    head. Heads with no column are left out."""
    if global_attributes not in GLOBAL_ATTRIBUTES:
        raise ValueError(f"global_attributes must be one of {GLOBAL_ATTRIBUTES}, got {global_attributes!r}")
    cols = {p: schema.part_indices(p) for p in PARTS}
    if global_attributes == "all":
        cols["global"] = tuple(range(schema.num_outputs))
    if part_whole:
        cols["part"] = cols["global"]
    return {k: v for k, v in cols.items() if v}


class AttributeHeads(nn.Module):
    """Attribute classifiers (see :func:`head_columns`): global from f_I^G, upper from f_I^U, lower
    from f_I^L, optionally one on f_I^P. ``forward`` returns the Table-1 routed logits (N, num_outputs)
    in the schema's column order: each column from the head of its own body part."""

    def __init__(self, schema: AttributeSchema | None, dim: int, global_attributes: str = "global",
                 part_whole: bool = False):
        super().__init__()
        self.schema = schema
        self.heads = nn.ModuleDict()
        self.columns = head_columns(schema, global_attributes, part_whole) if schema is not None else {}
        for name, idx in self.columns.items():
            self.heads[name] = classifier(dim, len(idx))
        cols: list[int] = []
        for part in PARTS:
            if part in self.columns:
                own = schema.part_indices(part)
                pos = torch.tensor([self.columns[part].index(c) for c in own], dtype=torch.long)
                self.register_buffer(f"own_{part}", pos, persistent=False)  # head outputs of its own part
                cols.extend(own)
        # inverse permutation: column j of the output = column inv[j] of cat(global, upper, lower)
        inv = torch.empty(len(cols), dtype=torch.long)
        inv[torch.tensor(cols, dtype=torch.long)] = torch.arange(len(cols))
        self.register_buffer("inverse", inv, persistent=False)
        self.num_outputs = len(cols)

    def _own(self, part: str, logits: torch.Tensor) -> torch.Tensor:
        pos = getattr(self, f"own_{part}")
        return logits if len(pos) == logits.shape[1] else logits[:, pos]

    def forward(self, feats: dict[str, torch.Tensor]) -> torch.Tensor:
        """feats: {"global": f_I^G, "upper": f_I^U, "lower": f_I^L}, each (N, d) -> (N, num_outputs)."""
        return self.route({p: self.heads[p](feats[p]) for p in PARTS if p in self.heads}, feats["global"])

    def route(self, head_logits: dict[str, torch.Tensor], like: torch.Tensor) -> torch.Tensor:
        """Table-1 routed (N, num_outputs) logits from each head's own logits (N, len(columns[head]))."""
        if not self.num_outputs:
            return like.new_zeros((like.shape[0], 0))
        logits = torch.cat([self._own(p, head_logits[p]) for p in PARTS if p in self.heads], dim=1)
        return logits[:, self.inverse]

    def full(self, name: str, logits: torch.Tensor) -> torch.Tensor:
        """Head ``name``'s logits (N, k) placed in its columns of an (N, num_outputs) tensor (0 elsewhere)."""
        cols = self.columns[name]
        if len(cols) == self.num_outputs:
            return logits
        out = logits.new_zeros((logits.shape[0], self.num_outputs))
        return out.index_copy(1, torch.tensor(cols, dtype=torch.long, device=logits.device), logits)


def attribute_probs(logits: torch.Tensor, schema: AttributeSchema | None) -> torch.Tensor:
    """(N, num_outputs) logits -> probabilities: sigmoid for binary columns, softmax per multi-class group."""
    if schema is None or logits.shape[1] == 0:
        return logits.new_zeros((logits.shape[0], 0)) if schema is None else torch.sigmoid(logits)
    pieces = []
    for g, s in zip(schema.groups, schema.group_slices()):
        block = logits[:, s.start:s.stop]
        pieces.append(torch.sigmoid(block) if g.is_binary else torch.softmax(block, dim=1))
    return torch.cat(pieces, dim=1)

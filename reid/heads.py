"""Small building blocks of the multi-task head: FC features, classifiers, attribute probabilities."""
from __future__ import annotations

import torch
from torch import nn

from reid.schema import PARTS, AttributeSchema


class FCFeature(nn.Sequential):
    """One of the paper's fully connected features: Linear(C -> d, no bias) + BatchNorm1d(d).

    (N, C) pooled map -> (N, d). The BatchNorm keeps the five concatenated features on a
    comparable scale for matching (a "BNNeck"-like normalisation).
    """

    def __init__(self, in_channels: int, dim: int):
        fc = nn.Linear(in_channels, dim, bias=False)
        nn.init.kaiming_normal_(fc.weight, mode="fan_out")
        bn = nn.BatchNorm1d(dim)
        super().__init__(fc, bn)


def classifier(dim: int, num_classes: int) -> nn.Linear:
    layer = nn.Linear(dim, num_classes)
    nn.init.normal_(layer.weight, std=0.001)
    nn.init.zeros_(layer.bias)
    return layer


class AttributeHeads(nn.Module):
    """Attribute classifiers of the three parts (Table 1): global from f_I^G, upper from f_I^U,
    lower from f_I^L. Returns logits (N, num_outputs) in the schema's column order."""

    def __init__(self, schema: AttributeSchema | None, dim: int):
        super().__init__()
        self.schema = schema
        self.heads = nn.ModuleDict()
        cols: list[int] = []
        if schema is not None:
            for part in PARTS:
                idx = schema.part_indices(part)
                if idx:
                    self.heads[part] = classifier(dim, len(idx))
                    cols.extend(idx)
        # inverse permutation: column j of the output = column inv[j] of cat(global, upper, lower)
        inv = torch.empty(len(cols), dtype=torch.long)
        inv[torch.tensor(cols, dtype=torch.long)] = torch.arange(len(cols))
        self.register_buffer("inverse", inv, persistent=False)
        self.num_outputs = len(cols)

    def forward(self, feats: dict[str, torch.Tensor]) -> torch.Tensor:
        """feats: {"global": f_I^G, "upper": f_I^U, "lower": f_I^L}, each (N, d) -> (N, num_outputs)."""
        any_feat = feats["global"]
        if not self.num_outputs:
            return any_feat.new_zeros((any_feat.shape[0], 0))
        logits = torch.cat([self.heads[p](feats[p]) for p in PARTS if p in self.heads], dim=1)
        return logits[:, self.inverse]


def attribute_probs(logits: torch.Tensor, schema: AttributeSchema | None) -> torch.Tensor:
    """(N, num_outputs) logits -> probabilities: sigmoid for binary columns, softmax per multi-class group."""
    if schema is None or logits.shape[1] == 0:
        return logits.new_zeros((logits.shape[0], 0)) if schema is None else torch.sigmoid(logits)
    pieces = []
    for g, s in zip(schema.groups, schema.group_slices()):
        block = logits[:, s.start:s.stop]
        pieces.append(torch.sigmoid(block) if g.is_binary else torch.softmax(block, dim=1))
    return torch.cat(pieces, dim=1)

"""Cross-camera association settings (see pipeline/association.py)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class AssociationConfig:
    enabled: bool = True               # false: each camera's ids are kept separate
    threshold: float = 0.5             # stop merging clusters above this fused distance
    linkage: str = "average"           # average | single | complete
    attribute_weight: float = 0.2      # weight of attribute disagreement in the fused distance
    rerank: bool = False               # k-reciprocal re-ranking of the appearance distances
    rerank_k1: int = 20
    rerank_k2: int = 6
    rerank_lambda: float = 0.3
    min_tracklet_length: int = 5       # shorter tracklets are handled per `short_tracklets`
    short_tracklets: str = "keep"      # keep | drop | flag
    topology: Optional[str] = None     # camera topology YAML (allowed transitions, travel times)

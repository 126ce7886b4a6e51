"""Cross-camera association settings (see pipeline/association.py).

Short tracklets (``n_boxes < min_tracklet_length``) and tracklets without appearance features
are handled per ``short_tracklets``:

- ``keep``:  clustered like any other tracklet.
- ``flag``:  clustered like any other tracklet, and marked ``flagged`` in the result.
- ``merge``: flagged; kept out of the clustering of the long tracklets (their noisy features
  never bridge two people), then each is attached to the nearest identity within
  ``threshold`` that no constraint forbids, or gets an identity of its own.
- ``drop``:  flagged and given global id 0 (no identity; writers skip them).

Same-camera pairs: two tracklets of one camera that overlap in time are never one person. Those
that do not (a person leaving and re-entering the view, or a track broken by an occlusion) may be
joined only when their own fused distance is within ``same_camera_threshold``, usually stricter
than ``threshold``: within one view the tracker has already linked what motion can link, so a
wrong re-entry merge costs identity switches, and a cross-camera cluster must not bridge two
different people seen by the same camera. How strict depends on the ReID model and the scene:
on PETS09-S2L1 (one camera, default botsort tracker, shipped model) the association's same-camera
joins are mostly wrong (people in similar dark clothes): IDF1 55.4 with the default, 60.4 with 0.1,
66.7 with 0 (no same-camera joins); on the two-camera sample cross-camera IDF1 52.9 -> 64.1
with 0 (bench/multicam_pets.py); on MARS with OpenVINO 0286 a strict value splits people whose
tracklets are consecutive pieces of one track (0.2: completeness 0.98 -> 0.83), and 0 would also
stop a person who leaves a camera and comes back from keeping one id. So the default is off; set
0 (or a small value) for one camera with a weak model.
With the tracklets' first and last boxes known, a join of two tracklets of one camera also needs
a possible move between them: at most ``max_speed`` box heights per second plus ``speed_slack``
heights (pipeline/assoc_constraints.py).

A tracklet with no appearance features can never be matched: it is flagged and gets its own identity
(or id 0 with ``drop``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

LINKAGES = ("average", "single", "complete")
APPEARANCE_MODES = ("mean", "pairwise_mean", "topk")
SHORT_POLICIES = ("keep", "flag", "merge", "drop")


@dataclass(frozen=True)
class AssociationConfig:
    enabled: bool = True               # false: every tracklet is its own identity
    threshold: float = 0.45            # stop merging clusters above this fused distance
    same_camera_threshold: Optional[float] = None  # two tracklets of one camera may share an identity
    #                                    only within this fused distance (re-entry; null: threshold)
    max_speed: Optional[float] = 2.0   # same camera: no join that needs a faster move (box heights / s)
    speed_slack: float = 1.0           # ... plus this many box heights (null max_speed: no limit)
    linkage: str = "average"           # average | single | complete
    appearance: str = "mean"           # mean: cosine of the weighted mean features;
    #                                    pairwise_mean: mean cosine over all gallery pairs;
    #                                    topk: mean of the topk best gallery pairs (slower)
    topk: int = 3                      # pairs averaged by appearance=topk
    attribute_weight: float = 0.2      # fused = (1 - w) * appearance + w * attribute disagreement
    rerank: bool = False               # k-reciprocal re-ranking of appearance (for ~50+ tracklets; retune threshold)
    rerank_k1: int = 20
    rerank_k2: int = 6
    rerank_lambda: float = 0.3
    min_tracklet_length: int = 5       # fewer boxes than this: a short tracklet
    short_tracklets: str = "keep"      # keep | flag | merge | drop (see module docstring)
    topology: Optional[str] = None     # camera topology YAML (see pipeline/topology.py)

    def __post_init__(self):
        for name, value, valid in (("linkage", self.linkage, LINKAGES),
                                   ("appearance", self.appearance, APPEARANCE_MODES),
                                   ("short_tracklets", self.short_tracklets, SHORT_POLICIES)):
            if value not in valid:
                raise ValueError(f"association.{name} must be one of {', '.join(valid)}, got {value!r}")
        if not 0.0 <= self.attribute_weight <= 1.0:
            raise ValueError(f"association.attribute_weight must be in [0, 1], got {self.attribute_weight}")
        if self.threshold < 0:
            raise ValueError(f"association.threshold must be >= 0, got {self.threshold}")
        if self.same_camera_threshold is not None and self.same_camera_threshold < 0:
            raise ValueError(f"association.same_camera_threshold must be >= 0 or null, got "
                             f"{self.same_camera_threshold}")
        if (self.max_speed is not None and self.max_speed < 0) or self.speed_slack < 0:
            raise ValueError(f"association.max_speed and speed_slack must be >= 0, got {self.max_speed}, "
                             f"{self.speed_slack}")
        if self.topk < 1 or self.rerank_k1 < 1 or self.rerank_k2 < 1:
            raise ValueError("association.topk, rerank_k1 and rerank_k2 must be >= 1")
        if not 0.0 <= self.rerank_lambda <= 1.0:
            raise ValueError(f"association.rerank_lambda must be in [0, 1], got {self.rerank_lambda}")

"""Cross-camera association settings (see pipeline/association/associate.py).

Two stages turn tracklets into identities:

1. **Linking** consecutive tracklets (``link_window`` > 0): each tracklet's end is matched to at most
   one later start (one-to-one, Hungarian style) when the gap is short: at most
   ``same_camera_window`` seconds within one camera (a track the tracker broke), at most
   ``link_window`` seconds between cameras (a handoff), the appearance distance is within
   ``link_threshold`` and the move is possible (``max_speed``; between cameras the entry and exit
   zones learned from the run's own links, ``zones``). Time proximity is strong evidence, so this stage
   accepts looser appearance than the next one. With ``mutual_links`` (off by default), an end and a
   start of two cameras left unlinked that are each other's nearest candidate are linked further out,
   up to the 5 % quantile of the free negatives (relative evidence: a degraded camera moves one
   person's two views apart; linking.py step 6). With ``handoff_geometry``, an end and a start of two
   cameras left unlinked whose move (exit to entry foot point) and gap fit where and when that camera
   pair's confident links hand off are linked up to ``handoff_quantile`` of the free negatives
   (pipeline/association/handoffs.py: only for camera pairs whose handoffs keep to one place and time).
   With ``insert_links``, a tracklet (or a chain of them) left unlinked that a link skips (a -> c, where
   a -> b is within the link threshold and b -> c within ``handoff_quantile``: the one-to-one matching
   prefers one strong link to two where one is weak) goes back in between, a -> b -> c (linking.py step 5).
   Where two views overlap (``overlap_geometry``), tracklets seen at the same time whose foot points
   agree under a floor homography learned from the run join the same chain group, and those whose
   foot points disagree never share an identity (pipeline/association/overlap.py). With
   ``overlap_link_check`` no link joins a tracklet to one of the other camera that its partner there (the
   same person, by the floor) cannot be: a person still seen by the other view is not the one who appears
   in it while they walk on.
2. **Clustering** the linked chains (constrained agglomerative, ``linkage``) up to ``threshold``: people
   seen again after a longer absence, or in overlapping views at the same time. Two tracklets of one
   camera never share an identity unless their own distance is within ``same_camera_threshold``
   (stricter: a wrong re-entry merge costs identity switches in that camera). A number set there also
   caps the linking within one camera (0: one camera's tracklets never join); ``auto`` links a
   broken track at the link threshold, as its short gap and possible move are evidence too.

Thresholds ``auto`` are calibrated on the run itself (pipeline/association/calibration.py): two
tracklets of one camera that overlap in time are different people, so their distances are free
negatives, and each threshold is a low quantile of them (``link_quantile``, ``merge_quantile``): the
fraction of known different-people pairs the stage would accept (the clustering's is also capped at
half their 10 % quantile: a run has few such pairs, so its 1 % quantile is noisy); the same-camera
threshold is ``same_camera_ratio`` times the clustering's: one view's crowd holds look-alikes (PETS09-S2L1:
different people seen minutes apart at 0.06-0.13 while the clustering threshold is 0.28), so a person
who comes back into one view is joined by appearance only when nearly identical (or through a chain of
links and other cameras).
This follows the ReID model and the footage; a number overrides it (``same_camera_threshold: null``:
no limit of its own, the clustering's ``threshold`` decides).

Short tracklets (``n_boxes < min_tracklet_length``) and tracklets without appearance features
are handled per ``short_tracklets``:

- ``keep``:  linked and clustered like any other tracklet.
- ``flag``:  the same, and marked ``flagged`` in the result.
- ``merge``: flagged; kept out of linking and clustering (their noisy features never bridge two
  people), then each is attached to the nearest identity within ``threshold`` that no constraint
  forbids, or gets an identity of its own.
- ``drop``:  flagged and given global id 0 (no identity; writers skip them).

A tracklet with no appearance features can never be matched: it is flagged and gets its own identity
(or id 0 with ``drop``). A tracklet whose one feature is its fallback crop's (``reid.every_track``: none of
its crops passed the embedding policy) is flagged and, under every policy, handled like ``merge``: attached
to the nearest identity after the clustering, never a bridge between two.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

LINKAGES = ("average", "single", "complete")
APPEARANCE_MODES = ("mean", "pairwise_mean", "topk")
SHORT_POLICIES = ("keep", "flag", "merge", "drop")
AUTO = "auto"


def _check_threshold(name: str, value, nullable: bool = False) -> None:
    if value is None and nullable:
        return
    if isinstance(value, str):
        if value != AUTO:
            raise ValueError(f"association.{name} must be a number or 'auto', got {value!r}")
    elif value is None or value < 0:
        raise ValueError(f"association.{name} must be >= 0 or 'auto'{' or null' if nullable else ''}, "
                         f"got {value}")


@dataclass(frozen=True)
class AssociationConfig:
    enabled: bool = True               # false: every tracklet is its own identity
    threshold: Union[float, str] = AUTO  # clustering stops above this fused distance (auto: calibrated)
    same_camera_threshold: Optional[Union[float, str]] = AUTO  # one camera's tracklets share an
    #                                    identity only within this distance (auto: calibrated; null: no own limit)
    link_threshold: Union[float, str] = AUTO  # linking of consecutive tracklets (auto: calibrated)
    link_quantile: float = 0.10        # auto link_threshold: this quantile of the free negative distances
    merge_quantile: float = 0.01       # auto threshold
    same_camera_ratio: float = 0.15    # auto same_camera_threshold = this x threshold (re-entries into one
    #                                    view join only when nearly identical: crowds hold look-alikes)
    link_window: float = 10.0          # longest gap (s) linked between cameras (0: no linking stage)
    same_camera_window: float = 3.0    # longest gap (s) linked within one camera
    mutual_links: bool = False         # also link unlinked ends and starts of two cameras that are each other's
    #                                    nearest candidate (margin 0.02), below the 5 % quantile of the free
    #                                    negatives (linking.py step 6): for cameras that degrade images (bench/mtmc.py
    #                                    6 Dec: mean +1.4 over 16 footages), off by default: where people leave and
    #                                    enter often it links strangers (MARS timeline 6 of 7 wrong; README)
    zones: bool = False                # learn entry/exit zones per camera pair from the run's links (off:
    #                                    on degraded views the learned sides refuse true handoffs, bench/mtmc.py)
    handoff_geometry: bool = True      # link free ends and starts of two cameras whose move and gap fit that
    #                                    camera pair's confident handoffs (handoffs.py; bench/mtmc.py 7 Dec:
    #                                    mean +2.1 over 18 footages, none lower; 28 of 28 added links right)
    handoff_quantile: float = 0.25     # ... up to this quantile of the free negative distances
    insert_links: bool = True          # a tracklet (or chain) left free that a link skips goes back in between when it
    #                                    follows the link's start within the link threshold and leads to its
    #                                    end within the handoff_quantile limit (linking.py step 5)
    overlap_geometry: bool = True      # overlapping views: foot points that agree / disagree under a
    #                                    floor homography learned from the run (overlap.py)
    overlap_motion: bool = True        # ... found from co-visibility and motion when appearance gives no seeds
    overlap_link_check: bool = True    # ... no link from a tracklet to one of the other camera that its overlap
    #                                    partner there cannot be (associate.with_partner_conflicts; bench/mtmc.py
    #                                    7 Dec: EPFL low resolution 81.2 -> 87.9, gamma 76.2 -> 78.1, 36 of 38 equal)
    overlap_one_to_one: bool = True    # ... pairs agree by one-to-one matching over time (false: the 2x rival-ratio test)
    max_speed: Optional[float] = 2.0   # same camera: no join that needs a faster move (box heights / s)
    speed_slack: float = 1.0           # ... plus this many box heights (null max_speed: no limit)
    linkage: str = "average"           # average | single | complete
    appearance: str = "mean"           # mean: cosine of the weighted mean features;
    #                                    pairwise_mean: mean cosine over all gallery pairs;
    #                                    topk: mean of the topk best gallery pairs (slower)
    topk: int = 3                      # pairs averaged by appearance=topk
    quality_weights: bool = True       # weight gallery features by crop quality (false: equal weights)
    camera_centre: bool = False        # move each camera's mean feature to the overall mean (colour / light bias)
    camera_normalise: bool = False     # remove each camera pair's median distance (bias) before anything
    camera_pair_scale: bool = True     # divide a camera pair's distances by (their median over the free
    #                                    negatives' median)^2 when above (degraded cameras; distance.camera_pair_scale;
    #                                    bench/mtmc.py 6 Dec: mean +1.7 over 16 footages, none below -0.4)
    attribute_weight: float = 0.2      # fused = (1 - w) * appearance + w * attribute disagreement
    attribute_reliability: bool = False  # weight attribute groups by how much they differ between
    #                                    known different people (free negatives)
    rerank: bool = False               # k-reciprocal re-ranking of appearance (for ~50+ tracklets)
    rerank_k1: int = 20
    rerank_k2: int = 6
    rerank_lambda: float = 0.3
    refine: bool = False               # after clustering, move tracklets to a closer identity (constraints kept)
    min_tracklet_length: int = 5       # fewer boxes than this: a short tracklet
    short_tracklets: str = "keep"      # keep | flag | merge | drop (see module docstring)
    topology: Optional[str] = None     # camera topology YAML (see pipeline/association/topology.py)

    def __post_init__(self):
        for name, value, valid in (("linkage", self.linkage, LINKAGES),
                                   ("appearance", self.appearance, APPEARANCE_MODES),
                                   ("short_tracklets", self.short_tracklets, SHORT_POLICIES)):
            if value not in valid:
                raise ValueError(f"association.{name} must be one of {', '.join(valid)}, got {value!r}")
        if not 0.0 <= self.attribute_weight <= 1.0:
            raise ValueError(f"association.attribute_weight must be in [0, 1], got {self.attribute_weight}")
        _check_threshold("threshold", self.threshold)
        _check_threshold("same_camera_threshold", self.same_camera_threshold, nullable=True)
        _check_threshold("link_threshold", self.link_threshold)
        if not 0.0 < self.handoff_quantile < 1.0:
            raise ValueError(f"association.handoff_quantile must be in (0, 1), got {self.handoff_quantile}")
        for name in ("link_quantile", "merge_quantile", "same_camera_ratio"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"association.{name} must be in [0, 1], got {getattr(self, name)}")
        if self.link_window < 0 or self.same_camera_window < 0:
            raise ValueError(f"association.link_window and same_camera_window must be >= 0 seconds, got "
                             f"{self.link_window}, {self.same_camera_window}")
        if (self.max_speed is not None and self.max_speed < 0) or self.speed_slack < 0:
            raise ValueError(f"association.max_speed and speed_slack must be >= 0, got {self.max_speed}, "
                             f"{self.speed_slack}")
        if self.topk < 1 or self.rerank_k1 < 1 or self.rerank_k2 < 1:
            raise ValueError("association.topk, rerank_k1 and rerank_k2 must be >= 1")
        if not 0.0 <= self.rerank_lambda <= 1.0:
            raise ValueError(f"association.rerank_lambda must be in [0, 1], got {self.rerank_lambda}")
        if self.min_tracklet_length < 0:
            raise ValueError(f"association.min_tracklet_length must be >= 0 boxes, got {self.min_tracklet_length}")

"""Thresholds calibrated on the run itself: no threshold tuned for one ReID model or one scene.

Free negatives: two tracklets of one camera that overlap in time are two different people (and,
with a topology, two tracklets of cameras whose views do not overlap, at the same time). Their
distances show how close two different people look to this model in this footage. Each ``auto``
threshold is a low quantile of them: ``link_quantile`` = the fraction of known different-people pairs
the linking stage would accept, ``merge_quantile`` the same for the clustering, capped at the middle
between the positive and negative medians (below). A run has only a few hundred such pairs, so their 1 %
quantile is one of the smallest few values and swings with chance (on the two-camera sample, 0.17 with one
detector and 0.33 with another for the same ReID model, when the tightest co-visible pair happens to be
two people who look alike or not); the clustering threshold is therefore also capped at ``TAIL_RATIO``
times the 10 % quantile, a stable statistic of the same pairs. The same-camera threshold is
``same_camera_ratio`` times the clustering's (stronger evidence within one view). With fewer than ``MIN_NEGATIVES`` such pairs, all pairs
of tracklets stand in for them (most pairs are different people; the few same-person pairs only
make the low quantiles stricter); with fewer still, the ``FALLBACK`` values are used.

Free positives: the two halves of one tracklet's gallery (alternate features) are one person. They
are not used to place thresholds (views of one track are closer than a handoff's), but reported as
the separation of the model: the share of free negatives below the positives' median.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

from pipeline.association.config import AUTO, AssociationConfig
from pipeline.tracklet import Tracklet

MIN_NEGATIVES = 20
MAX_NEGATIVES = 200_000
FALLBACK = {"link": 0.3, "merge": 0.2}
QUANTILES = (0.01, 0.05, 0.10, 0.50)     # negative quantiles reported (and used by linking's mutual links;
#                                          the config's handoff_quantile is added)
SOURCE_ALL = "all pairs (too few overlapping)"
SOURCE_FALLBACK = "fixed fallback (too few tracklets to calibrate)"
TAIL_QUANTILE, TAIL_RATIO = 0.10, 0.5     # auto clustering threshold <= TAIL_RATIO x this quantile


@dataclass(frozen=True)
class Calibration:
    link_threshold: float
    threshold: float
    same_camera_threshold: float
    negatives: int                   # free negative pairs used
    source: str                      # where the negatives came from
    negative_quantiles: dict         # {"q01": .., "q05": .., "q10": .., "q50": ..}
    positive_median: float | None    # median distance between gallery halves (None: too few)
    separation: float | None         # share of negatives below positive_median (0 = perfect)
    middle: float | None             # halfway between the positive and negative medians (caps every auto)

    def known_negative_quantile(self, q: float) -> float | None:
        """The ``q`` quantile (one of QUANTILES or the config's handoff_quantile) of the known
        different-people distances; None when the calibration had none (all pairs or the fixed fallback
        stood in for them)."""
        if self.source in (SOURCE_ALL, SOURCE_FALLBACK):
            return None
        return self.negative_quantiles[quantile_key(q)]

    def as_dict(self) -> dict:
        """JSON-friendly: floats rounded, infinite ones (no limit) as None."""
        return {k: (None if isinstance(v, float) and not np.isfinite(v) else round(v, 4) if isinstance(v, float)
                    else v) for k, v in asdict(self).items()}


def quantile_key(q: float) -> str:
    """Key of the ``q`` quantile in ``Calibration.negative_quantiles``: 0.05 -> "q05"."""
    return f"q{int(round(q * 100)):02d}"


def gallery_half_distances(tracklets: Sequence[Tracklet], min_size: int = 4) -> np.ndarray:
    """(P,) cosine distance between the weighted means of the even and odd gallery entries of each
    tracklet with at least ``min_size`` features (free positives: one person, one view)."""
    out = []
    for t in tracklets:
        if not t.has_features or t.features.shape[0] < min_size:
            continue
        f = t.features.astype(np.float64)
        w = t.weights if t.weights.shape[0] == len(f) else np.ones(len(f))
        a, b = (np.einsum("kd,k->d", f[k::2], np.maximum(w[k::2], 1e-6)) for k in (0, 1))
        out.append(1.0 - a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))
    return np.clip(np.array(out, np.float32), 0.0, 2.0)


def negative_distances(dist: np.ndarray, pairs: tuple[np.ndarray, np.ndarray], cross: bool = False,
                       seed: int = 0) -> tuple[np.ndarray, str]:
    """Finite distances of the free negative ``pairs`` (i, j) (at most MAX_NEGATIVES, sampled), or of
    all pairs when too few, and their source."""
    i, j = pairs
    source = "tracklets overlapping in time" + ("" if cross else " (same camera)")
    vals = dist[i, j]
    vals = vals[np.isfinite(vals)]
    if len(vals) < MIN_NEGATIVES:
        iu, ju = np.triu_indices(len(dist), 1)
        if len(iu) > MAX_NEGATIVES:
            pick = np.random.default_rng(seed).choice(len(iu), MAX_NEGATIVES, replace=False)
            iu, ju = iu[pick], ju[pick]
        vals = dist[iu, ju]
        vals = vals[np.isfinite(vals)]
        source = SOURCE_ALL
    elif len(vals) > MAX_NEGATIVES:
        vals = np.random.default_rng(seed).choice(vals, MAX_NEGATIVES, replace=False)
    return vals.astype(np.float64), source


def _pick(setting, quantile: float, neg: np.ndarray, fallback: float, cap: float = np.inf) -> float:
    if setting != AUTO:
        return float(setting)
    if len(neg) < MIN_NEGATIVES:
        return fallback
    return float(min(np.quantile(neg, quantile), cap))


def calibrate(dist: np.ndarray, pairs: tuple[np.ndarray, np.ndarray], cfg: AssociationConfig,
              positives: np.ndarray | None = None, cross: bool = False) -> Calibration:
    """Thresholds of ``cfg`` with every ``auto`` replaced by its calibrated value.

    ``dist`` (T, T) fused distances (inf: no features); ``pairs`` (i, j) the free negative pairs
    (:func:`pipeline.association.constraints.overlapping_pairs`; ``cross``: they include pairs of
    cameras that never see one person at once); ``positives`` free positive distances.
    """
    neg, source = negative_distances(dist, pairs, cross)
    if len(neg) < MIN_NEGATIVES:
        source = SOURCE_FALLBACK
    pos_med = float(np.median(positives)) if positives is not None and len(positives) >= 3 else None
    middle = (pos_med + float(np.median(neg))) / 2 if pos_med is not None and len(neg) else np.inf
    tail_cap = TAIL_RATIO * float(np.quantile(neg, TAIL_QUANTILE)) if len(neg) else np.inf
    merge = _pick(cfg.threshold, cfg.merge_quantile, neg, FALLBACK["merge"], min(middle, tail_cap))
    link = _pick(cfg.link_threshold, cfg.link_quantile, neg, FALLBACK["link"], middle)
    if cfg.same_camera_threshold is None:
        same = np.inf                                             # no check of its own: the clustering's
    elif cfg.same_camera_threshold == AUTO:
        same = cfg.same_camera_ratio * merge                      # stronger evidence within one view
    else:
        same = float(cfg.same_camera_threshold)
    qs = sorted({*QUANTILES, cfg.handoff_quantile})
    quant = {quantile_key(q): round(float(np.quantile(neg, q)), 4) for q in qs} if len(neg) else {}
    sep = float((neg < pos_med).mean()) if pos_med is not None and len(neg) else None
    return Calibration(link, merge, same, int(len(neg)), source, quant, pos_med, sep,
                       None if not np.isfinite(middle) else float(middle))

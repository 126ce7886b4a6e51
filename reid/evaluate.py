"""ReID evaluation protocols on top of :class:`reid.ReIDEncoder` (any model it loads).

- ``evaluate_split``: features of query and gallery images, Euclidean distances of the
  L2-normalised features (same ranking as cosine), optional k-reciprocal re-ranking, CMC / mAP
  with the Market-1501 protocol and per-attribute accuracy on the labelled gallery images.
- ``evaluate_dataset``: one data set by name; ``viper`` averages the 10 seeded random splits
  (features are computed once), ``mars`` ranks tracklets (mean feature per tracklet), ``peta``
  scores attributes only, on the held-out identities (``holdout``, default
  :data:`reid.data.peta.PETA_HOLDOUT`). With ``trained_on`` (the checkpoint's training sources,
  :mod:`reid.data.overlap`) a VIPeR split or PETA part holding training identities is refused.

Attributes are reported as accuracy and as mA (mean of the per-class recalls, see
:func:`reid.metrics.attribute_accuracy`), per attribute and averaged.

Results are plain dicts with percentages (``rank1``, ``rank5``, ``rank10``, ``mAP``) ready for JSON.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from core.errors import UserError
from reid.metrics import attribute_accuracy, evaluate_rank
from reid.rerank import k_reciprocal_rerank

log = logging.getLogger(__name__)

VIPER_SPLITS = 10


@dataclass(frozen=True)
class RerankParams:
    enabled: bool = False
    k1: int = 20
    k2: int = 6
    lambda_value: float = 0.3


def read_image(path: str) -> np.ndarray:
    """BGR uint8 image; a clear error when the file cannot be read."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise UserError(f"cannot read image {path} (missing or not an image)")
    return img


def extract_features(encoder, paths: Sequence[str], batch_size: int = 64,
                     progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Features (N, D) float32 L2-normalised and attribute probabilities (N, A) of image files."""
    feats, attrs = [], []
    starts = range(0, len(paths), batch_size)
    if progress:
        from tqdm import tqdm
        starts = tqdm(starts, desc="features", unit="batch", leave=False)
    for a in starts:
        f, p = encoder.embed([read_image(x) for x in paths[a:a + batch_size]])
        feats.append(np.asarray(f, np.float32))
        attrs.append(np.asarray(p, np.float32))
    if not feats:
        f, p = encoder.embed([])
        return np.asarray(f, np.float32), np.asarray(p, np.float32)
    return np.concatenate(feats), np.concatenate(attrs)


def euclidean_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, D), (M, D) L2-normalised -> (N, M) float32 Euclidean distance sqrt(2 - 2 cos)."""
    return np.sqrt(np.maximum(2.0 - 2.0 * (a @ b.T), 0.0)).astype(np.float32)


def rank_scores(q_feat: np.ndarray, g_feat: np.ndarray, q_pids, g_pids, q_camids, g_camids,
                rerank: RerankParams = RerankParams(), max_rank: int = 50) -> tuple[dict, np.ndarray]:
    """CMC / mAP of features; returns ({"rank1", "rank5", "rank10", "mAP", "cmc"} in %, distmat)."""
    distmat = euclidean_distance(q_feat, g_feat)                            # (Q, G)
    if rerank.enabled:
        distmat = k_reciprocal_rerank(distmat, euclidean_distance(q_feat, q_feat),
                                      euclidean_distance(g_feat, g_feat), k1=rerank.k1, k2=rerank.k2,
                                      lambda_value=rerank.lambda_value)
    cmc, mAP = evaluate_rank(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=max_rank)
    cmc = 100.0 * cmc.astype(np.float64)
    out = {"rank1": float(cmc[0]), "rank5": float(cmc[min(4, len(cmc) - 1)]),
           "rank10": float(cmc[min(9, len(cmc) - 1)]), "mAP": 100.0 * float(mAP),
           "cmc": [round(float(c), 4) for c in cmc]}
    return out, distmat


def gallery_attribute_scores(probs: np.ndarray, gallery, schema, attribute_names: Sequence[str]) -> dict | None:
    """Attribute accuracy (%) on labelled gallery images (distractors / junk omitted), or None.

    None when the model predicts no attributes, the data set has none, or the model's
    attribute outputs are not the data set's schema (e.g. an external model).
    """
    if schema is None or probs.shape[1] == 0:
        return None
    keep = np.array([s.pid > 0 and s.attrs is not None for s in gallery], dtype=bool)
    if not keep.any():
        return None
    targets = np.stack([gallery[i].attrs for i in np.flatnonzero(keep)])
    if tuple(attribute_names) != tuple(schema.output_names):
        mapped = _map_to_model_schema(targets, schema, attribute_names)
        if mapped is None:
            log.info("model attributes do not match the %s schema: attribute accuracy skipped", schema.name)
            return None
        targets, schema = mapped
    acc = attribute_accuracy(probs[keep], targets, schema)
    return {"mean": 100.0 * acc["mean"], "ma": 100.0 * acc["ma"],
            "per_attribute": {k: 100.0 * v for k, v in acc["per_attribute"].items()},
            "per_attribute_ma": {k: 100.0 * v for k, v in acc["per_attribute_ma"].items()},
            "counts": acc["counts"], "num_images": int(keep.sum())}


def _map_to_model_schema(targets: np.ndarray, schema, attribute_names: Sequence[str]):
    """Targets of a data set's schema expressed in the shared 'common' schema when the model
    predicts that schema (e.g. the default checkpoint evaluated on VIPeR); else None."""
    from reid.data.schemas import COMMON, TO_COMMON, to_common

    if tuple(attribute_names) != tuple(COMMON.output_names) or schema.name not in TO_COMMON:
        return None
    return to_common(targets, schema), COMMON


def _labels(samples) -> tuple[np.ndarray, np.ndarray]:
    return (np.array([s.pid for s in samples], dtype=np.int64),
            np.array([s.camid for s in samples], dtype=np.int64))


def evaluate_split(encoder, data, *, rerank: RerankParams = RerankParams(), batch_size: int = 64,
                   features: dict | None = None, progress: bool = False) -> tuple[dict, dict]:
    """Evaluate one query/gallery split of a ReIDData.

    ``features`` optionally caches path -> (feature, attributes) across calls (VIPeR splits).
    Returns (scores dict in %, arrays {"distmat", "g_attrs"} for visualisation).
    """
    if not data.query or not data.gallery:
        raise UserError(f"{data.name}: the evaluation needs query and gallery images "
                        f"(got {len(data.query)} query, {len(data.gallery)} gallery)")
    q_feat, _ = _features_for(encoder, data.query, batch_size, features, progress)
    g_feat, g_attr = _features_for(encoder, data.gallery, batch_size, features, progress)
    q_pids, q_cams = _labels(data.query)
    g_pids, g_cams = _labels(data.gallery)
    try:
        scores, distmat = rank_scores(q_feat, g_feat, q_pids, g_pids, q_cams, g_cams, rerank)
    except ValueError as exc:
        raise UserError(f"{data.name}: {exc}") from None
    scores["attributes"] = gallery_attribute_scores(g_attr, data.gallery, data.schema,
                                                    encoder.attribute_names)
    scores["num_query"], scores["num_gallery"] = len(data.query), len(data.gallery)
    return scores, {"distmat": distmat, "g_attrs": g_attr}


def _features_for(encoder, samples, batch_size, cache, progress):
    paths = [s.path for s in samples]
    if cache is None:
        return extract_features(encoder, paths, batch_size, progress)
    todo = [p for p in dict.fromkeys(paths) if p not in cache]
    if todo:
        f, a = extract_features(encoder, todo, batch_size, progress)
        cache.update({p: (f[i], a[i]) for i, p in enumerate(todo)})
    return (np.stack([cache[p][0] for p in paths]), np.stack([cache[p][1] for p in paths]))


def average_splits(results: list[dict]) -> dict:
    """Mean (and standard deviation) of per-split scores; attribute accuracies averaged too."""
    out = {}
    for key in ("rank1", "rank5", "rank10", "mAP"):
        vals = np.array([r[key] for r in results])
        out[key], out[key + "_std"] = float(vals.mean()), float(vals.std())
    out["cmc"] = [round(float(c), 4) for c in np.mean([r["cmc"] for r in results], axis=0)]
    attrs = [r["attributes"] for r in results if r.get("attributes")]
    out["attributes"] = None
    if attrs:
        out["attributes"] = {"mean": float(np.mean([a["mean"] for a in attrs])),
                             "ma": float(np.mean([a["ma"] for a in attrs])),
                             "per_attribute": _mean_per_name([a["per_attribute"] for a in attrs]),
                             "per_attribute_ma": _mean_per_name([a["per_attribute_ma"] for a in attrs])}
    out["splits"] = [{k: r[k] for k in ("rank1", "rank5", "rank10", "mAP")} for r in results]
    return out


def _mean_per_name(dicts: list[dict]) -> dict:
    names = sorted({k for d in dicts for k in d})
    return {n: float(np.mean([d[n] for d in dicts if n in d])) for n in names}


def evaluate_attributes(encoder, data, *, batch_size: int = 64, progress: bool = False) -> tuple[dict, dict]:
    """Attribute-only protocol: accuracy and mA on the labelled ``gallery`` images (PETA: the
    held-out identities). Returns (scores, {"g_attrs"})."""
    if not data.gallery:
        raise UserError(f"{data.name}: no test images to score attributes on; for PETA hold identities out "
                        "with --option holdout=0.1 (a fraction in (0, 1))")
    _, g_attr = extract_features(encoder, [s.path for s in data.gallery], batch_size, progress)
    attrs = gallery_attribute_scores(g_attr, data.gallery, data.schema, encoder.attribute_names)
    if attrs is None:
        raise UserError(f"{data.name}: the model predicts no attributes of the {data.schema.name if data.schema else '-'} "
                        "schema (nor of the shared 'common' schema), so there is nothing to score")
    return {"attributes": attrs, "num_query": 0, "num_gallery": len(data.gallery)}, {"g_attrs": g_attr}


def pool_tracklets(samples, feats: np.ndarray) -> tuple[list, np.ndarray]:
    """Mean L2-normalised feature per tracklet (pid, camid, tracklet id).

    Returns (one representative Sample per tracklet, (T, D) features), in first-seen order.
    """
    groups: dict[tuple, list[int]] = {}
    for i, s in enumerate(samples):
        groups.setdefault((s.pid, s.camid, s.tracklet), []).append(i)
    reps = [samples[idx[0]] for idx in groups.values()]
    pooled = np.stack([feats[idx].mean(axis=0) for idx in groups.values()]) if groups else feats[:0]
    pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
    return reps, pooled.astype(np.float32)


def evaluate_tracklets(encoder, data, *, rerank: RerankParams = RerankParams(), batch_size: int = 64,
                       progress: bool = False) -> tuple[dict, dict]:
    """Tracklet retrieval (MARS protocol): query and gallery tracklets ranked by mean feature."""
    if not data.query or not data.gallery:
        raise UserError(f"{data.name}: the evaluation needs query and gallery tracklets")
    q_img, q_att = extract_features(encoder, [s.path for s in data.query], batch_size, progress)
    g_img, g_att = extract_features(encoder, [s.path for s in data.gallery], batch_size, progress)
    q_reps, q_feat = pool_tracklets(data.query, q_img)
    g_reps, g_feat = pool_tracklets(data.gallery, g_img)
    q_pids, q_cams = _labels(q_reps)
    g_pids, g_cams = _labels(g_reps)
    try:
        scores, distmat = rank_scores(q_feat, g_feat, q_pids, g_pids, q_cams, g_cams, rerank)
    except ValueError as exc:
        raise UserError(f"{data.name}: {exc}") from None
    scores["attributes"] = None
    scores["num_query"], scores["num_gallery"] = len(q_reps), len(g_reps)
    scores["num_query_images"], scores["num_gallery_images"] = len(data.query), len(data.gallery)
    return scores, {"distmat": distmat, "query": q_reps, "gallery": g_reps,
                    "images": list(data.query) + list(data.gallery),
                    "image_features": np.concatenate([q_img, g_img]),
                    "image_attributes": np.concatenate([q_att, g_att])}


def evaluate_dataset(encoder, name: str, root: str, *, options: dict | None = None,
                     rerank: RerankParams = RerankParams(), batch_size: int = 64,
                     progress: bool = False, trained_on: list | None = None) -> tuple[dict, object, dict]:
    """Evaluate ``encoder`` on data set ``name`` under its protocol.

    ``trained_on``: the model's training sources (:func:`reid.data.overlap.checkpoint_training`);
    a VIPeR split or held-out PETA part with any of its training identities is a UserError.
    Returns (scores with a "protocol" entry, the ReIDData of the last split, arrays for
    visualisation of that split).
    """
    from reid.data import build_dataset
    from reid.data.overlap import check_unseen

    options = dict(options or {})
    protocol = {"dataset": name, "distance": "euclidean of L2-normalised features",
                "rerank": ({"k1": rerank.k1, "k2": rerank.k2, "lambda": rerank.lambda_value}
                           if rerank.enabled else None),
                "cmc": "Market-1501 protocol: same id + same camera gallery images dropped, junk ignored"}
    if name == "viper" and "split" not in options:
        splits = [build_dataset("viper", root, split=split, **options) for split in range(VIPER_SPLITS)]
        for data in splits:
            check_unseen(trained_on or [], name, data)
        cache: dict = {}
        results = []
        for split, data in enumerate(splits):
            scores, arrays = evaluate_split(encoder, data, rerank=rerank, batch_size=batch_size,
                                            features=cache, progress=progress)
            results.append(scores)
            log.info("viper split %d: rank-1 %.2f mAP %.2f", split, scores["rank1"], scores["mAP"])
        out = average_splits(results)
        out["num_query"], out["num_gallery"] = results[-1]["num_query"], results[-1]["num_gallery"]
        protocol["splits"] = f"average of {VIPER_SPLITS} seeded random halves (split=0..{VIPER_SPLITS - 1})"
    elif name == "peta":
        from reid.data.peta import PETA_HOLDOUT

        data = build_dataset(name, root, **{"holdout": PETA_HOLDOUT, **options})
        check_unseen(trained_on or [], name, data)
        out, arrays = evaluate_attributes(encoder, data, batch_size=batch_size, progress=progress)
        protocol.update(cmc=None, distance=None, rerank=None, level=(
            f"attributes only, on the {data.info['holdout']:g} held-out identity fraction "
            f"(holdout_seed {data.info['holdout_seed']}) of subsets {', '.join(data.info['subsets'])}"))
    elif name == "mars":
        data = build_dataset(name, root, **options)
        out, arrays = evaluate_tracklets(encoder, data, rerank=rerank, batch_size=batch_size,
                                         progress=progress)
        protocol["level"] = "tracklet (mean of L2-normalised image features)"
    else:
        data = build_dataset(name, root, **options)
        check_unseen(trained_on or [], name, data)
        out, arrays = evaluate_split(encoder, data, rerank=rerank, batch_size=batch_size, progress=progress)
    out["protocol"] = protocol
    out["data"] = data.describe()
    return out, data, arrays

"""Attribute decision thresholds fitted on a checkpoint's own training images.

A binary attribute is decided "yes" when its probability is >= 0.5. For a rare attribute (a hat, a
backpack) that threshold favours "no": the negative recall is high, the positive recall low, and
the label-based metric mA (mean of the two recalls, :func:`reid.metrics.balanced_accuracy`) suffers.
Here each binary attribute gets the logit threshold that maximises its balanced accuracy on the
training images of the checkpoint's recipe (never a test set), stored in the checkpoint's model
config as ``attribute_offsets`` and subtracted from the logits at inference
(:meth:`reid.model.MultiTaskReID.set_attribute_offsets`): every consumer (``eval-reid``,
``mcmt run``'s identities, the search's probabilities, ONNX exports) sees the calibrated
probabilities, and a probability of 0.5 is the fitted threshold. Multi-class groups keep their
arg-max (calibrating them did not help on the held-out PETA identities).

  mcmt calibrate-attributes --checkpoint runs/reid/x/last.pt --out runs/reid/x/calibrated.pt
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from core.errors import UserError
from reid.metrics import balanced_accuracy

log = logging.getLogger(__name__)

MIN_PER_CLASS = 20          # labelled images of each class below which an attribute keeps its threshold
CANDIDATES = 97             # thresholds tried per attribute: quantiles of its logits


def logits_of(probs: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(probs, np.float64), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def fit_offsets(probs: np.ndarray, targets: np.ndarray, schema) -> tuple[np.ndarray, dict]:
    """Logit thresholds (num_outputs,) of the binary attributes (0 elsewhere) from probabilities
    (N, num_outputs) and targets (N, num_groups) (-1 = unlabelled); and per attribute
    {"threshold": probability threshold, "before": / "after": balanced accuracy on these images}."""
    probs, targets = np.asarray(probs), np.asarray(targets)
    if probs.shape != (len(targets), schema.num_outputs) or targets.shape[1:] != (schema.num_groups,):
        raise ValueError(f"fit_offsets: probs {probs.shape} / targets {targets.shape} do not fit schema "
                         f"{schema.name!r} ({schema.num_outputs} outputs, {schema.num_groups} groups)")
    offsets = np.zeros(schema.num_outputs, np.float64)
    report: dict[str, dict] = {}
    for j, (g, sl) in enumerate(zip(schema.groups, schema.group_slices())):
        rows = targets[:, j] >= 0
        y = targets[rows, j]
        if not g.is_binary or min((y == 0).sum(), (y == 1).sum()) < MIN_PER_CLASS:
            continue
        x = logits_of(probs[rows, sl.start])
        cands = np.unique(np.concatenate([[0.0], np.quantile(x, np.linspace(0.01, 0.99, CANDIDATES))]))
        scores = [balanced_accuracy((x >= c).astype(np.int64), y) for c in cands]
        best = float(cands[int(np.argmax(scores))])
        offsets[sl.start] = best
        report[g.name] = {"threshold": round(float(1 / (1 + np.exp(-best))), 4), "images": int(rows.sum()),
                          "before": round(100 * balanced_accuracy((x >= 0).astype(np.int64), y), 2),
                          "after": round(100 * max(scores), 2)}
    return offsets, report


def training_samples(train_config: dict, data_root: str | None, max_images: int, seed: int) -> tuple[list, object]:
    """The attribute-labelled training images of a stored training configuration (seeded subset)."""
    from core.config import from_dict
    from reid.train_config import TrainConfig
    from reid.train_state import load_train_data

    cfg = from_dict(TrainConfig, train_config, "the checkpoint's training configuration")
    data = load_train_data(cfg.data, data_root)
    samples = [s for s in data.train if s.attrs is not None and (np.asarray(s.attrs) >= 0).any()]
    if not samples or data.schema is None:
        raise UserError(f"{data.name}: the training data has no attribute labels to calibrate on")
    if max_images and len(samples) > max_images:
        keep = np.sort(np.random.default_rng(seed).choice(len(samples), max_images, replace=False))
        samples = [samples[i] for i in keep]
    return samples, data.schema


def calibrate_checkpoint(src, dst, *, data_root: str | None = None, max_images: int = 0, seed: int = 0,
                         batch_size: int = 64, progress: bool = False) -> dict:
    """Write ``dst``: checkpoint ``src`` with attribute thresholds fitted on its recipe's training
    images (added to any it had); returns the per-attribute report."""
    from reid.checkpoint import load_checkpoint, update_checkpoint
    from reid.encoder import ReIDEncoder
    from reid.evaluate import extract_features

    src, dst = Path(src), Path(dst)
    model, meta = load_checkpoint(src)
    if model.schema is None or not model.attribute_names:
        raise UserError(f"{src}: the model predicts no attributes; nothing to calibrate")
    if not meta.get("train_config"):
        raise UserError(f"{src}: the checkpoint holds no training configuration, so its training images are "
                        "unknown; calibrate the checkpoint written by 'mcmt train-reid'")
    root = data_root or (meta.get("extra") or {}).get("data_root")
    samples, schema = training_samples(meta["train_config"], root, max_images, seed)
    if tuple(schema.output_names) != tuple(model.attribute_names):
        raise UserError(f"{src}: the training data's attribute schema {schema.name!r} is not the model's")
    enc = ReIDEncoder.from_model(model, meta, device="cpu", batch_size=batch_size)
    _, probs = extract_features(enc, [s.path for s in samples], batch_size, progress)
    targets = np.stack([np.asarray(s.attrs, np.int64) for s in samples])
    offsets, report = fit_offsets(probs, targets, schema)
    total = model.attr_offset.cpu().numpy().astype(np.float64) + offsets
    update_checkpoint(src, dst, model_config={"attribute_offsets": [round(float(v), 6) for v in total]},
                      extra={"attribute_calibration": {"source": src.name, "images": len(samples), "seed": seed,
                                                       "attributes": report}})
    log.info("calibrated %d binary attributes on %d training images -> %s", len(report), len(samples), dst)
    return {"images": len(samples), "attributes": report, "path": str(dst)}

"""Post-hoc logit adjustment of the multi-class attribute groups (age, colours) by their training prior.

The label-based metric mA scores a multi-class group by its balanced accuracy (the mean of the
per-class recalls, :func:`reid.metrics.balanced_accuracy`), which an arg-max over logits that
follow the training label prior does not maximise: rare colours are seldom predicted. Logit
adjustment (Menon et al., "Long-tail learning via logit adjustment", ICLR 2021) predicts
``argmax_k (logit_k - tau * log pi_k)`` instead, with ``pi`` the class prior the classifier learnt.

Our heads are trained with class-weighted cross-entropy (``loss.attr_weighting: frequency``, class
``k`` weighted ``w_k = min(1 / (K f_k), MAX_CLASS_WEIGHT)``, :mod:`reid.losses`), so the prior they
learnt may be the label frequency ``f_k`` (``raw``) or, as the weighting intends, about ``f_k w_k``
(normalised; uniform but for the clipped rare classes: ``effective``); both are tried per group.

``tau`` (per group) and the prior's kind (``raw`` / ``effective``) are chosen on the TRAINING
identities only, out of fold: the heads are retrained with the checkpoint's own recipe on all but
one fold of the training identities (cached trunk maps, minutes each on 2 cores) and predict the
left-out fold; never on an evaluation set. The offsets ``tau * log pi`` are stored in the
checkpoint's model config as ``attribute_offsets`` (added to any there), which the model subtracts
from its logits at inference (:meth:`reid.model.MultiTaskReID.set_attribute_offsets`): ``eval-reid``,
``mcmt run``'s identities and the search all see the adjusted probabilities; weights, the IR files
and so the appearance embedding stay byte-identical.

  python -m reid.logit_adjustment --checkpoint reid/weights/default.pt --out ADJUSTED.pt --data-root ../shared/data

(``--data-root`` spelt as at training time: the trunk cache is keyed by the list of image paths.) Not
applied to the shipped default: out of fold it helps, but on VIPeR it lowers age and on held-out PETA
it does not lift lower_color (reid/MODEL_CARD.md, Limitations).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
from pathlib import Path

import numpy as np

from core.errors import UserError
from reid.metrics import balanced_accuracy

log = logging.getLogger(__name__)

TAUS = tuple(round(0.1 * i, 1) for i in range(0, 31))    # 0 .. 3: tau = 0 keeps the plain arg-max
PRIORS = ("raw", "effective")
MIN_PRIOR = 1e-4                                           # floor of a class never seen in training


def group_priors(freq, schema, kind: str = "effective", weighting: str = "frequency",
                 groups: dict | None = None) -> np.ndarray:
    """(num_outputs,) class prior of each multi-class column (1 on binary columns: no offset).
    ``freq``: training label frequencies (:func:`reid.losses.attribute_frequencies`); ``weighting`` and
    ``groups``: the recipe's ``loss.attr_weighting`` and ``attr_weighting_groups`` (the class weights
    behind the ``effective`` prior)."""
    from reid.losses import group_label_weights

    if kind not in PRIORS:
        raise ValueError(f"prior kind must be one of {PRIORS}, got {kind!r}")
    freq = np.asarray(freq, np.float64)
    weights = group_label_weights(freq, schema, weighting, groups).numpy()[0]
    prior = np.ones(schema.num_outputs, np.float64)
    for g, s in zip(schema.groups, schema.group_slices()):
        if g.is_binary:
            continue
        p = freq[s] * (weights[s] if kind == "effective" else 1.0)
        if p.sum() <= 0:
            continue
        prior[s] = np.maximum(p / p.sum(), MIN_PRIOR)
    return prior


def adjustment_offsets(prior: np.ndarray, schema, taus: dict[str, float]) -> np.ndarray:
    """(num_outputs,) logit offsets ``tau_g * log(prior)`` of the multi-class groups named in ``taus``."""
    out = np.zeros(schema.num_outputs, np.float64)
    for g, s in zip(schema.groups, schema.group_slices()):
        if not g.is_binary and taus.get(g.name):
            out[s] = taus[g.name] * np.log(prior[s])
    return out


def _decode_group(logp: np.ndarray, s: slice, offset: np.ndarray) -> np.ndarray:
    return np.argmax(logp[:, s] - offset[s], axis=1)


def fit_taus(probs: np.ndarray, targets: np.ndarray, schema, prior: np.ndarray,
             taus=TAUS) -> tuple[dict[str, float], dict]:
    """Per multi-class group the ``tau`` of ``taus`` whose adjusted arg-max has the highest balanced
    accuracy on (out-of-fold) probabilities ``probs`` (N, num_outputs) with targets (N, num_groups)
    (-1 unlabelled); ties go to the smallest tau. Returns ({group: tau}, {group: report})."""
    probs, targets = np.asarray(probs, np.float64), np.asarray(targets, np.int64)
    if probs.shape != (len(targets), schema.num_outputs) or targets.shape[1:] != (schema.num_groups,):
        raise ValueError(f"fit_taus: probs {probs.shape} / targets {targets.shape} do not fit schema {schema.name!r}")
    logp = np.log(np.clip(probs, 1e-12, 1.0))
    best, report = {}, {}
    for j, (g, s) in enumerate(zip(schema.groups, schema.group_slices())):
        rows = targets[:, j] >= 0
        if g.is_binary or len(np.unique(targets[rows, j])) < 2:
            continue
        y = targets[rows, j]
        scores = [balanced_accuracy(_decode_group(logp[rows], s, adjustment_offsets(prior, schema, {g.name: t})), y)
                  for t in taus]
        k = int(np.argmax(scores))                           # first maximum: the smallest tau
        best[g.name] = float(taus[k])
        report[g.name] = {"tau": float(taus[k]), "images": int(rows.sum()),
                          "before": round(100 * scores[taus.index(0.0)] if 0.0 in taus else float("nan"), 2),
                          "after": round(100 * scores[k], 2)}
    return best, report


def _fold_of_identity(pids, folds: int, seed: int) -> dict[int, int]:
    ids = np.unique(np.asarray(pids))
    perm = np.random.default_rng(seed).permutation(len(ids))
    return {int(ids[i]): int(r % folds) for r, i in enumerate(perm)}


def out_of_fold_probs(train_config: dict, data_root: str | None, work: Path, folds: int = 4, seed: int = 0,
                      progress: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray, object]:
    """Attribute probabilities of every attribute-labelled training image from heads retrained (the
    stored recipe, its cached trunk maps) without that image's identity: (probs (N, A), targets
    (N, G), training label frequencies (A,), schema). Needs a recipe on an IR trunk (``ir_map``)."""
    import torch
    from torch.utils.data import DataLoader, Subset

    from core.config import from_dict
    from reid.data.sampler import PKSampler
    from reid.train import Trainer
    from reid.train_config import TrainConfig

    cfg_dict = json.loads(json.dumps(train_config))
    cfg_dict.setdefault("eval", {})["enabled"] = False       # never an evaluation set
    cfg = from_dict(TrainConfig, cfg_dict, "the checkpoint's training configuration")
    if not cfg.model.trunk:
        raise UserError("out-of-fold logit adjustment needs a recipe on cached IR trunk maps (model.trunk)")
    probs = targets = freq = schema = None
    for fold in range(folds):
        trainer = Trainer(cfg, data_root=data_root, out_dir=str(work / f"fold{fold}"), progress=progress)
        try:
            samples, ds = trainer.data.train, trainer.dataset
            schema = trainer.model.schema
            fold_of = _fold_of_identity([s.pid for s in samples], folds, seed)
            held = np.array([fold_of[s.pid] == fold for s in samples])
            if probs is None:
                from reid.losses import attribute_frequencies
                targets = np.stack([np.full(schema.num_groups, -1) if s.attrs is None else np.asarray(s.attrs)
                                    for s in samples]).astype(np.int64)
                probs = np.full((len(samples), schema.num_outputs), np.nan, np.float32)
                freq = attribute_frequencies(targets, schema).numpy()
            keep = np.flatnonzero(~held)
            trainer.data = dataclasses.replace(trainer.data, train=[samples[i] for i in keep])  # loss weights
            trainer.loss_fn = trainer._loss(cfg, schema).to(trainer.device)
            trainer.sampler = PKSampler(ds.labels[keep], cfg.data.num_ids, cfg.data.num_instances, seed=cfg.seed)
            trainer.loader = DataLoader(Subset(ds, keep), batch_size=trainer.sampler.batch_size,
                                        sampler=trainer.sampler, drop_last=True, num_workers=0,
                                        generator=trainer.loader_gen)
            log.info("fold %d/%d: training on %d images, predicting %d", fold + 1, folds, len(keep), held.sum())
            trainer.fit()
            model = trainer.model.eval()
            idx = np.flatnonzero(held)
            with torch.inference_mode():
                for a in range(0, len(idx), 512):
                    x = ds.maps[0, idx[a:a + 512]].float()          # view 0: the image itself
                    probs[idx[a:a + 512]] = model(x).attributes.numpy()
        finally:
            trainer.close()
    return probs, targets, freq, schema


def fit_adjustment(probs, targets, freq, schema, taus=TAUS, weighting: str = "frequency",
                   groups: dict | None = None) -> dict:
    """Per multi-class group the prior kind (``raw`` / ``effective``) and the tau with the best
    out-of-fold balanced accuracy (ties: raw, the smaller tau): {"priors": {group: kind}, "taus":
    {group: tau}, "offsets": (num_outputs,), "report": {group: {...}}, "candidates": {kind: {group: after}}}."""
    priors = {kind: group_priors(freq, schema, kind, weighting, groups) for kind in PRIORS}
    fits = {kind: fit_taus(probs, targets, schema, priors[kind], taus) for kind in PRIORS}
    offsets = np.zeros(schema.num_outputs, np.float64)
    kinds, best_taus, report = {}, {}, {}
    for name in fits[PRIORS[0]][0]:
        kind = max(PRIORS, key=lambda k: fits[k][1][name]["after"])     # first maximum: raw
        kinds[name], best_taus[name] = kind, fits[kind][0][name]
        report[name] = {"prior": kind, **fits[kind][1][name]}
        offsets += adjustment_offsets(priors[kind], schema, {name: best_taus[name]})
    return {"priors": kinds, "taus": best_taus, "offsets": offsets, "report": report,
            "candidates": {k: {n: {"tau": r["tau"], "after": r["after"]} for n, r in f[1].items()}
                           for k, f in fits.items()}}


def _with_trunk(train_config: dict, files: dict | None, near: Path, folder: Path) -> dict:
    """The recipe with ``model.trunk`` resolvable here: an exported checkpoint names its IR relative to
    the package; when that is not found, the IR files it carries are written to ``folder`` (the trunk
    cache is keyed by the IR's contents, so the cached maps are found again)."""
    from reid.ir_trunk import resolve_ir_path

    cfg = json.loads(json.dumps(train_config))
    trunk = (cfg.get("model") or {}).get("trunk")
    if not trunk:
        return cfg
    try:
        cfg["model"]["trunk"] = str(resolve_ir_path(trunk, near))
    except UserError:
        if not files:
            raise
        xml = folder / files["name"]
        xml.write_text(files["xml"])
        xml.with_suffix(".bin").write_bytes(files["bin"])
        cfg["model"]["trunk"] = str(xml)
    return cfg


def adjust_checkpoint(src, dst, *, data_root: str | None = None, folds: int = 4, seed: int = 0,
                      work: str | None = None, reuse: bool = False, progress: bool = False) -> dict:
    """Write ``dst``: checkpoint ``src`` with the multi-class logit adjustment fitted out of fold on
    its recipe's training identities (offsets added to any it had; nothing else changes). ``reuse``: take
    the out-of-fold probabilities a previous call left in ``work`` (same folds and seed)."""
    from reid.checkpoint import load_checkpoint, update_checkpoint

    src, dst = Path(src), Path(dst)
    model, meta = load_checkpoint(src)
    if model.schema is None or all(g.is_binary for g in model.schema.groups):
        raise UserError(f"{src}: the model predicts no multi-class attribute; nothing to adjust")
    if not meta.get("train_config"):
        raise UserError(f"{src}: the checkpoint holds no training configuration, so its training images are unknown")
    root = data_root or (meta.get("extra") or {}).get("data_root")
    folder = Path(work) if work else Path("runs/reid/logit_adjustment") / dst.stem
    folder.mkdir(parents=True, exist_ok=True)
    cache = folder / f"out_of_fold-{folds}-{seed}.npz"
    if reuse and cache.is_file():
        with np.load(cache) as z:
            probs, targets, freq = z["probs"], z["targets"], z["freq"]
        schema = model.schema
        log.info("out-of-fold probabilities of %s reused", cache)
    else:
        train_config = _with_trunk(meta["train_config"], meta.get("trunk_files"), src.parent, folder)
        probs, targets, freq, schema = out_of_fold_probs(train_config, root, folder, folds, seed, progress)
        np.savez(cache, probs=probs, targets=targets, freq=freq)
    if tuple(schema.output_names) != tuple(model.attribute_names) or probs.shape[1] != schema.num_outputs:
        raise UserError(f"{src}: the training data's attribute schema {schema.name!r} is not the model's")
    labelled = ~np.isnan(probs).any(axis=1)
    loss = meta["train_config"].get("loss") or {}
    fit = fit_adjustment(probs[labelled], targets[labelled], freq, schema, weighting=loss.get("attr_weighting", "none"),
                         groups=loss.get("attr_weighting_groups"))
    total = model.attr_offset.cpu().numpy().astype(np.float64) + fit["offsets"]
    info = {"source": src.name, "folds": folds, "seed": seed, "priors": fit["priors"], "taus": fit["taus"],
            "groups": fit["report"], "candidates": fit["candidates"]}
    update_checkpoint(src, dst, model_config={"attribute_offsets": [round(float(v), 6) for v in total]},
                      extra={"logit_adjustment": info})
    log.info("logit adjustment (priors %s, taus %s) -> %s", fit["priors"], fit["taus"], dst)
    return {**info, "path": str(dst)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m reid.logit_adjustment", description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True, help="a checkpoint written by 'mcmt train-reid' / export-reid")
    p.add_argument("--out", required=True, help="the adjusted checkpoint to write")
    p.add_argument("--data-root", help="training data folder (default: the one stored in the checkpoint)")
    p.add_argument("--folds", type=int, default=4, help="folds of the training identities (default 4)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--reuse", action="store_true", help="reuse the out-of-fold probabilities left in --work")
    p.add_argument("--work", help="folder of the fold runs (default: runs/reid/logit_adjustment/<OUT's stem>)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    ckpt = "reid/weights/default.pt" if args.checkpoint == "default" else args.checkpoint
    out = adjust_checkpoint(ckpt, args.out, data_root=args.data_root, folds=args.folds, seed=args.seed,
                            work=args.work, reuse=args.reuse)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Evaluate a ReID model: CMC rank-1/5/10, mAP, attribute accuracy, optional re-ranking.

Examples:
  mcmt eval-reid --checkpoint model.pt --dataset market1501 --data-root /data/Market-1501 --rerank
  mcmt eval-reid --checkpoint ../shared/models/osnet_x0_25_msmt17.onnx \\
      --dataset viper --data-root ../shared/data/peta/VIPeR --json viper.json
  mcmt eval-reid --checkpoint model.pt --dataset mars --data-root /data/MARS --visualize vis/

  mcmt eval-reid --checkpoint model.pt --dataset peta --data-root ../shared/data/peta   # attributes only

Protocol: Euclidean distance of L2-normalised features; gallery images of the query's identity
from the query's camera are dropped, junk (pid -1) ignored (Market-1501 protocol); attribute
accuracy and mA (mean of per-class recalls: 50 for a constant answer on a binary attribute) on the
labelled gallery images. viper: average of the 10 seeded random splits (or one with --option
split=N). mars: tracklet retrieval (mean feature per tracklet). peta: attributes of the held-out
identities (--option holdout=F, default 0.1; holdout_seed=S). A checkpoint of ours is refused on a
VIPeR split or PETA part that holds its own training identities (reid/data/overlap.py).
"""
from __future__ import annotations

import logging
import shlex
import sys
import time
from pathlib import Path

from core.atomic import atomic_write_json
from core.device import resolve_device
from core.errors import UserError

log = logging.getLogger(__name__)


def add_arguments(p):
    p.add_argument("--checkpoint", required=True,
                   help="our .pt checkpoint, 'default', an .onnx or an OpenVINO .xml model (or its folder)")
    p.add_argument("--dataset", required=True, help="data set name (market1501, dukemtmc, viper, mars, folder, ...)")
    p.add_argument("--data-root", required=True, metavar="DIR", help="data set folder")
    p.add_argument("--option", metavar="KEY=VALUE", action="append", default=[],
                   help="data set option, e.g. --option split=3 for one VIPeR split (repeatable)")
    p.add_argument("--rerank", action="store_true", help="k-reciprocal re-ranking (Zhong et al. 2017)")
    p.add_argument("--k1", type=int, default=20, help="re-ranking k1 (default 20)")
    p.add_argument("--k2", type=int, default=6, help="re-ranking k2 (default 6)")
    p.add_argument("--lambda", dest="lambda_value", type=float, default=0.3,
                   help="re-ranking weight of the original distance (default 0.3)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default auto)")
    p.add_argument("--embedding", choices=("ir", "heads", "concat"),
                   help="appearance feature of a model on an OpenVINO IR trunk (default: the model's own)")
    p.add_argument("--precision", choices=("auto", "int8", "fp32"), default="auto",
                   help="which IR of a model on an OpenVINO IR trunk runs: auto (its int8 copy when the "
                        "checkpoint carries one), int8, fp32 (the IR as shipped)")
    p.add_argument("--batch-size", type=int, default=64, help="crops per forward pass (default 64)")
    p.add_argument("--json", metavar="FILE", help="also write all numbers to this JSON file")
    p.add_argument("--visualize", metavar="DIR", help="write ranked lists / attribute panels (index.html) here")
    p.add_argument("--num-queries", type=int, default=8, help="queries shown with --visualize (default 8)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def parse_options(items) -> dict:
    """``KEY=VALUE`` strings -> dict, values parsed as YAML scalars (``split=3`` -> 3)."""
    import yaml

    out = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--option {item!r}: expected KEY=VALUE, e.g. --option split=3")
        out[key.strip()] = yaml.safe_load(raw) if raw.strip() else ""
    return out


def format_table(result: dict, model_desc: str) -> str:
    """Human-readable summary of an evaluation result."""
    p = result["protocol"]
    lines = [f"model     {model_desc}",
             f"dataset   {p['dataset']}: {result.get('num_query')} query / {result.get('num_gallery')} gallery"
             + (f" ({p['splits']})" if "splits" in p else "") + (f", {p['level']}" if "level" in p else ""),
             f"rerank    {'k1=%(k1)d k2=%(k2)d lambda=%(lambda)g' % p['rerank'] if p['rerank'] else 'no'}"]
    if "rank1" in result:
        lines += ["", f"{'rank-1':>8} {'rank-5':>8} {'rank-10':>8} {'mAP':>8}",
                  f"{result['rank1']:8.2f} {result['rank5']:8.2f} {result['rank10']:8.2f} {result['mAP']:8.2f}"]
    if "rank1_std" in result:
        lines.append(f"{result['rank1_std']:8.2f} {result['rank5_std']:8.2f} {result['rank10_std']:8.2f} "
                     f"{result['mAP_std']:8.2f}   (std over splits)")
    clus = result.get("clustering")
    if clus:
        lines += ["", f"cross-camera clustering of all tracklets (association threshold {clus['threshold']}): "
                      f"{clus['clusters']} clusters for {clus['identities']} identities",
                  f"  purity {100 * clus['purity']:.2f}  completeness {100 * clus['completeness']:.2f}  "
                  f"pair precision {100 * clus['pair_precision']:.2f} recall {100 * clus['pair_recall']:.2f} "
                  f"F1 {100 * clus['pair_f1']:.2f}"]
    attrs = result.get("attributes")
    if attrs:
        lines += ["", f"attributes on the gallery: mean accuracy {attrs['mean']:.2f}, mA {attrs['ma']:.2f} "
                      "(mA: mean of per-class recalls; 50 = a constant answer on a binary attribute)",
                  f"  {'attribute':24s} {'acc':>6} {'mA':>6}"]
        ma = attrs.get("per_attribute_ma", {})
        lines += [f"  {name:24s} {acc:6.2f} " + (f"{ma[name]:6.2f}" if name in ma else f"{'-':>6}")
                  for name, acc in sorted(attrs["per_attribute"].items())]
        if set(attrs["per_attribute"]) - set(ma):
            lines.append("  (mA '-': only one class labelled in this test set)")
    return "\n".join(lines)


def _write_json(path: str, obj) -> None:
    atomic_write_json(path, obj)


def _visualize(out_dir: str, arrays: dict, data, encoder, num_queries: int) -> None:
    from pipeline.outputs.reid_viz import write_reid_visualizations

    query, gallery = arrays.get("query", data.query), arrays.get("gallery", data.gallery)
    g_attrs = arrays.get("g_attrs")
    names = encoder.attribute_names
    index = write_reid_visualizations(out_dir, arrays["distmat"], query, gallery, num_queries=num_queries,
                                      attr_probs=g_attrs if names else None, attr_names=names,
                                      schema=data.schema if names else None)
    print(f"visualisations: {index}")


def main(args) -> int:
    from reid.data.overlap import checkpoint_training
    from reid.encoder import ReIDEncoder
    from reid.evaluate import RerankParams, evaluate_dataset

    options = parse_options(args.option)
    t0 = time.time()
    encoder = ReIDEncoder.from_checkpoint(args.checkpoint, device=resolve_device(args.device),
                                          batch_size=args.batch_size, embedding=args.embedding,
                                          precision=args.precision)
    rerank = RerankParams(args.rerank, args.k1, args.k2, args.lambda_value)
    trained = checkpoint_training(args.checkpoint)
    result, data, arrays = evaluate_dataset(encoder, args.dataset, args.data_root, options=options,
                                            rerank=rerank, batch_size=args.batch_size,
                                            progress=not args.no_progress, trained_on=trained and trained[0])
    if "image_features" in arrays:          # tracklet data: also cluster them as the pipeline would
        from pipeline.evaluation.clusters import cluster_tracklets

        result["clustering"] = cluster_tracklets(arrays["images"], arrays["image_features"],
                                                 arrays["image_attributes"], encoder.attribute_names)
    desc = f"{encoder.name} ({encoder.dim}-d, input {encoder.input_size[0]}x{encoder.input_size[1]}, " \
           f"{len(encoder.attribute_names)} attribute outputs)"
    print(format_table(result, desc))
    if args.json:
        payload = {k: result[k] for k in ("rank1", "rank5", "rank10", "mAP") if k in result}
        payload.update({k: v for k, v in result.items() if k not in payload})
        payload["model"] = {"checkpoint": str(args.checkpoint), "name": encoder.name, "dim": encoder.dim,
                            "input_size": list(encoder.input_size),
                            "attribute_names": list(encoder.attribute_names)}
        payload["command"] = (shlex.join(["mcmt", *sys.argv[1:]]) if Path(sys.argv[0]).name == "mcmt"
                              else shlex.join(sys.argv))
        payload["seconds"] = round(time.time() - t0, 1)
        _write_json(args.json, payload)
        print(f"wrote {args.json}")
    if args.visualize and "distmat" not in arrays:
        log.warning("--visualize: %s is scored on attributes only; no ranked lists to draw", args.dataset)
    elif args.visualize:
        _visualize(args.visualize, arrays, data, encoder, args.num_queries)
    return 0

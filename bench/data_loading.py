"""Benchmark: ReID training-data throughput (decode + transform) and P x K batch planning.

On real crops from ../shared (PETA subsets by default, or --data market1501-mini), in one run:

  ours         reid.data ImageDataset: cv2 decode + TrainTransform (resize, flip, normalise)
  +erasing     the same with random erasing p=0.5 and 10-px pad-and-crop
  torchvision  PIL decode + torchvision Resize/RandomHorizontalFlip/ToTensor/Normalize (the peer)
  ratio        images/s of ours / torchvision

and the time of one epoch's PKSampler plan for a Market-1501-sized label set (12,936 images,
751 ids, P=32, K=4) against a torchreid-style RandomIdentitySampler written inline (peer).
Single process (workers = 0), best of --repeat.

    python bench/data_loading.py [--n 400] [--size 256 128] [--repeat 3]
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from reid.data import build_dataset  # noqa: E402
from reid.data.image_dataset import ImageDataset  # noqa: E402
from reid.data.sampler import PKSampler  # noqa: E402
from reid.data.transforms import IMAGENET_MEAN, IMAGENET_STD, TrainTransform  # noqa: E402


def best_rate(fn, n: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return n / best


def torchvision_loader(paths, size):
    from PIL import Image
    from torchvision import transforms as T

    tf = T.Compose([T.Resize(size), T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
    return lambda: [tf(Image.open(p).convert("RGB")) for p in paths]


def torchreid_style_plan(pids, p, k, seed):
    """Peer: torchreid's RandomIdentitySampler epoch (python lists, random module)."""
    rng = random.Random(seed)
    index_dic = defaultdict(list)
    for i, pid in enumerate(pids):
        index_dic[int(pid)].append(i)
    batch_idxs_dict = defaultdict(list)
    for pid, idxs in index_dic.items():
        idxs = list(idxs) if len(idxs) >= k else [rng.choice(idxs) for _ in range(k)]
        rng.shuffle(idxs)
        batch = []
        for idx in idxs:
            batch.append(idx)
            if len(batch) == k:
                batch_idxs_dict[pid].append(batch)
                batch = []
    avai, out = list(index_dic), []
    while len(avai) >= p:
        for pid in rng.sample(avai, p):
            out.extend(batch_idxs_dict[pid].pop(0))
            if not batch_idxs_dict[pid]:
                avai.remove(pid)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="peta", choices=["peta", "market1501-mini"])
    ap.add_argument("--n", type=int, default=400, help="images per timing")
    ap.add_argument("--size", type=int, nargs=2, default=(256, 128), metavar=("H", "W"))
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    shared = REPO.parent / "shared" / "data"
    data = (build_dataset("peta", shared / "peta", subsets="GRID,PRID,3DPeS") if args.data == "peta"
            else build_dataset("market1501", shared / "market1501-mini"))
    samples = (data.train * (args.n // len(data.train) + 1))[: args.n]
    size = tuple(args.size)
    rows = []
    for name, tf in (("ours", TrainTransform(size)), ("+erasing", TrainTransform(size, pad=10, random_erasing=0.5))):
        ds = ImageDataset(samples, tf, data.schema.num_groups)
        rows.append((name, best_rate(lambda: [ds[i] for i in range(len(ds))], len(ds), args.repeat)))
    rows.append(("torchvision", best_rate(torchvision_loader([s.path for s in samples], size), len(samples), args.repeat)))
    print(f"data loading, {len(samples)} {args.data} crops -> {size[0]}x{size[1]}, 1 thread, best of {args.repeat}")
    print(f"{'pipeline':12s} {'images/s':>10s}")
    for name, rate in rows:
        print(f"{name:12s} {rate:10.1f}")
    print(f"{'ratio':12s} {rows[0][1] / rows[2][1]:10.2f}  (ours / torchvision)")

    pids = np.random.default_rng(0).integers(0, 751, 12936)
    sampler = PKSampler(pids, 32, 4, seed=0)
    t_ours = 1 / best_rate(lambda: sampler.plan(0), 1, args.repeat)
    t_peer = 1 / best_rate(lambda: torchreid_style_plan(pids, 32, 4, 0), 1, args.repeat)
    print(f"\nP x K plan, 12936 images / 751 ids, P=32 K=4: {sampler.num_batches} batches")
    print(f"{'sampler':12s} {'ms/epoch':>10s}")
    print(f"{'PKSampler':12s} {t_ours * 1e3:10.1f}\n{'torchreid':12s} {t_peer * 1e3:10.1f}")
    print(f"{'ratio':12s} {t_ours / t_peer:10.2f}  (ours / torchreid-style)")


if __name__ == "__main__":
    main()

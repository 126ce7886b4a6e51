"""Throughput of ``ReIDEncoder.embed`` per backbone, with parameter count and FLOPs.

Each of our backbones runs at its default input size (resnet50 384x128, the others 256x128) with
the Market-1501 attribute schema and 751 identities (as trained on Market-1501; classifiers are
not used at inference). External models (Intel OMZ person-reidentification-retail-0286 in
OpenVINO, torchreid OSNet x0.25 in onnxruntime) run as peers, and ``--onnx`` backbones also run
as exported ONNX files in onnxruntime. The last column is the throughput ratio to the first
external peer found (or to the first row). Threads: ``--threads`` for torch, onnxruntime and OpenVINO.

  python bench/reid_encoder.py                        # all backbones + external peers
  python bench/reid_encoder.py --backbones mobilenetv2 resnet18 --batches 5 --threads 2 --onnx resnet18
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from reid import ReIDEncoder  # noqa: E402
from reid.backbones import BACKBONES  # noqa: E402
from reid.checkpoint import save_checkpoint  # noqa: E402
from reid.export import export_onnx  # noqa: E402
from reid.model import build_model  # noqa: E402

SHARED = Path(os.environ.get("MCMT_SHARED", REPO.parent / "shared"))
EXTERNAL = {
    "omz-0286 (OpenVINO)": SHARED / "models/openvino/person-reidentification-retail-0286",
    "osnet_x0_25 (ONNX)": SHARED / "models/osnet_x0_25_msmt17.onnx",
}


def market_schema():
    try:
        from reid.data.schemas import MARKET1501
        return MARKET1501
    except Exception:  # the data package is optional for this benchmark
        return None


def model_flops(model: torch.nn.Module, input_size) -> float:
    """FLOPs (2 x multiply-adds) of one eval forward on a single image."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.eval()(torch.zeros(1, 3, *input_size))
    return float(counter.get_total_flops())


def onnx_params(path: Path) -> float:
    try:
        import onnx
        from onnx import numpy_helper
        proto = onnx.load(str(path))
        return float(sum(numpy_helper.to_array(t).size for t in proto.graph.initializer))
    except Exception:
        return float("nan")


def time_embed(enc: ReIDEncoder, batch: int, batches: int, seed: int = 0) -> float:
    """Crops per second of enc.embed on random crops of varied sizes (after one warm-up batch)."""
    rng = np.random.default_rng(seed)
    crops = [rng.integers(0, 256, (int(rng.integers(120, 300)), int(rng.integers(50, 120)), 3), dtype=np.uint8)
             for _ in range(batch)]
    enc.embed(crops)
    start = time.perf_counter()
    for _ in range(batches):
        enc.embed(crops)
    return batch * batches / (time.perf_counter() - start)


def bench_ours(names, batch, batches, device, tmp: Path, onnx_too=(), threads=0):
    rows = []
    for name in names:
        model = build_model(name, num_ids=751, schema=market_schema(), pretrained="none")
        size = tuple(model.config["input_size"])
        params = sum(p.numel() for p in model.parameters())
        infer_params = params - sum(p.numel() for p in model.id_classifiers.parameters())
        flops = model_flops(model, size)
        path = save_checkpoint(tmp / f"{name}.pt", model)
        enc = ReIDEncoder.from_checkpoint(path, device=device, batch_size=batch)
        rows.append({"model": name, "input": f"{size[0]}x{size[1]}", "dim": enc.dim,
                     "attrs": len(enc.attribute_names), "params": infer_params, "gflops": flops / 1e9,
                     "crops_s": time_embed(enc, batch, batches)})
        print(f"  done {name}: {rows[-1]['crops_s']:.1f} crops/s", file=sys.stderr)
        if name in onnx_too:   # the same network exported by 'mcmt export-reid', run by onnxruntime
            export_onnx(model, tmp / f"{name}.onnx", check=False)
            enc = ReIDEncoder.from_checkpoint(tmp / f"{name}.onnx", device=device, batch_size=batch,
                                              num_threads=threads)
            rows.append({**rows[-1], "model": f"{name} (ONNX)", "crops_s": time_embed(enc, batch, batches)})
            print(f"  done {name} (ONNX): {rows[-1]['crops_s']:.1f} crops/s", file=sys.stderr)
    return rows


def bench_external(batch, batches, device, threads=0):
    rows = []
    for label, path in EXTERNAL.items():
        if not path.exists():
            print(f"  skipped {label}: {path} not found", file=sys.stderr)
            continue
        enc = ReIDEncoder.from_checkpoint(path, device=device, batch_size=batch, num_threads=threads)
        model_file = path if path.is_file() else next(path.rglob("*.xml"))
        params = onnx_params(model_file) if model_file.suffix == ".onnx" else float("nan")
        size = enc.input_size
        rows.append({"model": label, "input": f"{size[0]}x{size[1]}", "dim": enc.dim, "attrs": 0,
                     "params": params, "gflops": float("nan"), "crops_s": time_embed(enc, batch, batches)})
        print(f"  done {label}: {rows[-1]['crops_s']:.1f} crops/s", file=sys.stderr)
    return rows


def print_table(rows, peer_name):
    peer = next((r for r in rows if r["model"] == peer_name), rows[0])
    head = f"{'model':<22} {'input':>7} {'dim':>5} {'attrs':>5} {'params(M)':>9} {'GFLOPs':>7} " \
           f"{'crops/s':>8} {'vs ' + peer['model'][:12]:>16}"
    print(head)
    print("-" * len(head))
    for r in rows:
        params = "-" if np.isnan(r["params"]) else f"{r['params'] / 1e6:.2f}"
        gflops = "-" if np.isnan(r["gflops"]) else f"{r['gflops']:.2f}"
        print(f"{r['model']:<22} {r['input']:>7} {r['dim']:>5} {r['attrs']:>5} {params:>9} {gflops:>7} "
              f"{r['crops_s']:>8.1f} {r['crops_s'] / peer['crops_s']:>15.2f}x")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbones", nargs="+", default=list(BACKBONES), choices=list(BACKBONES))
    ap.add_argument("--batch", type=int, default=32, help="crops per embed() call (default 32)")
    ap.add_argument("--batches", type=int, default=3, help="timed embed() calls per model (default 3)")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (fp16 on CUDA)")
    ap.add_argument("--no-external", action="store_true", help="skip the OpenVINO / ONNX peers")
    ap.add_argument("--onnx", nargs="*", default=["mobilenetv2"], choices=list(BACKBONES),
                    help="backbones also timed as exported ONNX in onnxruntime (default mobilenetv2)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"# ReIDEncoder.embed, batch {args.batch}, {args.batches} timed batches, device {args.device}, "
          f"torch threads {torch.get_num_threads()}, {os.cpu_count()} CPUs", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        rows = bench_ours(args.backbones, args.batch, args.batches, args.device, Path(tmp), args.onnx, args.threads)
    if not args.no_external:
        rows += bench_external(args.batch, args.batches, args.device, args.threads)
    print_table(rows, peer_name=next(iter(EXTERNAL)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

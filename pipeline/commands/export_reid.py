"""Export a ReID checkpoint to ONNX (checked for numerical parity with PyTorch), or to a slim
inference-only .pt checkpoint (no identity classifiers, float16 weights) such as the shipped default.

The ONNX file carries its preprocessing and attribute names, so it can replace the checkpoint
anywhere a ReID model is accepted (``mcmt run --set reid.model=model.onnx``, ReIDEncoder).

Example:
  mcmt export-reid --checkpoint model.pt --out model.onnx
  mcmt export-reid --checkpoint runs/reid/default_cpu/last.pt --out reid/weights/default.pt
"""
from __future__ import annotations

import logging

from core.errors import UserError

log = logging.getLogger(__name__)


def add_arguments(p):
    p.add_argument("--checkpoint", required=True, help="our .pt checkpoint (from 'mcmt train-reid')")
    p.add_argument("--out", required=True, metavar="FILE", help="file to write: .onnx, or .pt for a slim inference checkpoint")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset version (default 17)")
    p.add_argument("--tolerance", type=float, default=1e-3,
                   help="largest allowed |PyTorch - onnxruntime| difference, relative to the largest "
                        "embedding value (default 1e-3)")
    p.add_argument("--no-check", action="store_true", help="skip the onnxruntime parity check")


def main(args) -> int:
    from reid.checkpoint import load_checkpoint
    from reid.export import export_onnx

    if args.out.lower().endswith(".pt"):
        return _export_slim(args)
    if not args.out.lower().endswith(".onnx"):
        raise UserError(f"--out {args.out!r}: the output file name must end in .onnx or .pt")
    model, meta = load_checkpoint(args.checkpoint)
    if model.config.get("external_trunk"):
        raise UserError(f"{args.checkpoint}: its trunk is an OpenVINO IR that runs outside the network; export "
                        "a slim .pt instead (--out model.pt), which runs with that IR")
    result = export_onnx(model, args.out, opset=args.opset, check=not args.no_check)
    print(f"wrote {result['path']} (backbone {meta['backbone']}, input {tuple(meta['input_size'])}, "
          f"embedding {model.embedding_dim}-d, {len(model.attribute_names)} attribute outputs)")
    if args.no_check:
        return 0
    rel = result["max_abs_diff"] / max(result["embedding_max_abs"], 1e-12)
    print(f"parity vs PyTorch: max |diff| embedding {result['max_abs_diff_embedding']:.3g}, "
          f"attributes {result['max_abs_diff_attributes']:.3g} (relative {rel:.3g})")
    if rel > args.tolerance:
        log.error("ONNX outputs differ from PyTorch by more than --tolerance %g", args.tolerance)
        return 1
    return 0


def _export_slim(args) -> int:
    import os

    from reid.checkpoint import slim_checkpoint

    out = slim_checkpoint(args.checkpoint, args.out)
    print(f"wrote {out} ({os.path.getsize(out) / 1e6:.1f} MB, inference only, float16 weights)")
    return 0

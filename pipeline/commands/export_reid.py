"""Export a ReID checkpoint to ONNX (checked for numerical parity with PyTorch), or to a slim
inference-only .pt checkpoint (no identity classifiers, float16 weights) such as the shipped default.

The ONNX file carries its preprocessing and attribute names, so it can replace the checkpoint
anywhere a ReID model is accepted (``mcmt run --set reid.model=model.onnx``, ReIDEncoder).

Example:
  mcmt export-reid --checkpoint model.pt --out model.onnx
  mcmt export-reid --checkpoint runs/reid/default_cpu/last.pt --out reid/weights/default.pt
  mcmt export-reid --checkpoint runs/reid/intel0277/last.pt --out reid/weights/default.pt \
      --int8 --data-root ../shared/data          # + the trunk's int8 copy (NNCF, needs the quantize extra)

With ``--int8`` a model on an OpenVINO IR trunk also carries an int8 copy of that IR (NNCF post-training
quantization calibrated on MARS and Market-1501 training crops under ``--data-root``, reid/quantize.py),
which ReIDEncoder then runs by default; the cosine of its embedding to the float IR's on crops not used
for calibration is printed and stored with it.
"""
from __future__ import annotations

import logging

import numpy as np

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
    p.add_argument("--int8", action="store_true",
                   help=".pt of a model on an OpenVINO IR trunk: also carry the IR quantized to int8 (NNCF; "
                        'pip install -e ".[quantize]"), calibrated on training crops under --data-root')
    p.add_argument("--data-root", metavar="DIR", default="../shared/data",
                   help="with --int8: folder holding mars-mini/ and market1501-mini/ (default ../shared/data)")
    p.add_argument("--calibration-crops", type=int, default=300,
                   help="with --int8: MARS frames used for calibration, besides Market-1501's training crops "
                        "(default 300)")


def main(args) -> int:
    from reid.checkpoint import load_checkpoint
    from reid.export import export_onnx

    if args.checkpoint == "default":
        from reid.encoder import DEFAULT_CHECKPOINT
        args.checkpoint = str(DEFAULT_CHECKPOINT)
    if args.out.lower().endswith(".pt"):
        return _export_slim(args)
    if args.int8:
        raise UserError("--int8 applies to a .pt export of a model on an OpenVINO IR trunk")
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

    int8 = _int8_trunk(args) if args.int8 else None
    out = slim_checkpoint(args.checkpoint, args.out, int8_files=int8)
    print(f"wrote {out} ({os.path.getsize(out) / 1e6:.1f} MB, inference only, float16 weights"
          f"{', with the int8 trunk' if int8 else ''})")
    return 0


def _int8_trunk(args) -> dict:
    """The int8 copy of the checkpoint's IR trunk, with its calibration and check recorded."""
    from reid.checkpoint import _trunk_files, load_checkpoint
    from reid.quantize import calibration_crops, check_crops, embedding_cosine, quantize_ir

    from pathlib import Path

    model, meta = load_checkpoint(args.checkpoint)
    if not model.config.get("external_trunk"):
        raise UserError(f"{args.checkpoint}: --int8 needs a model on an OpenVINO IR trunk (backbone ir_map)")
    files = meta.get("trunk_files") or _trunk_files(model.config, Path(args.checkpoint).parent)
    crops = calibration_crops(args.data_root, args.calibration_crops)
    print(f"quantizing {files['name']} to int8 on {len(crops)} training crops (NNCF) ...")
    int8 = quantize_ir(files, crops)
    # MARS frames after those of calibration and of the accuracy control that chose reid/quantize.py's
    # settings (150 more), and Market-1501's test identities
    held = check_crops(args.data_root, skip_mars=args.calibration_crops + 200)
    cos = embedding_cosine(files, int8, held)
    int8["check"] = {"crops": int(len(held)), "cosine_mean": round(float(cos.mean()), 5),
                     "cosine_p5": round(float(np.percentile(cos, 5)), 5), "cosine_min": round(float(cos.min()), 5)}
    print(f"int8 trunk: embedding cosine to the float IR on {len(held)} crops not used for calibration: "
          f"mean {cos.mean():.4f}, 5th percentile {np.percentile(cos, 5):.4f}, min {cos.min():.4f}")
    return int8

"""Fit the attribute decision thresholds of a ReID checkpoint on its own training images.

Each binary attribute gets the threshold that balances its positive and negative recall (the mA
metric) on the training images of the checkpoint's recipe (read from the checkpoint; VIPeR and the
PETA held-out identities are not among them). The thresholds go into the written checkpoint and
apply wherever it is used. See reid/attribute_calibration.py.

Examples:
  mcmt calibrate-attributes --checkpoint runs/reid/osnet_cpu/last.pt --out runs/reid/osnet_cpu/calibrated.pt
  mcmt calibrate-attributes --checkpoint reid/weights/default.pt --data-root ../shared/data --out new.pt
"""
from __future__ import annotations


def add_arguments(p):
    p.add_argument("--checkpoint", required=True, help="our .pt checkpoint (from 'mcmt train-reid' / 'export-reid')")
    p.add_argument("--out", required=True, metavar="FILE", help="calibrated checkpoint to write (.pt)")
    p.add_argument("--data-root", metavar="DIR", help="data folder of the training recipe (default: the one the "
                                                       "checkpoint was trained with)")
    p.add_argument("--max-images", type=int, default=0, help="fit on a seeded subset of this many training images "
                                                              "(default 0: all)")
    p.add_argument("--seed", type=int, default=0, help="seed of the --max-images subset (default 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def main(args) -> int:
    from core.errors import UserError
    from reid.attribute_calibration import calibrate_checkpoint

    if not str(args.out).lower().endswith(".pt"):
        raise UserError(f"--out {args.out!r}: the calibrated checkpoint's file name must end in .pt")
    res = calibrate_checkpoint(args.checkpoint, args.out, data_root=args.data_root, max_images=args.max_images,
                               seed=args.seed, progress=not args.no_progress)
    print(f"{'attribute':16} {'threshold':>9} {'images':>7} {'mA before':>10} {'mA after':>9}  (training images)")
    for name, r in res["attributes"].items():
        print(f"{name:16} {r['threshold']:9.3f} {r['images']:7d} {r['before']:10.2f} {r['after']:9.2f}")
    print(f"wrote {res['path']} ({res['images']} training images)")
    return 0

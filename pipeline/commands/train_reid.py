"""Train the multi-task ReID network (identification + attributes + verification).

Examples:
  mcmt train-reid --config configs/reid/paper_market1501.yaml --data-root /data/Market-1501
  mcmt train-reid --config configs/reid/smoke_cpu.yaml --data-root ../shared/data/market1501-mini
  mcmt train-reid --resume runs/reid/paper_market1501/last.pt          # continue where it stopped
  mcmt train-reid --resume runs/x/last.pt --set schedule.epochs=400    # ... and train longer
  torchrun --nproc_per_node 2 -m pipeline.cli train-reid --config ...  # several GPUs (DDP)

Writes <out>/last.pt (model checkpoint, usable by 'mcmt eval-reid' and 'mcmt run') with its
training state last.state-EEEE.pt and history.json. With --resume and no --config the run's
own configuration (stored in the checkpoint) is used, with --set overrides applied.
"""
from __future__ import annotations

import logging

from core.errors import UserError
from reid.train_config import TrainConfig

log = logging.getLogger(__name__)

CONFIG_CLASS = TrainConfig


def add_arguments(p):
    p.add_argument("--data-root", metavar="DIR", help="data set folder (completes empty/relative roots in "
                                                       "the config's data.train and eval.dataset)")
    p.add_argument("--out", metavar="DIR", help="output folder for checkpoints and logs (default: config 'out')")
    p.add_argument("--resume", metavar="CKPT", help="continue training from this last.pt checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (log lines only)")


def resume_config(path: str, overrides) -> TrainConfig:
    """The training configuration stored in checkpoint ``path``, with ``--set`` overrides."""
    from core.config import apply_overrides, from_dict
    from reid.checkpoint import load_checkpoint

    _, meta = load_checkpoint(path)
    saved = meta.get("train_config")
    if not saved:
        raise UserError(f"{path}: the checkpoint holds no training configuration; pass --config")
    return from_dict(TrainConfig, apply_overrides(saved, overrides), f"{path} (stored config)")


def saved_data_root(path: str) -> str | None:
    """The ``--data-root`` a checkpoint was trained with (None when it did not record one)."""
    from reid.checkpoint import load_checkpoint

    _, meta = load_checkpoint(path)
    return (meta.get("extra") or {}).get("data_root")


def main(args) -> int:
    from reid.train import train

    cfg = args.cfg
    if args.resume and not args.config:
        cfg = resume_config(args.resume, args.overrides)
    if args.resume and not args.data_root:
        args.data_root = saved_data_root(args.resume)
    out = args.out
    if args.resume and not out:
        from pathlib import Path
        out = str(Path(args.resume).parent)
    last = train(cfg, data_root=args.data_root, out_dir=out, resume=args.resume,
                 progress=not args.no_progress)
    out = out or cfg.out
    if last:
        line = (f"trained {last['epoch']} epoch(s): loss {last['loss']:.4f} (id {last['id']:.4f} "
                f"attr {last['attr']:.4f} trip {last['trip']:.4f})")
        if "eval" in last:
            e = last["eval"]
            line += f"; rank-1 {e['rank1']:.2f} mAP {e['mAP']:.2f}"
        print(line)
    print(f"checkpoint: {out}/last.pt")
    return 0

"""Tune the last block of an OpenVINO ReID trunk for worse cameras (blur, compression, noise, ...).

Examples:
  mcmt tune-trunk --config configs/reid/tune/trunk_robust.yaml --data-root ../shared/data
  mcmt tune-trunk --config configs/reid/tune/trunk_robust.yaml --data-root ../shared/data --set epochs=6

Writes <out>/<trunk name>-robust.xml / .bin (the IR with the tuned weights), history.json and
tune_state.pt (an interrupted run resumes from its last epoch; the trunk's features are cached under
'cache'). Train the heads on it with 'mcmt train-reid --set model.trunk=<out>/...-robust.xml'
(reid/trunk_tune.py, reid/MODEL_CARD.md).
"""
from __future__ import annotations

from reid.trunk_tune import TuneConfig

CONFIG_CLASS = TuneConfig


def add_arguments(p):
    p.add_argument("--data-root", metavar="DIR", help="data set folder (completes empty/relative roots in 'data')")
    p.add_argument("--out", metavar="DIR", help="output folder (default: config 'out')")


def main(args) -> int:
    from reid.trunk_tune import tune

    path = tune(args.cfg, data_root=args.data_root, out_dir=args.out)
    print(path)
    return 0

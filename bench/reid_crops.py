"""ReID models on real crops: EPFL terrace cross-camera ground truth, VIPeR (10 splits), held-out PETA.

* ``epfl``: ground-truth boxes of EPFL terrace (../shared/data/epfl-terrace) every 10th frame
  (frames 10, 20, ...), boxes >= 40 px tall, clipped to the frame; camera 0 crops are the queries,
  camera 1 crops the gallery (Euclidean distance of L2-normalised features: rank-1 and mAP).
  Evaluation only: these frames are never used for training.
* ``viper``: ``mcmt eval-reid --dataset viper`` (10 seeded splits), with the attribute mA of the gallery.
* ``peta``: attribute mA on the held-out PETA identities (``mcmt eval-reid --dataset peta``).
* crops/s: ``ReIDEncoder.embed`` of 256 EPFL crops, batches of 32, ``--threads`` threads.

A model on an OpenVINO IR trunk (``reid/weights/default.pt``) is scored with each appearance
feature it can give (``ir``: the IR's own embedding, ``heads``: our heads' features, ``concat``:
both), from one feature extraction.

Usage: python bench/reid_crops.py [--models default ../shared/models/...xml ...] [--sets epfl viper peta]
                                  [--shared ../shared] [--threads 2] [--json out.json]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reid.encoder import ReIDEncoder  # noqa: E402
from reid.evaluate import rank_scores  # noqa: E402

EVERY, MIN_HEIGHT = 10, 40


def epfl_crops(root: Path, camera: int) -> tuple[list[np.ndarray], np.ndarray]:
    """(crops BGR, ids) of camera ``camera``'s ground truth every 10th frame, boxes >= 40 px tall."""
    import cv2

    gt_file = root / "gt" / f"terrace_c{camera}" / "gt" / "gt.txt"
    if not gt_file.is_file():
        raise SystemExit(f"no ground truth for camera {camera}: {gt_file}")
    gt = np.loadtxt(gt_file, delimiter=",", ndmin=2)
    gt = gt[(gt[:, 0] % EVERY == 0) & (gt[:, 5] >= MIN_HEIGHT)]
    cap = cv2.VideoCapture(str(root / f"terrace_c{camera}.mp4"))
    crops, ids, frame_no = [], [], 0
    wanted = {int(f) for f in gt[:, 0]}
    while wanted:
        ok, frame = cap.read()
        if not ok:
            break
        frame_no += 1
        if frame_no not in wanted:
            continue
        wanted.discard(frame_no)
        h, w = frame.shape[:2]
        for row in gt[gt[:, 0] == frame_no]:
            x0, y0 = max(int(row[2]), 0), max(int(row[3]), 0)
            x1, y1 = min(int(row[2] + row[4]), w), min(int(row[3] + row[5]), h)
            if x1 - x0 >= 4 and y1 - y0 >= MIN_HEIGHT:
                crops.append(frame[y0:y1, x0:x1].copy())
                ids.append(int(row[1]))
    return crops, np.asarray(ids)


class MemoEncoder:
    """An encoder's features, computed once per crop, sliced to one appearance feature (``cols``)."""

    def __init__(self, base: ReIDEncoder, memo: dict, cols: slice = slice(None)):
        self.base, self.memo, self.cols = base, memo, cols
        self.attribute_names, self.name, self.input_size = base.attribute_names, base.name, base.input_size

    def embed(self, crops):
        keys = [hashlib.sha1(np.ascontiguousarray(c).tobytes()).digest() for c in crops]
        todo = [i for i, k in enumerate(keys) if k not in self.memo]
        if todo:
            f, a = self.base.embed([crops[i] for i in todo])
            self.memo.update({keys[i]: (f[j], a[j]) for j, i in enumerate(todo)})
        f = np.stack([self.memo[k][0][self.cols] for k in keys]) if keys else np.zeros((0, 1), np.float32)
        a = np.stack([self.memo[k][1] for k in keys]) if keys else np.zeros((0, 0), np.float32)
        f = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
        return f.astype(np.float32), a


def feature_views(enc: ReIDEncoder) -> dict[str, MemoEncoder]:
    """name -> encoder: one per appearance feature of a trunk model (all from ``concat``), else one."""
    memo: dict = {}
    backend = enc.backend
    if getattr(backend, "mode", None) != "concat":
        return {"": MemoEncoder(enc, memo)}
    d = backend.trunk.dim
    return {"ir": MemoEncoder(enc, memo, slice(0, d)), "heads": MemoEncoder(enc, memo, slice(d, None)),
            "concat": MemoEncoder(enc, memo)}


def score_epfl(enc, shared: Path) -> dict:
    root = shared / "data" / "epfl-terrace"
    (q, qid), (g, gid) = epfl_crops(root, 0), epfl_crops(root, 1)
    qf, _ = enc.embed(q)
    gf, _ = enc.embed(g)
    s, _ = rank_scores(qf, gf, qid, gid, np.zeros(len(q), int), np.ones(len(g), int))
    return {"epfl_rank1": round(s["rank1"], 1), "epfl_mAP": round(s["mAP"], 1), "epfl_crops": [len(q), len(g)]}


def score_dataset(enc, name: str, root: Path, trained) -> dict:
    from reid.evaluate import evaluate_dataset

    res, _, _ = evaluate_dataset(enc, name, str(root), trained_on=trained and trained[0])
    out = {}
    if "rank1" in res:
        out.update({f"{name}_rank1": round(res["rank1"], 1), f"{name}_mAP": round(res["mAP"], 1)})
    if res.get("attributes"):
        out[f"{name}_attr_mA"] = round(res["attributes"]["ma"], 1)
        out[f"{name}_attr_min"] = round(min(res["attributes"].get("per_attribute_ma", {0: 0}).values()), 1)
    return out


def crops_per_second(enc: ReIDEncoder, shared: Path) -> float:
    crops, _ = epfl_crops(shared / "data" / "epfl-terrace", 0)
    crops = (crops * (256 // max(len(crops), 1) + 1))[:256]
    enc.embed(crops[:32])
    t0 = time.perf_counter()
    enc.embed(crops)
    return round(len(crops) / (time.perf_counter() - t0), 1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=["default"])
    ap.add_argument("--sets", nargs="*", default=["epfl", "viper", "peta"], choices=["epfl", "viper", "peta"],
                    help="data sets to score (none: crops/s only)")
    ap.add_argument("--shared", default=str(Path(__file__).resolve().parents[1].parent / "shared"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", help="also write the rows here")
    args = ap.parse_args()
    from reid.data.overlap import checkpoint_training

    shared, rows = Path(args.shared), []
    roots = {"viper": shared / "data" / "peta" / "VIPeR", "peta": shared / "data" / "peta"}
    for model in args.models:
        enc = ReIDEncoder.from_checkpoint(model, num_threads=args.threads)
        speed = crops_per_second(enc, shared)
        trained = checkpoint_training(model)
        for view, venc in feature_views(enc).items():
            row = {"model": Path(model).stem + (f" [{view}]" if view else ""), "dim": venc.embed(
                [np.zeros((64, 32, 3), np.uint8)])[0].shape[1], "crops_s": speed}
            for name in args.sets:
                row.update(score_epfl(venc, shared) if name == "epfl" else
                           score_dataset(venc, name, roots[name], trained))
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark: our trackers vs ultralytics' BYTETracker on PETS09-S2L1 (MOT15 public detections).

Both get the same detections, the same score mapping (ACF score / sequence max, clipped at 0),
the same thresholds and the same lost-track buffer; both outputs are scored by
``pipeline.evaluation.mot.evaluate_mot`` against the MOT15 ground truth, and both update loops are
timed in this run (inputs are prepared before timing; best of --repeat runs).

With ``--reid MODEL`` (any model ``reid.ReIDEncoder`` loads, e.g. the shared OSNet ONNX) every
detection is also embedded once (crops of vtest.avi, cached in --cache) and the appearance
trackers are compared: ours "botsort" vs ultralytics' BOTSORT fed the same features.

    python bench/trackers_pets09.py [--shared ../shared] [--repeat 5]
    python bench/trackers_pets09.py --reid ../shared/models/osnet_x0_25_msmt17.onnx
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.evaluation.mot import evaluate_mot  # noqa: E402
from pipeline.formats.mot import read_mot  # noqa: E402
from trackers import build_tracker  # noqa: E402

SETTINGS = dict(track_high_thresh=0.3, track_low_thresh=0.1, new_track_thresh=0.4, match_thresh=0.8,
                track_buffer=30, frame_rate=7.0, fuse_score=True)


class UltralyticsBoxes:
    """The part of ultralytics' Boxes that BYTETracker reads: conf, cls, xywh, xyxy, len, [mask]."""

    def __init__(self, dets: np.ndarray):
        self.data = dets.astype(np.float32)          # (N, 6) x1, y1, x2, y2, score, cls
        self.xyxy, self.conf, self.cls = self.data[:, :4], self.data[:, 4], self.data[:, 5]
        wh = self.xyxy[:, 2:] - self.xyxy[:, :2]
        self.xywh = np.concatenate([self.xyxy[:, :2] + wh / 2, wh], axis=1)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, mask) -> "UltralyticsBoxes":
        return UltralyticsBoxes(self.data[mask])


def load_detections(seq: Path) -> tuple[list[np.ndarray], int]:
    """MOT15 det.txt -> per-frame (N, 6) x1, y1, x2, y2, score, cls with score / max clipped at 0."""
    det = read_mot(seq / "det" / "det.txt")
    n_frames = int(det[:, 0].max())
    scores = np.clip(det[:, 6] / det[:, 6].max(), 0.0, None)
    rows = np.column_stack([det[:, 2], det[:, 3], det[:, 2] + det[:, 4], det[:, 3] + det[:, 5], scores,
                            np.zeros(len(det))])
    frame = det[:, 0].astype(int)
    return [rows[frame == f] for f in range(1, n_frames + 1)], n_frames


def to_mot(outputs: list[np.ndarray]) -> np.ndarray:
    """Per-frame (M, >=5) x1, y1, x2, y2, id rows -> MOTChallenge (K, 10)."""
    rows = [np.column_stack([np.full(len(o), f + 1), o[:, 4], o[:, 0], o[:, 1], o[:, 2] - o[:, 0],
                             o[:, 3] - o[:, 1], np.ones((len(o), 1)), -np.ones((len(o), 3))])
            for f, o in enumerate(outputs) if len(o)]
    return np.concatenate(rows) if rows else np.zeros((0, 10))


def embed_detections(seq: Path, frames: list[np.ndarray], model: str, cache: Path) -> list[np.ndarray]:
    """Per-frame (N, D) ReID features of the detection crops of vtest.avi (cached as .npz)."""
    if cache.is_file():
        data = np.load(cache)
        if len(data.files) == len(frames):
            return [data[f"f{i}"] for i in range(len(frames))]
    import cv2

    from reid import ReIDEncoder

    encoder = ReIDEncoder.from_checkpoint(model)
    video = cv2.VideoCapture(str(seq / "vtest.avi"))
    feats = []
    for d in frames:
        ok, image = video.read()
        if not ok:
            raise RuntimeError(f"{seq / 'vtest.avi'} ended before the detections")
        h, w = image.shape[:2]
        boxes = np.clip(np.round(d[:, :4]).astype(int), 0, [w - 1, h - 1, w, h])
        crops = [image[y1:max(y2, y1 + 1), x1:max(x2, x1 + 1)] for x1, y1, x2, y2 in boxes]
        feats.append(encoder.embed(crops)[0] if crops else np.zeros((0, encoder.dim), np.float32))
    np.savez(cache, **{f"f{i}": f for i, f in enumerate(feats)})
    return feats


def run_ours(name: str, frames: list[np.ndarray], feats: list | None = None) -> tuple[list[np.ndarray], float]:
    tracker = build_tracker(name, **SETTINGS)
    feats = feats or [None] * len(frames)
    t0 = time.perf_counter()
    out = [tracker.update(d, e) for d, e in zip(frames, feats)]
    return out, time.perf_counter() - t0


def run_ultralytics(frames: list[np.ndarray], buffer: int, feats: list | None = None):
    """ultralytics' BYTETracker, or its BOTSORT fed our features (same thresholds) when feats are given."""
    from ultralytics.trackers.bot_sort import BOTSORT
    from ultralytics.trackers.byte_tracker import BYTETracker

    args = SimpleNamespace(**{**SETTINGS, "track_buffer": buffer})
    if feats is None:
        tracker = BYTETracker(args)
    else:  # ultralytics' appearance_thresh is a similarity: 1 - our max distance
        ours = build_tracker("botsort")
        tracker = BOTSORT(SimpleNamespace(**vars(args), gmc_method=None, proximity_thresh=ours.proximity_thresh,
                                          appearance_thresh=1 - ours.appearance_thresh, with_reid=True,
                                          model="auto"))
    boxes = [UltralyticsBoxes(d) for d in frames]
    feats = feats or [None] * len(frames)
    t0 = time.perf_counter()
    out = [tracker.update(b, None, f) for b, f in zip(boxes, feats)]
    elapsed = time.perf_counter() - t0
    return [o.reshape(-1, 8) for o in out], elapsed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", default=os.environ.get("MCMT_SHARED", str(REPO.parent / "shared")))
    ap.add_argument("--repeat", type=int, default=5, help="timing runs per tracker (best is reported)")
    ap.add_argument("--reid", metavar="MODEL", help="also compare appearance trackers with this ReID model")
    ap.add_argument("--cache", default="/tmp/mcmt_pets09_feats.npz", help="embedding cache for --reid")
    args = ap.parse_args()
    seq = Path(args.shared) / "data" / "pets09-s2l1"
    if not (seq / "det" / "det.txt").is_file():
        print(f"PETS09-S2L1 not found under {seq} (use --shared)")
        return 1
    frames, n_frames = load_detections(seq)
    gt = read_mot(seq / "gt" / "gt.txt")
    buffer = build_tracker("bytetrack", **SETTINGS).max_lost
    runners = {"ultralytics BYTETracker": lambda: run_ultralytics(frames, buffer),
               "ours bytetrack": lambda: run_ours("bytetrack", frames),
               "ours botsort (no embeds)": lambda: run_ours("botsort", frames)}
    if args.reid:
        feats = embed_detections(seq, frames, args.reid, Path(args.cache))
        runners["ultralytics BOTSORT +reid"] = lambda: run_ultralytics(frames, buffer, feats)
        runners["ours botsort +reid"] = lambda: run_ours("botsort", frames, feats)
    results = {}
    for _ in range(args.repeat):  # interleave runs so machine load hits all trackers alike
        for name, fn in runners.items():
            out, sec = fn()
            best = results.get(name, (None, np.inf))[1]
            results[name] = (out, min(sec, best))
    print(f"PETS09-S2L1: {n_frames} frames, {sum(map(len, frames))} detections; settings {SETTINGS}, "
          f"lost buffer {buffer} frames for all")
    print("x ultra: update-loop speed relative to the ultralytics tracker of the same kind (same run). "
          "Note: ultralytics keeps a track it removes matchable for one more frame.")
    print(f"{'tracker':26s} {'HOTA':>6s} {'MOTA':>6s} {'IDF1':>6s} {'IDsw':>5s} {'upd/s':>8s} {'x ultra':>8s}")
    for name, (out, sec) in results.items():
        m = evaluate_mot(gt, to_mot(out))
        ups = n_frames / sec
        ref = n_frames / results["ultralytics BOTSORT +reid" if "+reid" in name else "ultralytics BYTETracker"][1]
        print(f"{name:26s} {m['HOTA']:6.2f} {m['MOTA']:6.2f} {m['IDF1']:6.2f} {m['num_switches']:5d} "
              f"{ups:8.0f} {ups / ref:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

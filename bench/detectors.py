"""Benchmark of the detector candidates for ``mcmt run``'s embedded default, over several footages.

One table, one row per candidate:
* AP50 per footage (every frame; EPFL terrace's occluded boxes are don't-care), precision / recall
  at the tracker's operating threshold (``tracker.track_high_thresh``, detections that start and
  carry tracks);
* MOTA / IDF1 per footage of the default tracker (``mcmt run``'s ``tracker:`` settings, run in-process
  on the cached detections and their ReID features (mcmt run's default model, see bench/tracking_data.py); the
  tracker alone, without the association's joins), and the mean over footages;
* ms per frame of one detector call (preprocessing, inference, decoding) on 1 and 2 threads, on a
  PETS09 frame (768x576) and an EPFL frame (360x288), median of --rounds rounds, in a child process;
  with --emulate-avx2 also with oneDNN limited to AVX2 (a CPU without VNNI, as bench/pipeline.py).

Footages: PETS09-S2L1 (1 camera, 795 frames), EPFL terrace (2 cameras x 1,800), the two-camera sample
(2 x 795). Detections are cached under runs/bench_cache/ (first run: minutes per candidate).

Usage: python bench/detectors.py [--only NAME ...] [--no-track] [--no-speed | --speed-only] [--emulate-avx2]
                                 [--rounds 5] [--calls 10] [--shared ../shared]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(REPO))

from bench import tracking_data as td  # noqa: E402
from bench.children import run_child  # noqa: E402

OMZ = "models/openvino/{0}/{1}/{0}.xml"
# name -> (model path under --shared, person label, input (h, w) or None: the network's own, fit the input
# width to the frame's aspect ratio (boxes models, see pipeline/run/detectors/boxes.py))
CANDIDATES = {
    "adas-0002 int8": (OMZ.format("pedestrian-detection-adas-0002", "FP16-INT8"), 1, None, False),
    "adas-0002 fp16": (OMZ.format("pedestrian-detection-adas-0002", "FP16"), 1, None, False),
    "2003 int8": (OMZ.format("person-vehicle-bike-detection-2003", "FP16-INT8"), 1, None, False),
    "2003 int8 fit": (OMZ.format("person-vehicle-bike-detection-2003", "FP16-INT8"), 1, None, True),
    "2003 fp16 fit": (OMZ.format("person-vehicle-bike-detection-2003", "FP16"), 1, None, True),
    "2003 int8 672": (OMZ.format("person-vehicle-bike-detection-2003", "FP16-INT8"), 1, (384, 672), False),
    "2002 int8": (OMZ.format("person-vehicle-bike-detection-2002", "FP16-INT8"), 1, None, False),
    "0202 int8": (OMZ.format("person-detection-0202", "FP16-INT8"), 0, None, False),
}
INT8_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")
EMULATE_AVX2 = {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}


def cpu_info() -> dict:
    """Model name, core count and the SIMD flags that matter for int8 / bf16 inference."""
    flags, name = set(), "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
            elif line.startswith("model name") and name == "unknown":
                name = line.split(":", 1)[1].strip()
    except OSError:
        pass
    wanted = ("avx2", "avx512f", *INT8_FLAGS, "avx512_bf16")
    return {"name": name, "cores": os.cpu_count(), "flags": [f for f in wanted if f in flags],
            "int8_fast": any(f in flags for f in INT8_FLAGS)}


def build(name: str, shared: Path, threads: int, conf: float = td.DET_MIN):
    """The candidate's detector (OpenVINO on the CPU) with boxes down to ``conf``."""
    from pipeline.run.detectors import BoxesDetector, SsdDetector, model_kind

    rel, label, size, fit_width = CANDIDATES[name]
    model = str(shared / rel)
    if model_kind(model) == "boxes":
        return BoxesDetector(model, conf=conf, threads=threads, label=label, input_hw=size, fit_width=fit_width)
    det = SsdDetector(model, conf=conf, threads=threads, label=label)
    if size:
        det.engine.reshape_input(*size)
        det.input_hw = size
    return det


# ---- accuracy ----------------------------------------------------------------------------------------
def match_frame(det: np.ndarray, gt: np.ndarray, ignore: np.ndarray, iou: float = 0.5) -> np.ndarray:
    """Per detection (best score first): 1 true positive, 0 false positive, -1 don't-care (an unmatched
    detection on an occluded box), by greedy matching at ``iou`` (PASCAL VOC)."""
    from core.boxes import iou_matrix

    out = np.zeros(len(det), np.int64)
    if len(gt):
        sim = iou_matrix(det[:, :4], gt)
        free = np.ones(len(gt), bool)
        for i in range(len(det)):
            s = np.where(free, sim[i], -1.0)
            j = int(s.argmax())
            if s[j] >= iou:
                out[i], free[j] = 1, False
    if len(ignore):
        dont = (out == 0) & (iou_matrix(det[:, :4], ignore).max(1) >= iou)
        out[dont] = -1
    return out


def gt_boxes(rows: np.ndarray, cls: int, n_frames: int) -> list[np.ndarray]:
    """Per frame (K, 4) xyxy boxes of the gt rows (K, 10) with class column == cls."""
    rows = rows[rows[:, 7] == cls] if cls != 1 else rows[rows[:, 7] != td.DISTRACTOR]
    xyxy = np.column_stack([rows[:, 2:4], rows[:, 2:4] + rows[:, 4:6]])
    return td._split(np.column_stack([rows[:, 0] - 1, xyxy, np.zeros((len(rows), 2))]), n_frames)


def detection_scores(dets: list[list[np.ndarray]], cams: list, thresh: float) -> dict:
    """AP50 and precision / recall at ``thresh`` over all frames of the cameras."""
    scores, labels, n_gt = [], [], 0
    for cam, per_frame in zip(cams, dets):
        gt = td.read_gt(cam)
        pos = gt_boxes(gt, 1, len(per_frame))
        ign = gt_boxes(gt, td.DISTRACTOR, len(per_frame))
        for d, g, i in zip(per_frame, pos, ign):
            d = d[np.argsort(-d[:, 4], kind="stable")]
            scores.append(d[:, 4])
            labels.append(match_frame(d, g[:, :4], i[:, :4]))
            n_gt += len(g)
    s, lab = np.concatenate(scores), np.concatenate(labels)
    s, lab = s[lab >= 0], lab[lab >= 0]
    order = np.argsort(-s, kind="stable")
    tp = np.cumsum(lab[order])
    prec, rec = tp / np.arange(1, len(tp) + 1), tp / max(n_gt, 1)
    env = np.maximum.accumulate(prec[::-1])[::-1]                  # precision envelope
    ap = float(np.sum(np.diff(np.concatenate([[0.0], rec])) * env))
    at = s >= thresh
    return {"AP50": 100 * ap, "P": 100 * lab[at].mean() if at.any() else 0.0,
            "R": 100 * lab[at].sum() / max(n_gt, 1)}


def tracker_params(**changes) -> dict:
    """``mcmt run``'s default ``tracker:`` settings (pipeline.config) with ``changes``."""
    from pipeline.config import RunConfig

    params = dataclasses.asdict(RunConfig().tracker)
    params.update(changes)
    return params


def track_footage(dets, feats, cams, params: dict) -> dict:
    """The tracker ``params`` (a TrackerConfig dict) on each camera's cached detections -> combined scores."""
    from trackers import build_tracker

    params = dict(params)
    name = params.pop("name")
    preds = []
    for d, f, cam in zip(dets, feats, cams):
        tracker = build_tracker(name, **td.resolve_rate(params, cam))   # one instance per camera
        outs = [tracker.update(x.astype(np.float64), e if name != "bytetrack" else None) for x, e in zip(d, f)]
        preds.append(td.to_mot(outs))
    return td.score([td.read_gt(c) for c in cams], preds)


def encoder_factory():
    from pipeline.run.resources import load_encoder

    return load_encoder(str(td.BENCH_REID), "cpu", batch_size=64, threads=1)


def accuracy(name: str, shared: Path, do_track: bool) -> dict:
    """{footage: {AP50, P, R, MOTA, IDF1}} of one candidate (detections cached)."""
    from trackers import TrackerConfig

    thresh = TrackerConfig().track_high_thresh
    out = {}
    for foot, cams in td.available(shared).items():
        dets = [td.detections(name, lambda: build(name, shared, 1), c) for c in cams]
        row = detection_scores(dets, cams, thresh)
        if do_track:
            feats = [td.embeddings(name, d, c, encoder_factory) for d, c in zip(dets, cams)]
            row.update({k: v for k, v in track_footage(dets, feats, cams, tracker_params()).items()
                        if k in ("MOTA", "IDF1", "HOTA")})
        out[foot] = row
    return out


# ---- speed ---------------------------------------------------------------------------------------
def speed_child(names: list[str], shared: Path, rounds: int, calls: int) -> dict:
    """{"name|threads|input": median ms per frame} in this process."""
    cams = td.available(shared)
    frames = {"pets": next(td.read_frames(cams["pets09"][0].video)),
              "epfl": next(td.read_frames(cams["epfl"][0].video))}
    dets = {(n, t): build(n, shared, t, conf=0.1) for n in names for t in (1, 2)}
    for det in dets.values():                       # warm-up (first calls compile / allocate)
        for img in frames.values():
            det([img])
    times: dict = {}
    for _ in range(rounds):
        for (n, t), det in dets.items():
            for label, img in frames.items():
                t0 = time.perf_counter()
                for _ in range(calls):
                    det([img])
                times.setdefault(f"{n}|{t}|{label}", []).append((time.perf_counter() - t0) * 1000 / calls)
    return {k: statistics.median(v) for k, v in times.items()}


def speed(names, shared: Path, rounds: int, calls: int, emulate: bool) -> dict:
    args = ["speed", ",".join(names), str(shared), str(rounds), str(calls)]
    return run_child(__file__, args, EMULATE_AVX2 if emulate else None)


# ---- table ---------------------------------------------------------------------------------------
def print_table(names, acc: dict, ms: dict, ms_avx2: dict) -> None:
    cpu = cpu_info()
    print(f"\nCPU {cpu['name']}, {cpu['cores']} cores, flags {' '.join(cpu['flags'])}, int8 VNNI "
          f"{'yes' if cpu['int8_fast'] else 'NO'}; load {os.getloadavg()[0]:.1f}")
    foots = sorted({f for a in acc.values() for f in a})
    print("AP50 / P / R at the tracker's high threshold; MOTA / IDF1 of the default tracker (in-process, cached "
          "detections); ms per frame 1T / 2T on a PETS (768x576) and an EPFL (360x288) frame"
          + ("; avx2 = oneDNN limited to AVX2" if ms_avx2 else ""))
    head = "".join(f" | {f[:6]:>6} AP50    P    R  MOTA  IDF1" for f in foots)
    cols = [("pets", 1), ("pets", 2), ("epfl", 1), ("epfl", 2)]
    speed_head = " ".join(f"{lab}{t}T" for lab, t in cols)
    print(f"{'candidate':15}{head} | mean MOTA IDF1 | ms {speed_head}" + (" | avx2 ms" if ms_avx2 else ""))
    for n in names:
        a, cells, mota, idf1 = acc.get(n, {}), "", [], []
        for f in foots:
            r = a.get(f, {})
            cells += (f" | {'':6} {r.get('AP50', np.nan):4.1f} {r.get('P', np.nan):4.1f} {r.get('R', np.nan):4.1f}"
                      f" {r.get('MOTA', np.nan):5.1f} {r.get('IDF1', np.nan):5.1f}")
            mota.append(r.get("MOTA", np.nan))
            idf1.append(r.get("IDF1", np.nan))
        sp = " ".join(f"{ms.get(f'{n}|{t}|{lab}', np.nan):6.1f}" for lab, t in cols)
        av = " ".join(f"{ms_avx2.get(f'{n}|{t}|{lab}', np.nan):6.1f}" for lab, t in cols) if ms_avx2 else ""
        print(f"{n:15}{cells} | {np.mean(mota):9.1f} {np.mean(idf1):4.1f} | {sp}" + (f" | {av}" if av else ""))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shared", default=str(td.SHARED))
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--calls", type=int, default=10, help="detector calls per candidate and round")
    p.add_argument("--only", nargs="+", choices=list(CANDIDATES), metavar="NAME", help="candidates to measure")
    p.add_argument("--no-track", action="store_true", help="detection scores only (no tracking, no ReID)")
    p.add_argument("--no-speed", action="store_true", help="skip the timing")
    p.add_argument("--speed-only", action="store_true", help="only the timing (no detections cached)")
    p.add_argument("--emulate-avx2", action="store_true", help="also time with oneDNN limited to AVX2")
    p.add_argument("--json", help="also write the numbers to this file")
    p.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        _, names, shared, rounds, calls = a.child
        print(json.dumps(speed_child(names.split(","), Path(shared), int(rounds), int(calls))))
        return 0
    shared = Path(a.shared)
    if "pets09" not in td.available(shared):
        print(f"needs {shared}/data/pets09-s2l1 (set --shared)", file=sys.stderr)
        return 2
    names = [n for n in (a.only or CANDIDATES) if (shared / CANDIDATES[n][0]).is_file()]
    acc = {} if a.speed_only else {n: accuracy(n, shared, not a.no_track) for n in names}
    ms = {} if a.no_speed else speed(names, shared, a.rounds, a.calls, False)
    ms_avx2 = speed(names, shared, a.rounds, a.calls, True) if a.emulate_avx2 and not a.no_speed else {}
    print_table(names, acc, ms, ms_avx2)
    if a.json:
        Path(a.json).write_text(json.dumps({"accuracy": acc, "ms": ms, "ms_avx2": ms_avx2}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

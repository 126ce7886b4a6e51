"""Tracking bench: our per-camera tracker's occlusion rules on / off, and ultralytics' trackers, on the
same detections (a detector of bench/detectors.py, cached) over PETS09-S2L1, EPFL terrace and the
two-camera sample.

* variants: ``mcmt run``'s default ``tracker:`` settings (pipeline.config), then each rule of
  trackers/occlusion.py and the appearance veto switched the other way (on if it is off by default, off if on), plus the rules
  all on / all off; the appearance tracker gets ReID features (mcmt run's default model, see bench/tracking_data.py) of every
  detection with score >= 0.5 (cached);
* peers: ultralytics' BYTETracker and BOTSORT (the classes ``model.track`` runs; its own
  bytetrack.yaml / botsort.yaml settings; BOTSORT fed our ReID features; no camera-motion compensation:
  the cameras are static) on the same detections.

Per footage, MOTA / IDF1 / HOTA of the cameras together (EPFL terrace: occluded boxes are don't-care);
the mean over footages, the worst loss against the defaults, and the update loop's frames/s.
These are the tracker alone, but for one row, "mcmt run, one camera": ``mcmt run`` itself on each camera
alone, fed the same detections as a det.txt (runs kept under runs/bench_tracking/), so the tracks it writes:
the default tracker followed by the association's joins within that camera (broken tracks linked,
re-entries clustered), with no other camera's help (no frames/s: bench/pipeline.py times the run). Peers have no such stage: their rows are what ``model.track`` gives.

Usage: python bench/tracking.py [--detector "2003 int8"] [--no-peers] [--footages pets09 epfl sample]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(REPO))

from bench import tracking_data as td  # noqa: E402
from bench.detectors import CANDIDATES, build, encoder_factory, tracker_params  # noqa: E402

# rule -> (setting when on, setting when off)
RULES = {
    "appearance veto": ("appearance_veto", 0.1, 0.0),
    "identity-switch split": ("switch_thresh", 0.25, 0.0),
    "gallery re-find": ("gallery_size", 30, 0),
    "OC-SORT re-update": ("observation_update", True, False),
    "OC-SORT recovery": ("recover_thresh", 0.5, 0.0),
    "no birth on a track": ("birth_iou", 0.7, 1.0),
    "lost tracks kept 3.6 s": ("track_buffer", 108, 30),
    "buffer in time (video fps)": ("frame_rate", 0.0, 30.0),
}


MCMT = "mcmt run, one camera"              # mcmt run itself on each camera alone, on the same detections


def variants() -> dict[str, dict]:
    """name -> tracker params: the defaults, each rule flipped, all rules on, all off."""
    base = tracker_params()
    out = {"defaults": base}
    for rule, (key, on, off) in RULES.items():
        flip = off if base[key] == on else on
        out[f"{'+' if flip == on else '-'} {rule}"] = {**base, key: flip}
    out["all rules on"] = {**base, **{k: on for k, on, _ in RULES.values()}}
    out["all rules off"] = {**base, **{k: off for k, _, off in RULES.values()}}
    out["bytetrack (IoU only)"] = {**base, "name": "bytetrack"}
    return out


def run_ours(params: dict, dets, feats, cams) -> tuple[list[np.ndarray], float, int]:
    """MOT rows per camera, seconds in update(), frames."""
    from trackers import build_tracker

    params = dict(params)
    name = params.pop("name")
    preds, sec, n = [], 0.0, 0
    for d, f, cam in zip(dets, feats, cams):
        tracker = build_tracker(name, **td.resolve_rate(params, cam))   # one instance per camera
        d64 = [x.astype(np.float64) for x in d]
        f = f if name != "bytetrack" else [None] * len(d)
        t0 = time.perf_counter()
        outs = [tracker.update(x, e) for x, e in zip(d64, f)]
        sec += time.perf_counter() - t0
        n += len(d)
        preds.append(td.to_mot(outs))
    return preds, sec, n


def run_mcmt(dets, cams, out: Path) -> tuple[list[np.ndarray], float, int]:
    """``mcmt run`` itself on each camera alone, fed the same detections (a MOTChallenge det.txt per
    camera under ``out``; run folders kept, so a rerun reuses their stage caches): the tracks it writes
    (``mot/<camera>.txt``), the tracker followed by the association's joins within that camera. Seconds: NaN
    (a rerun reuses the stage caches; bench/pipeline.py measures the run's speed)."""
    import subprocess

    from core.atomic import atomic_write_text

    preds, sec, n = [], float("nan"), 0
    for d, cam in zip(dets, cams):
        folder = out / cam.name
        folder.mkdir(parents=True, exist_ok=True)
        det = folder / "det.txt"
        rows = [f"{f + 1},-1,{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},{s:.4f},-1,-1,-1"
                for f, frame in enumerate(d) for x1, y1, x2, y2, s in frame[:, :5]]
        text = "\n".join(rows) + "\n"
        if not det.is_file() or det.read_text() != text:
            atomic_write_text(det, text)
        proc = subprocess.run([sys.executable, "-m", "pipeline.cli", "run", "--videos", str(cam.video),
                               "--detections", str(det), "--out", str(folder / "run"), "--no-progress",
                               "--replace"],
                              cwd=REPO, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"mcmt run failed on {cam.name}:\n{proc.stderr[-2000:]}")
        n += len(d)
        preds.append(td.read_mot_rows(folder / "run" / "mot" / f"{cam.video.stem}.txt"))
    return preds, sec, n


def run_ultralytics(kind: str, dets, feats, _cams=None) -> tuple[list[np.ndarray], float, int]:
    """ultralytics' BYTETracker / BOTSORT with its own default settings on the same detections."""
    from ultralytics.trackers.bot_sort import BOTSORT
    from ultralytics.trackers.byte_tracker import BYTETracker

    from bench.trackers_pets09 import UltralyticsBoxes

    args = dict(track_high_thresh=0.25, track_low_thresh=0.1, new_track_thresh=0.25, track_buffer=30,
                match_thresh=0.8, fuse_score=True)
    preds, sec, n = [], 0.0, 0
    for d, f in zip(dets, feats):
        if kind == "bytetrack":
            tracker, f = BYTETracker(SimpleNamespace(**args)), [None] * len(d)
        else:
            tracker = BOTSORT(SimpleNamespace(**args, gmc_method=None, proximity_thresh=0.5, appearance_thresh=0.8,
                                              with_reid=True, model="auto"))
        boxes = [UltralyticsBoxes(x) for x in d]
        t0 = time.perf_counter()
        outs = [tracker.update(b, None, e).reshape(-1, 8) for b, e in zip(boxes, f)]
        sec += time.perf_counter() - t0
        n += len(d)
        preds.append(td.to_mot(outs))
    return preds, sec, n


def load(detector: str, shared: Path, names) -> dict:
    """footage -> (cameras, detections, features), all cached."""
    out = {}
    for foot, cams in td.available(shared).items():
        if names and foot not in names:
            continue
        dets = [td.detections(detector, lambda: build(detector, shared, 1), c) for c in cams]
        feats = [td.embeddings(detector, d, c, encoder_factory) for d, c in zip(dets, cams)]
        out[foot] = (cams, dets, feats)
    return out


def table(rows: dict, foots: list[str]) -> None:
    base = rows.get("defaults")
    print(f"{'tracker':28}" + "".join(f" | {f[:8]:>8} MOTA  IDF1  HOTA" for f in foots)
          + " |  mean MOTA IDF1 | worst dMOTA dIDF1 | frames/s")
    for name, (res, fps) in rows.items():
        cells = "".join(f" | {'':8} {res[f]['MOTA']:5.1f} {res[f]['IDF1']:5.1f} {res[f]['HOTA']:5.1f}" for f in foots)
        mota, idf1 = np.mean([res[f]["MOTA"] for f in foots]), np.mean([res[f]["IDF1"] for f in foots])
        dm = min(res[f]["MOTA"] - base[0][f]["MOTA"] for f in foots) if base else np.nan
        di = min(res[f]["IDF1"] - base[0][f]["IDF1"] for f in foots) if base else np.nan
        print(f"{name:28}{cells} | {mota:10.1f} {idf1:4.1f} | {dm:11.1f} {di:5.1f} | {fps:8.0f}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shared", default=str(td.SHARED))
    p.add_argument("--detector", default="2003 int8", choices=list(CANDIDATES))
    p.add_argument("--footages", nargs="+", choices=["pets09", "epfl", "sample"])
    p.add_argument("--no-peers", action="store_true", help="skip ultralytics' trackers")
    p.add_argument("--no-mcmt", action="store_true", help="skip the 'mcmt run, one camera' row (runs the pipeline)")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="extra variant: the defaults with these tracker settings (e.g. gallery_size=10)")
    a = p.parse_args()
    data = load(a.detector, Path(a.shared), a.footages)
    if not data:
        print(f"no footage found under {a.shared}", file=sys.stderr)
        return 2
    runs = variants()
    if a.set:
        import yaml

        runs["--set " + " ".join(a.set)] = {**runs["defaults"],
                                            **{k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in a.set)}}
    jobs = {n: (lambda d, f, c, prm=prm: run_ours(prm, d, f, c)) for n, prm in runs.items()}
    if not a.no_mcmt:
        jobs[MCMT] = lambda d, f, c: run_mcmt(d, c, REPO / "runs" / "bench_tracking" / a.detector.replace(" ", "_"))
    if not a.no_peers:
        jobs["ultralytics BYTETracker"] = lambda d, f, c: run_ultralytics("bytetrack", d, f)
        jobs["ultralytics BOTSORT+reid"] = lambda d, f, c: run_ultralytics("botsort", d, f)
    rows = {}
    for name, job in jobs.items():
        res, sec, n = {}, 0.0, 0
        for foot, (cams, dets, feats) in data.items():
            preds, s, k = job(dets, feats, cams)
            res[foot] = td.score([td.read_gt(c) for c in cams], preds)
            sec, n = sec + s, n + k
        rows[name] = (res, n / max(sec, 1e-9))
        print(name, {f: {k: round(r[k], 1) for k in ("MOTA", "IDF1", "HOTA")} for f, r in res.items()}, flush=True)
    print(f"\ndetector {a.detector} (cached detections; default ReID features); the tracker alone, but for "
          f"'{MCMT}': what mcmt run writes for each camera alone (tracker + its association's joins there)")
    table(rows, list(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Camera calibration (issue 33): the ground plane's effect on a finished run, and its world positions.

    python bench/calibration.py --run runs/epfl --gt ../shared/data/epfl-terrace/gt \\
        --calibration runs/epfl_calibration.yaml          # default: the EPFL terrace published homographies
    python bench/calibration.py --run runs/pets --gt samples/gt --calibration runs/pets.yaml

(A calibration of the two-camera sample: 'mcmt calibrate' per camera on points taken from its ground
truth, samples/gt/mtmc.txt: foot points of the boxes inside the view and their MOT15 world positions.)

On a run folder's cached tracklets (no video is decoded), without writing files:

1. cross-camera IDF1 of the association without calibration, with it, with only the first camera
   calibrated (a partial calibration must not do worse than none), both again without the floor
   homography learned from the run (``association.overlap_geometry: false``: what the calibration alone
   brings), and the ORACLE (every tracklet its true identity: the association's ceiling for these tracks);
2. world positions: for each true identity seen by both cameras in the same frame, the ground distance
   between the two cameras' smoothed positions of the boxes matched to it (IoU >= 0.5), median; the
   ground truth's own boxes through the same homographies give the reference (EPFL terrace: 21 units;
   target: within 2x). Also per predicted identity seen by both cameras at once (the association's
   joins on the ground).

Targets are printed with PASS / FAIL.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from assoc_eval import RunData, _as_aicity  # noqa: E402

from pipeline.association.associate import associate_detailed  # noqa: E402
from pipeline.evaluation.mtmc import match_boxes  # noqa: E402
from pipeline.formats.calibration import foot_points  # noqa: E402
from pipeline.outputs.world import box_world, load_for_run  # noqa: E402
from pipeline.outputs.write import read_run_file  # noqa: E402
from pipeline.config import RunConfig  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "epfl-terrace"


def epfl_calibration(folder: Path) -> Path:
    """A calibration YAML for the EPFL terrace published homographies (written to a temporary folder)."""
    out = Path(tempfile.mkdtemp()) / "epfl_terrace.yaml"
    out.write_text("cameras:\n" + "".join(f"  {c}:\n    homography: {folder / 'calib' / (c + '.homography.txt')}\n"
                                          for c in ("terrace_c0", "terrace_c1")))
    return out


def positions_by_truth(run: RunData, ground, gids=None) -> dict:
    """{(camera, frame1, true id): (X, Y)} of the run's boxes matched to ground truth, and the same for the
    ground truth's own boxes (key prefixed "gt"); with ``gids`` also {(camera, frame1, predicted id): (X, Y)}."""
    pred_pos, gt_pos, by_pred = {}, {}, {}
    maps = {c: {} for c in run.cameras}
    if gids is not None:
        for t, g in zip(run.tracklets, gids):
            maps[t.camera][t.track_id] = int(g)
    for g_cam, cam in run.mapping.items():
        b = run.boxes[cam]
        world = box_world(b, ground, cam)
        gt = run.gt[g_cam]
        gt = gt[gt[:, 6] != 0]
        gxy = ground.to_ground(cam, foot_points(np.column_stack([gt[:, 2:4], gt[:, 2:4] + gt[:, 4:6]])))
        for row, xy in zip(gt, gxy):
            gt_pos[(cam, int(row[0]), int(row[1]))] = xy
        pred = np.column_stack([b[:, 0] + 1, b[:, 1], b[:, 2:4], b[:, 4:6] - b[:, 2:4], np.ones(len(b))])
        pred = np.column_stack([pred, np.full((len(b), 3), -1.0)])
        ig, ip, _ = match_boxes(_as_aicity(gt), _as_aicity(pred), 0.5)
        for a, p in zip(ig.tolist(), ip.tolist()):
            pred_pos[(cam, int(gt[a, 0]), int(gt[a, 1]))] = world[p]
        if gids is not None:
            for p in range(len(b)):
                g = maps[cam].get(int(b[p, 1]), 0)
                if g > 0:
                    by_pred[(cam, int(b[p, 0]) + 1, g)] = world[p]
    return {"pred": pred_pos, "gt": gt_pos, "by_pred": by_pred}


def cross_distances(pos: dict, cams: list) -> np.ndarray:
    """Ground distances between two cameras' positions with the same (frame, identity) key."""
    a, b = cams[:2]
    keys = {(f, i) for c, f, i in pos if c == a} & {(f, i) for c, f, i in pos if c == b}
    d = [np.hypot(*(np.asarray(pos[(a, f, i)]) - np.asarray(pos[(b, f, i)]))) for f, i in sorted(keys)]
    d = np.asarray(d, np.float64)
    return d[np.isfinite(d)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, help="a finished 'mcmt run' folder (its cache is read)")
    ap.add_argument("--gt", default=str(SHARED / "gt"), help="ground truth folder (MOTChallenge layout)")
    ap.add_argument("--calibration", help="calibration YAML (default: EPFL terrace's published homographies)")
    args = ap.parse_args(argv)
    run_dir = Path(args.run)
    cameras = read_run_file(run_dir)["cameras"]
    cfg = RunConfig()
    calib = Path(args.calibration) if args.calibration else epfl_calibration(SHARED)
    ground = load_for_run(str(calib), cameras)
    run = RunData.load(run_dir, args.gt)
    first = load_for_run(str(calib), cameras)
    first = type(first)({k: v for k, v in first.cameras.items() if k == run.cameras[0]}, first.units, first.path)
    rows, gids_cal = [], None
    no_learning = dataclasses.replace(cfg.association, overlap_geometry=False)
    for name, gr, acfg in (("without calibration", None, cfg.association), ("with calibration", ground, cfg.association),
                           (f"only {run.cameras[0]} calibrated", first, cfg.association),
                           ("no overlap learning, uncalibrated", None, no_learning),
                           ("no overlap learning, calibrated", ground, no_learning)):
        res = associate_detailed(run.tracklets, acfg, None, ground=gr)
        score = run.score(res.global_ids, per_camera=False)["cross"]
        rows.append((name, score["IDF1"], int(res.global_ids.max())))
        gids_cal = res.global_ids if gr is ground else gids_cal
    oracle = run.score(run.oracle_ids(), per_camera=False)["cross"]["IDF1"]
    print(f"{'association':<32} {'cross-camera IDF1':>17} {'identities':>10}")
    for name, idf1, n in rows:
        print(f"{name:<32} {idf1:17.1f} {n:10d}")
    print(f"{'oracle (these tracks)':<32} {oracle:17.1f}")
    pos = positions_by_truth(run, ground, gids_cal)
    d_pred, d_gt = cross_distances(pos["pred"], run.cameras), cross_distances(pos["gt"], run.cameras)
    d_ids = cross_distances(pos["by_pred"], run.cameras)
    base, cal, part = rows[0][1], rows[1][1], rows[2][1]
    checks = [("cross-camera IDF1 >= 70 with calibration", cal >= 70.0),
              ("calibration no worse than none", cal >= base - 0.05),
              ("partial calibration no worse than none", part >= base - 0.05)]
    if len(d_gt):
        print(f"world positions, same true identity in both cameras at once: median {np.median(d_pred):.1f} "
              f"({len(d_pred)} frames); ground truth boxes {np.median(d_gt):.1f} ({len(d_gt)})")
        checks.insert(1, ("world distance within 2x the ground truth's", np.median(d_pred) <= 2 * np.median(d_gt)))
    else:
        print("world positions: no true identity is seen by both cameras at once (views that do not overlap)")
    if len(d_ids):
        print(f"same predicted identity in both cameras at once: median {np.median(d_ids):.1f} ({len(d_ids)} frames)")
    for text, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Score cross-camera associations of a finished run in memory, and its ORACLE association.

Helpers for the association benches (``bench/association_oracle.py``, ``bench/multicam_pets.py``):
a run folder's cached tracklets and boxes are loaded once, then any global id per tracklet is scored
against the ground truth without writing files:

    from bench.assoc_eval import RunData       # with the repository root on sys.path
    run = RunData.load("runs/x", "samples/gt")
    ids = associate(run.tracklets, cfg)
    run.score(ids)["cross"]["IDF1"]
    run.score(run.oracle_ids())          # the ceiling: the trackers' errors only

The boxes scored are those the run writes: with ``output.interpolate`` (the default) a track's short gaps
filled (pipeline/outputs/interpolate.py; by identity, so after the association); ``RunData.load(...,
interpolate_seconds=None)`` scores the boxes as tracked, and ``run.tracked()`` is the same run without the
filled boxes.

The ORACLE gives every predicted tracklet the ground-truth identity whose boxes it overlaps most
(IoU >= 0.5, majority of its boxes); tracklets that match no true box keep an identity of their own.
The gap run -> oracle is the association's error, the gap oracle -> 100 the per-camera trackers'.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(REPO))                 # bench/pipeline.py must not hide the pipeline package

from pipeline.evaluation.layout import load_tracks, pair_sequences  # noqa: E402
from pipeline.evaluation.mot import evaluate_mot, preprocess  # noqa: E402
from pipeline.evaluation.mtmc import evaluate_multicam, match_boxes  # noqa: E402
from pipeline.outputs.interpolate import fill_cameras  # noqa: E402
from pipeline.outputs.write import load_all_tracklets, read_run_file  # noqa: E402
from pipeline.run.config import OutputConfig  # noqa: E402
from pipeline.outputs.writers import local_to_mot  # noqa: E402


@dataclass
class RunData:
    tracklets: list            # Tracklet of every camera, in load order
    boxes: dict                # camera -> (N, 7) frame0, local id, x1, y1, x2, y2, score
    gt: dict                   # gt camera -> (n, 10) MOT rows
    mapping: dict              # gt camera -> run camera
    cameras: list              # run camera names
    records: list | None = None          # run.json's camera records (fps, stride)
    interpolate_seconds: float | None = None   # the output's filled gaps (None: the boxes as tracked)

    @classmethod
    def load(cls, run_dir, gt_dir, max_frames: int | None = None,
             interpolate_seconds: float | None = OutputConfig.interpolate_seconds) -> "RunData":
        """``interpolate_seconds``: an identity's gaps filled as the run's outputs fill them (the default's
        ``output.interpolate_seconds``; None: the boxes as tracked)."""
        run_dir = Path(run_dir)
        records = read_run_file(run_dir)["cameras"]
        cams = [c["name"] for c in records]
        boxes: dict = {}
        tracklets, _, _ = load_all_tracklets(run_dir, cams, boxes)
        gt_names, gt = load_tracks(gt_dir)
        if max_frames:
            gt = {k: v[v[:, 0] <= max_frames] for k, v in gt.items()}
        return cls(tracklets, boxes, gt, pair_sequences(gt_names, cams), cams, records, interpolate_seconds)

    def tracked(self) -> "RunData":
        """This run scored on the boxes as tracked (no interpolated boxes)."""
        from dataclasses import replace

        return replace(self, interpolate_seconds=None)

    def mot(self, gids) -> dict:
        """Per-camera MOT rows (global ids) of one association; gids (T,) aligned with tracklets; with the
        output's filled gaps when ``interpolate_seconds`` is set (pipeline/outputs/interpolate.py)."""
        maps: dict = {c: {} for c in self.cameras}
        for t, g in zip(self.tracklets, gids):
            maps[t.camera][t.track_id] = int(g)
        if self.interpolate_seconds is None or self.records is None:
            return {c: local_to_mot(self.boxes[c], maps[c]) for c in self.cameras}
        boxes, maps, _ = fill_cameras(self.boxes, self.records, self.interpolate_seconds, maps)
        return {c: local_to_mot(boxes[c], maps[c]) for c in self.cameras}

    def score(self, gids, per_camera: bool = True) -> dict:
        """{"cross": multi-camera IDF1 + handoffs, "per_camera": {gt cam: HOTA/MOTA/IDF1...}}."""
        pred = self.mot(gids)
        out = {"cross": evaluate_multicam(self.gt, pred, self.mapping)}
        if per_camera:
            out["per_camera"] = {g: evaluate_mot(self.gt[g], pred[p]) for g, p in self.mapping.items()}
        return out

    def truth(self) -> np.ndarray:
        """(T,) ground-truth id each tracklet overlaps most (majority of its matched boxes); -1 none."""
        out = np.full(len(self.tracklets), -1, np.int64)
        index = {t.key: i for i, t in enumerate(self.tracklets)}
        for g, cam in self.mapping.items():
            b = self.boxes[cam]
            if not len(b):
                continue
            pred = local_to_mot(b, {int(k): int(k) for k in np.unique(b[:, 1])})
            gt, pred = preprocess(self.gt[g], pred, 0.5)
            gt9, pred9 = _as_aicity(gt), _as_aicity(pred)
            ig, ip, _ = match_boxes(gt9, pred9, 0.5)
            pairs, counts = np.unique(np.stack([pred9[ip, 1], gt9[ig, 1]], 1).astype(np.int64), axis=0,
                                      return_counts=True)
            order = np.lexsort((-counts, pairs[:, 0]))
            first = np.unique(pairs[order, 0], return_index=True)[1]
            for local, gid in pairs[order][first]:
                i = index.get((cam, int(local)))
                if i is not None:
                    out[i] = gid
        return out

    def oracle_ids(self) -> np.ndarray:
        """(T,) global ids: the true identity of each tracklet; unmatched tracklets alone."""
        truth = self.truth()
        ids = truth.copy()
        lone = np.flatnonzero(truth < 0)
        ids[lone] = truth.max(initial=0) + 1 + np.arange(len(lone))
        return ids


def _as_aicity(mot: np.ndarray) -> np.ndarray:
    """(n, 10) MOT rows of one camera -> (n, 9) AI City rows with camera 1."""
    out = np.zeros((len(mot), 9))
    out[:, 0] = 1
    out[:, 1] = mot[:, 1]
    out[:, 2] = mot[:, 0]
    out[:, 3:7] = mot[:, 2:6]
    return out


def summary_row(name: str, res: dict) -> str:
    """One table row: cross-camera IDF1, handoffs, identities, mean per-camera IDF1."""
    m = res["cross"]
    pc = res.get("per_camera") or {}
    cam_idf1 = " ".join(f"{v['IDF1']:5.1f}" for v in pc.values())
    ho = f"{m['handoffs_correct']}/{m['handoffs_missed']}/{m['handoffs_wrong']} of {m['handoffs_true']}"
    return (f"{name:<28} {m['IDF1']:7.1f} {ho:>16} {m['pred_ids']:>4}/{m['true_ids']:<3} "
            f"{m['pred_multicam_ids']:>3}/{m['true_multicam_ids']:<3} {cam_idf1}")


HEADER = (f"{'variant':<28} {'MC-IDF1':>7} {'handoffs ok/mis/wr':>16} {'ids':>8} {'multi':>7} per-camera IDF1")

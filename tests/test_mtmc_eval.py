"""Cross-camera metrics on hand-built cases with hand-computed answers, plus a motmetrics oracle."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.boxes import iou_pairs_xywh as box_iou_pairs
from pipeline.evaluation.mtmc import evaluate_mtmc, match_boxes, per_camera_idf1, same_key_pairs
from pipeline.formats.aicity import mot_to_mtmc, mtmc_to_mot, read_mtmc, write_mtmc


def track(cam: int, pid: int, frames: range, x: float, y: float = 50.0) -> np.ndarray:
    """A person standing still at (x, y) with a 20x40 box in `frames`: (len(frames), 9) AI City rows."""
    f = np.asarray(list(frames), float)
    n = len(f)
    return np.stack([np.full(n, cam), np.full(n, pid), f, np.full(n, x), np.full(n, y),
                     np.full(n, 20.0), np.full(n, 40.0), -np.ones(n), -np.ones(n)], 1)


def relabel(rows: np.ndarray, pid: int) -> np.ndarray:
    out = rows.copy()
    out[:, 1] = pid
    return out


# Two people: person 1 walks from camera 1 (frames 1-10) to camera 2 (frames 21-30);
# person 2 does the same at another place. Every visit has 10 boxes: 40 true boxes.
P1_C1, P1_C2 = track(1, 1, range(1, 11), 0), track(2, 1, range(21, 31), 0)
P2_C1, P2_C2 = track(1, 2, range(1, 11), 100), track(2, 2, range(21, 31), 100)
GT = np.vstack([P1_C1, P1_C2, P2_C1, P2_C2])


def test_iou_and_pairing_by_hand():
    a = np.array([[0, 0, 10, 10], [0, 0, 10, 10]], float)
    b = np.array([[5, 0, 10, 10], [20, 20, 5, 5]], float)
    # overlap 5x10 = 50, union 100 + 100 - 50 = 150
    np.testing.assert_allclose(box_iou_pairs(a, b), [50 / 150, 0.0])
    ia, ib = same_key_pairs(np.array([3, 1, 3]), np.array([1, 3, 3, 7]))
    assert sorted(zip(ia.tolist(), ib.tolist())) == [(0, 1), (0, 2), (1, 0), (2, 1), (2, 2)]


def test_match_needs_same_camera_and_frame():
    gt = track(1, 1, range(1, 3), 0)
    pred = np.vstack([track(2, 5, range(1, 3), 0), track(1, 6, range(2, 3), 0)])  # other camera; one frame
    ig, ip, ious = match_boxes(gt, pred)
    assert ig.tolist() == [1]
    assert ip.tolist() == [2]
    assert ious.tolist() == [1.0]


def test_perfect_prediction():
    pred = GT.copy()
    pred[:, 1] += 10  # id values are arbitrary
    m = evaluate_mtmc(GT, pred)
    assert m["IDF1"] == pytest.approx(100.0)
    assert m["IDTP"] == 40
    assert m["IDFP"] == 0
    assert m["IDFN"] == 0
    assert (m["true_ids"], m["pred_ids"], m["true_multicam_ids"], m["pred_multicam_ids"]) == (2, 2, 2, 2)
    assert (m["handoffs_true"], m["handoffs_correct"], m["handoffs_missed"]) == (2, 2, 0)
    assert (m["handoffs_pred"], m["handoffs_wrong"]) == (2, 0)


def test_swapped_pair_of_ids_in_second_camera():
    # camera 2 swaps the two people: each camera alone is perfect, across cameras half is lost.
    pred = np.vstack([P1_C1, relabel(P1_C2, 2), P2_C1, relabel(P2_C2, 1)])
    m = evaluate_mtmc(GT, pred)
    # counts: every (true, pred) pair co-occurs 10 times -> best assignment IDTP = 20 of 40
    assert m["IDTP"] == 20
    assert m["IDF1"] == pytest.approx(50.0)
    assert m["IDP"] == pytest.approx(50.0)
    assert (m["handoffs_true"], m["handoffs_correct"], m["handoffs_missed"]) == (2, 0, 2)
    assert (m["handoffs_pred"], m["handoffs_wrong"]) == (2, 2)
    assert per_camera_idf1(GT, pred) == {1: pytest.approx(100.0), 2: pytest.approx(100.0)}


def test_handoff_split_into_two_ids():
    gt = np.vstack([P1_C1, track(2, 1, range(21, 41), 0)])          # 10 boxes in cam 1, 20 in cam 2
    pred = np.vstack([relabel(P1_C1, 7), track(2, 8, range(21, 41), 0)])
    m = evaluate_mtmc(gt, pred)
    # best single pred id for the person is 8 (20 boxes): IDTP 20, IDF1 = 2*20 / (30 + 30)
    assert m["IDTP"] == 20
    assert m["IDFN"] == 10
    assert m["IDFP"] == 10
    assert m["IDF1"] == pytest.approx(200 * 20 / 60)
    assert m["IDR"] == pytest.approx(100 * 20 / 30)
    assert (m["true_ids"], m["pred_ids"], m["pred_multicam_ids"]) == (1, 2, 0)
    assert (m["handoffs_true"], m["handoffs_correct"], m["handoffs_missed"]) == (1, 0, 1)
    assert (m["handoffs_pred"], m["handoffs_wrong"]) == (0, 0)


def test_wrong_merge_of_two_people():
    gt = np.vstack([P1_C1, track(2, 2, range(21, 31), 0)])          # two people, one per camera
    pred = np.vstack([relabel(P1_C1, 3), track(2, 3, range(21, 31), 0)])
    m = evaluate_mtmc(gt, pred)
    assert m["IDTP"] == 10
    assert m["IDF1"] == pytest.approx(50.0)
    assert (m["handoffs_true"], m["handoffs_pred"], m["handoffs_wrong"]) == (0, 1, 1)


def test_handoff_read_at_the_boundary_not_the_majority():
    # In camera 1 the tracker switches id 5 -> 6 for the last 4 frames; camera 2 keeps 6.
    # The handoff itself is correct (6 -> 6) although id 5 covers most of the first visit.
    pred = np.vstack([relabel(P1_C1[:6], 5), relabel(P1_C1[6:], 6), relabel(P1_C2, 6)])
    m = evaluate_mtmc(np.vstack([P1_C1, P1_C2]), pred, window=3)
    assert (m["handoffs_true"], m["handoffs_correct"]) == (1, 1)
    assert m["IDTP"] == 14  # id 6 covers 4 + 10 boxes


def test_empty_prediction():
    m = evaluate_mtmc(GT, np.zeros((0, 9)))
    assert m["IDF1"] == 0.0
    assert m["IDFN"] == 40
    assert m["handoffs_missed"] == 2
    assert m["pred_ids"] == 0


def test_single_camera_idf1_matches_official_motmetrics_oracle():
    # motmetrics ships MOT15 TUD-Stadtmitte gt + a tracker output; official IDF1 64.5 %.
    mm = pytest.importorskip("motmetrics")
    root = Path(mm.__file__).parent / "data" / "TUD-Stadtmitte"
    if not (root / "gt.txt").is_file():
        pytest.skip("motmetrics test data not installed")
    load = lambda p: np.loadtxt(p, delimiter=",", ndmin=2)[:, :10]  # noqa: E731
    gt = mot_to_mtmc({"c": load(root / "gt.txt")}, ["c"])
    pred = mot_to_mtmc({"c": load(root / "test.txt")}, ["c"])
    gt = gt[np.loadtxt(root / "gt.txt", delimiter=",", ndmin=2)[:, 6] != 0]  # MOT15 gt: conf 0 = ignore
    assert evaluate_mtmc(gt, pred)["IDF1"] == pytest.approx(64.5, abs=0.05)


def test_mtmc_io_round_trip_and_commas(tmp_path):
    rows = np.vstack([P2_C2[:2], P1_C1[:2]])
    path = write_mtmc(tmp_path / "a" / "mtmc.txt", rows)
    back = read_mtmc(path)
    assert back.shape == (4, 9)
    assert back[0, :3].tolist() == [1, 1, 1]  # sorted by camera, frame, id
    (tmp_path / "c.txt").write_text("1,2,3,4.5,5,6,7\n\n2 9 1 0 0 1 1 0.5 -2\n")
    c = read_mtmc(tmp_path / "c.txt")
    assert c.tolist() == [[1, 2, 3, 4.5, 5, 6, 7, -1, -1], [2, 9, 1, 0, 0, 1, 1, 0.5, -2]]
    per = mtmc_to_mot(c, ["left", "right"])
    assert per["left"][0, :6].tolist() == [3, 2, 4.5, 5, 6, 7]
    assert len(per["right"]) == 1
    np.testing.assert_array_equal(mot_to_mtmc(per, ["left", "right"]), c)


def _write_mot(path: Path, rows9: np.ndarray) -> None:
    from pipeline.formats.mot import write_mot

    mot = np.full((len(rows9), 10), -1.0)
    mot[:, 0], mot[:, 1], mot[:, 2:6], mot[:, 6] = rows9[:, 2], rows9[:, 1], rows9[:, 3:7], 1.0
    write_mot(path, mot)


def test_evaluate_paths_reads_run_folders_gt_folders_and_mtmc_files(tmp_path):
    from pipeline.evaluation.mtmc import format_multicam
    from pipeline.evaluation.scores import evaluate_folders

    def evaluate_paths(pred, gt):
        return evaluate_folders(pred, gt).get("multi_camera")

    gt_dir, run = tmp_path / "gt", tmp_path / "run"
    for cam, name in ((1, "left"), (2, "right")):
        _write_mot(gt_dir / name / "gt" / "gt.txt", GT[GT[:, 0] == cam])
    swapped = np.vstack([P1_C1, relabel(P1_C2, 2), P2_C1, relabel(P2_C2, 1)])
    for cam, name in ((1, "left"), (2, "right")):
        _write_mot(run / "mot" / f"{name}.txt", swapped[swapped[:, 0] == cam])
    res = evaluate_paths(run, gt_dir)
    assert res["cameras"] == {"left": "left", "right": "right"}
    assert res["metrics"]["IDF1"] == pytest.approx(50.0)
    assert "handoffs: true 2, correct 0, missed 2; predicted 2, wrong 2" in format_multicam(res)
    # an AI City prediction without camera names is matched to the ground truth's cameras by position
    write_mtmc(tmp_path / "pred" / "mtmc.txt", GT)
    res = evaluate_paths(tmp_path / "pred" / "mtmc.txt", gt_dir)
    assert res["cameras"] == {"left": "1", "right": "2"}
    assert res["metrics"]["IDF1"] == pytest.approx(100.0)
    # a single-camera ground truth has no cross-camera section
    assert evaluate_paths(run, gt_dir / "left" / "gt" / "gt.txt") is None


def test_multicamera_idf1_equals_motmetrics_on_cameras_laid_end_to_end():
    # The AI City evaluation script shifts each camera's frames past the previous camera's and runs
    # motmetrics once over the concatenation; our vectorised version must give the same IDTP.
    from pipeline.evaluation.mot import _motmetrics

    mm = _motmetrics()
    path = Path(__file__).resolve().parents[1] / "samples" / "gt" / "mtmc.txt"
    assert path.is_file(), f"{path} is committed with the samples and missing (git checkout samples/)"
    gt = read_mtmc(path)
    gt = gt[gt[:, 2] <= 150]
    rng = np.random.default_rng(0)
    pred = gt.copy()
    pred[:, 3:5] += rng.normal(0, 4, (len(pred), 2))                  # some boxes fall below IoU 0.5
    cam2 = pred[:, 0] == 2
    pred[cam2, 1] = np.where(pred[cam2, 1] % 3 == 0, pred[cam2, 1] + 100, pred[cam2, 1])  # broken handoffs
    pred = pred[rng.random(len(pred)) > 0.1]                           # 10 % misses

    acc = mm.MOTAccumulator(auto_id=False)
    for cam in (1, 2):
        g, p = gt[gt[:, 0] == cam], pred[pred[:, 0] == cam]
        for f in np.unique(np.r_[g[:, 2], p[:, 2]]):
            gf, pf = g[g[:, 2] == f], p[p[:, 2] == f]
            dist = mm.distances.iou_matrix(gf[:, 3:7], pf[:, 3:7], max_iou=0.5)
            acc.update(gf[:, 1].astype(int), pf[:, 1].astype(int), dist, frameid=int(f + (cam - 1) * 1000))
    ref = mm.metrics.create().compute(acc, metrics=["idf1", "idtp"], name="x")
    m = evaluate_mtmc(gt, pred)
    assert m["IDTP"] == int(ref["idtp"].iloc[0])
    assert m["IDF1"] == pytest.approx(100 * float(ref["idf1"].iloc[0]))
    assert 40 < m["IDF1"] < 90                                           # a case far from trivial


def test_mcmt_eval_prints_the_cross_camera_section(tmp_path, capsys):
    from pipeline.cli import main

    gt_dir, run = tmp_path / "gt", tmp_path / "run"
    split = np.vstack([P1_C1, P2_C1, relabel(P1_C2, 5), relabel(P2_C2, 6)])   # every handoff split in two ids
    for cam, name in ((1, "left"), (2, "right")):
        _write_mot(gt_dir / name / "gt" / "gt.txt", GT[GT[:, 0] == cam])
        _write_mot(run / "mot" / f"{name}.txt", split[split[:, 0] == cam])
    write_mtmc(gt_dir / "mtmc.txt", GT)                 # both formats side by side, as samples/gt
    assert main(["eval", "--pred", str(run), "--gt", str(gt_dir), "--json", str(tmp_path / "s.json")]) == 0
    out = capsys.readouterr().out
    assert "cross-camera (2 cameras: left, right)" in out
    assert "IDF1  50.00" in out
    assert "handoffs: true 2, correct 0, missed 2; predicted 0, wrong 0" in out
    import json
    doc = json.loads((tmp_path / "s.json").read_text())
    assert doc["sequences"]["left"]["IDF1"] == pytest.approx(100.0)            # each camera alone is perfect
    assert doc["multi_camera"]["metrics"]["IDTP"] == 20
    # the AI City file alone works too; cameras are then matched by position
    assert main(["eval", "--pred", str(run), "--gt", str(gt_dir / "mtmc.txt")]) == 0
    assert "cross-camera (2 cameras: 1=left, 2=right)" in capsys.readouterr().out

"""MOT file I/O, HOTA on hand-computed cases, official motmetrics scores, `mcmt eval`."""
import json
import os

import numpy as np
import pytest

from pipeline.cli import main as cli_main
from core.errors import UserError
from core.boxes import iou_matrix_xywh as iou_xywh
from pipeline.evaluation.mot import evaluate_mot, hota, preprocess
from pipeline.formats.mot import read_mot, write_mot
from pipeline.evaluation.scores import evaluate_folders


def mot(rows):
    """(frame, id, x, y, w, h) rows -> (N, 10) MOT array."""
    rows = np.asarray(rows, dtype=float).reshape(-1, 6)
    return np.column_stack([rows, np.ones(len(rows)), -np.ones((len(rows), 3))])


def motmetrics_data():
    import motmetrics
    return os.path.join(os.path.dirname(motmetrics.__file__), "data")


# ----------------------------------------------------------------------------- I/O
def test_read_write_round_trip(tmp_path):
    rows = mot([[2, 1, 10.5, 20, 30, 40], [1, 2, 0, 0, 5, 5], [1, 1, 1, 2, 3, 4]])
    path = write_mot(tmp_path / "sub" / "a.txt", rows)
    back = read_mot(path)
    assert back[:, :2].tolist() == [[1, 1], [1, 2], [2, 1]]       # sorted by frame, id
    np.testing.assert_allclose(back[2, 2:6], [10.5, 20, 30, 40])
    assert not list(path.parent.glob(".*tmp"))                     # atomic write leaves no temp file


def test_read_mot_short_rows_whitespace_and_errors(tmp_path):
    p = tmp_path / "s.txt"
    p.write_text("1 3 10 20 30 40\n\n2,3,11,21,30,40,0.5\n")
    rows = read_mot(p)
    assert rows.shape == (2, 10)
    assert rows[0, 6] == 1
    assert rows[0, 7] == -1
    assert rows[1, 6] == 0.5
    p.write_text("1,3,10,20\n")
    with pytest.raises(UserError, match=":1: expected 6 to 10"):
        read_mot(p)
    with pytest.raises(UserError, match="not found"):
        read_mot(tmp_path / "missing.txt")
    (tmp_path / "e.txt").write_text("")
    assert read_mot(tmp_path / "e.txt").shape == (0, 10)


# ----------------------------------------------------------------------------- HOTA
def test_iou_xywh():
    iou = iou_xywh([[0, 0, 10, 10]], [[5, 5, 10, 10], [0, 0, 10, 5], [20, 20, 5, 5]])
    np.testing.assert_allclose(iou, [[25 / 175, 0.5, 0]])


def test_hota_perfect_and_empty():
    gt = mot([[f, i, 10 * i + f, 0, 5, 10] for f in range(1, 6) for i in (1, 2)])
    m = evaluate_mot(gt, gt)
    assert m["HOTA"] == pytest.approx(100)
    assert m["MOTA"] == pytest.approx(100)
    assert m["IDF1"] == pytest.approx(100)
    m = evaluate_mot(gt, np.zeros((0, 10)))
    assert m["HOTA"] == 0
    assert m["DetA"] == 0
    assert m["num_misses"] == 10


def test_hota_id_switch_halves_association():
    """One person, 4 frames, predicted as id 7 then id 8 with perfect boxes: DetA 1, AssA 0.5."""
    gt = mot([[f, 1, 0, 0, 10, 10] for f in range(1, 5)])
    pred = mot([[f, 7 if f <= 2 else 8, 0, 0, 10, 10] for f in range(1, 5)])
    m = evaluate_mot(gt, pred)
    assert m["DetA"] == pytest.approx(100)
    assert m["AssA"] == pytest.approx(50)                 # each match: 2 / (4 + 2 - 2)
    assert m["HOTA"] == pytest.approx(100 * np.sqrt(0.5))
    assert m["num_switches"] == 1


def test_hota_localisation_threshold_average():
    """IoU 0.62 everywhere: matched for the 12 alphas 0.05..0.60, unmatched for the 7 above."""
    gt = mot([[f, 1, 0, 0, 10, 10] for f in range(1, 4)])
    pred = mot([[f, 1, 0, 0, 10, 6.2] for f in range(1, 4)])
    m = evaluate_mot(gt, pred)
    assert m["HOTA"] == pytest.approx(100 * 12 / 19)
    assert m["DetA"] == pytest.approx(100 * 12 / 19)
    assert m["HOTA(0)"] == pytest.approx(100)


def test_hota_false_positive():
    """Perfect track plus one stray box: DetA = 2 / (2 + 1), AssA = 1."""
    gt = mot([[1, 1, 0, 0, 10, 10], [2, 1, 0, 0, 10, 10]])
    pred = mot([[1, 5, 0, 0, 10, 10], [2, 5, 0, 0, 10, 10], [2, 6, 100, 100, 10, 10]])
    m = evaluate_mot(gt, pred)
    assert m["DetA"] == pytest.approx(100 * 2 / 3)
    assert m["AssA"] == pytest.approx(100)
    assert m["HOTA"] == pytest.approx(100 * np.sqrt(2 / 3))
    assert m["num_false_positives"] == 1
    assert m["MOTA"] == pytest.approx(50)


def test_hota_pure_function_on_frames():
    frames = [(np.array([3]), np.array([9]), np.array([[1.0]]))] * 3
    res = hota(frames)
    assert res["HOTA"] == pytest.approx(1.0)
    assert len(res["per_alpha"]["HOTA"]) == 19


# ----------------------------------------------------------------------------- official scores
@pytest.mark.parametrize("seq,mota,idf1,fp,fn,idsw", [
    ("TUD-Campus", 52.6, 55.8, 13, 150, 7),
    ("TUD-Stadtmitte", 56.4, 64.5, 45, 452, 7),
])
def test_reproduces_official_motchallenge_scores(seq, mota, idf1, fp, fn, idsw):
    folder = os.path.join(motmetrics_data(), seq)
    if not os.path.isdir(folder):
        pytest.skip(f"motmetrics package data not installed: {folder}")
    m = evaluate_mot(read_mot(os.path.join(folder, "gt.txt")), read_mot(os.path.join(folder, "test.txt")))
    assert round(m["MOTA"], 1) == mota
    assert round(m["IDF1"], 1) == idf1
    assert (m["num_false_positives"], m["num_misses"], m["num_switches"]) == (fp, fn, idsw)
    assert 0 < m["HOTA"] < 100
    assert m["HOTA"] == pytest.approx(np.sqrt(m["DetA"] * m["AssA"]), rel=0.05)


# ----------------------------------------------------------------------------- MOT16/17 rules
def test_preprocess_mot17_distractors_and_zero_marked():
    rows = [[1, 1, 0, 0, 10, 10, 1, 1, 1.0, -1],      # pedestrian
            [1, 2, 50, 0, 10, 10, 1, 7, 0.5, -1],      # static person: distractor
            [1, 3, 100, 0, 10, 10, 0, 1, 1.0, -1]]     # zero-marked pedestrian: ignored
    gt = np.array(rows, dtype=float)
    pred = mot([[1, 1, 0, 0, 10, 10], [1, 2, 50, 0, 10, 10], [1, 3, 100, 0, 10, 10]])
    g, p = preprocess(gt, pred)
    assert g[:, 1].tolist() == [1]
    assert p[:, 1].tolist() == [1, 3]                   # the box on the distractor is dropped
    m = evaluate_mot(gt, pred)
    assert m["num_false_positives"] == 1
    assert m["num_misses"] == 0


# ----------------------------------------------------------------------------- mcmt eval
def _write_layout(tmp_path):
    gt_a = mot([[f, 1, 10 * f, 0, 20, 40] for f in range(1, 11)])
    gt_b = mot([[f, 1, 0, 5 * f, 20, 40] for f in range(1, 6)] + [[f, 2, 200, 0, 20, 40] for f in range(1, 6)])
    for name, rows in (("seqA", gt_a), ("seqB", gt_b)):
        write_mot(tmp_path / "gt" / name / "gt" / "gt.txt", rows)
    write_mot(tmp_path / "pred" / "seqA.txt", gt_a)
    pred_b = gt_b.copy()
    pred_b[pred_b[:, 1] == 2, 2] += 100                # id 2 completely missed + 5 false positives
    write_mot(tmp_path / "pred" / "seqB.txt", pred_b)
    return gt_a, gt_b


def test_evaluate_folders_trackeval_layout_and_combined(tmp_path):
    _write_layout(tmp_path)
    res = evaluate_folders(tmp_path / "pred", tmp_path / "gt")
    assert set(res["sequences"]) == {"seqA", "seqB"}
    assert res["sequences"]["seqA"]["IDF1"] == pytest.approx(100)
    assert res["sequences"]["seqB"]["num_misses"] == 5
    assert res["sequences"]["seqB"]["num_false_positives"] == 5
    comb = res["combined"]
    assert comb["num_misses"] == 5
    assert comb["num_false_positives"] == 5
    assert comb["MOTA"] == pytest.approx(100 * (1 - 10 / 20))
    assert comb["num_unique_objects"] == 3


def test_mcmt_eval_cli(tmp_path, capsys):
    _write_layout(tmp_path)
    out_json = tmp_path / "scores.json"
    assert cli_main(["eval", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"),
                     "--json", str(out_json)]) == 0
    table = capsys.readouterr().out
    assert "seqA" in table
    assert "COMBINED" in table
    assert "HOTA" in table
    data = json.loads(out_json.read_text())
    assert data["sequences"]["seqA"]["MOTA"] == pytest.approx(100)
    (tmp_path / "pred" / "seqB.txt").unlink()
    assert cli_main(["eval", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt")]) == 2
    assert "seqB" in capsys.readouterr().err


def test_single_files_and_sequence_folder(tmp_path, shared_dir):
    seq = shared_dir / "data" / "pets09-s2l1"
    gt = read_mot(seq / "gt" / "gt.txt")
    write_mot(tmp_path / "mine.txt", gt[gt[:, 6] != 0])
    res = evaluate_folders(tmp_path / "mine.txt", seq)
    assert list(res["sequences"]) == ["pets09-s2l1"]
    assert res["combined"]["HOTA"] == pytest.approx(100, abs=0.01)
    assert res["combined"]["num_unique_objects"] == 19

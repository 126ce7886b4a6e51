"""HOTA, MOTA and IDF1 of ``pipeline.evaluation.mot`` against TrackEval (the MOTChallenge reference
implementation, ``trackeval`` on PyPI) as the oracle, on real sequences: the tracker outputs that
motmetrics ships for MOT15 TUD-Campus / TUD-Stadtmitte, and our ByteTracker on the MOT15 public
detections of PETS09-S2L1."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import shared_path
from core.frames import group_by_frame
from pipeline.evaluation.mot import evaluate_mot
from pipeline.formats.mot import read_mot, write_mot
from trackers import build_tracker

trackeval = pytest.importorskip("trackeval")     # optional: the dev extra installs it


def trackeval_scores(root: Path, sequences: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, dict]:
    """TrackEval's HOTA / CLEAR / Identity per sequence (percent) from its own MOT15 folder layout."""
    for seq, (gt, pred) in sequences.items():
        folder = root / "gt" / "MOT15-train" / seq
        write_mot(folder / "gt" / "gt.txt", gt)
        length = int(max(gt[:, 0].max(initial=1), pred[:, 0].max(initial=1)))
        (folder / "seqinfo.ini").write_text(f"[Sequence]\nname={seq}\nseqLength={length}\n")
        write_mot(root / "trackers" / "MOT15-train" / "mine" / "data" / f"{seq}.txt", pred)
    quiet = dict(USE_PARALLEL=False, PRINT_RESULTS=False, PRINT_CONFIG=False, OUTPUT_SUMMARY=False,
                 OUTPUT_DETAILED=False, PLOT_CURVES=False, TIME_PROGRESS=False)
    eval_cfg = {**trackeval.Evaluator.get_default_eval_config(), **quiet}
    data_cfg = {**trackeval.datasets.MotChallenge2DBox.get_default_dataset_config(),
                "GT_FOLDER": str(root / "gt"), "TRACKERS_FOLDER": str(root / "trackers"), "BENCHMARK": "MOT15",
                "SPLIT_TO_EVAL": "train", "TRACKERS_TO_EVAL": ["mine"], "PRINT_CONFIG": False,
                "SEQ_INFO": {s: None for s in sequences}}
    metrics = [trackeval.metrics.HOTA(), trackeval.metrics.CLEAR(), trackeval.metrics.Identity()]
    res, _ = trackeval.Evaluator(eval_cfg).evaluate([trackeval.datasets.MotChallenge2DBox(data_cfg)], metrics)
    out = {}
    for seq in sequences:
        r = res["MotChallenge2DBox"]["mine"][seq]["pedestrian"]
        out[seq] = {"HOTA": 100 * float(np.mean(r["HOTA"]["HOTA"])), "DetA": 100 * float(np.mean(r["HOTA"]["DetA"])),
                    "AssA": 100 * float(np.mean(r["HOTA"]["AssA"])), "MOTA": 100 * float(r["CLEAR"]["MOTA"]),
                    "IDF1": 100 * float(r["Identity"]["IDF1"])}
    return out


def bytetrack_on_public_detections(det_file: Path) -> np.ndarray:
    """MOT rows of our ByteTracker run on a MOTChallenge det file (scores scaled to 0..1)."""
    det = read_mot(det_file)
    boxes = np.column_stack([det[:, 2:4], det[:, 2:4] + det[:, 4:6], det[:, 6] / det[:, 6].max(),
                             np.zeros(len(det))]).astype(np.float32)          # (N, 6) xyxy, score, cls
    by_frame = group_by_frame(det[:, 0], boxes)
    tracker, rows = build_tracker("bytetrack"), []
    for frame in range(1, int(det[:, 0].max()) + 1):
        for x1, y1, x2, y2, tid, score, *_ in tracker.update(by_frame.get(frame, np.zeros((0, 6), np.float32))):
            rows.append([frame, tid, x1, y1, x2 - x1, y2 - y1, score, -1, -1, -1])
    return np.asarray(rows, np.float64)


def motmetrics_sequences() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    motmetrics = pytest.importorskip("motmetrics")
    data = Path(motmetrics.__file__).parent / "data"
    if not (data / "TUD-Campus" / "gt.txt").is_file():
        pytest.skip(f"motmetrics package data not installed: {data}")
    return {seq: (read_mot(data / seq / "gt.txt"), read_mot(data / seq / "test.txt"))
            for seq in ("TUD-Campus", "TUD-Stadtmitte")}


@pytest.fixture(scope="module")
def oracle(tmp_path_factory):
    sequences = motmetrics_sequences()
    pets = shared_path("data", "pets09-s2l1")
    sequences["PETS09-S2L1"] = (read_mot(pets / "gt" / "gt.txt"), bytetrack_on_public_detections(pets / "det" / "det.txt"))
    root = tmp_path_factory.mktemp("trackeval")
    try:
        return sequences, trackeval_scores(root, sequences)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize("seq", ["TUD-Campus", "TUD-Stadtmitte", "PETS09-S2L1"])
@pytest.mark.parametrize("metric", ["HOTA", "DetA", "AssA", "MOTA", "IDF1"])
def test_metric_equals_trackeval(oracle, seq, metric):
    sequences, reference = oracle
    ours = evaluate_mot(*sequences[seq])
    assert ours[metric] == pytest.approx(reference[seq][metric], abs=0.1)


def test_oracle_sequences_are_not_trivial(oracle):
    """The compared tracker outputs have real errors (a perfect output would hide metric bugs)."""
    _, reference = oracle
    assert all(20 < r["HOTA"] < 90 for r in reference.values())

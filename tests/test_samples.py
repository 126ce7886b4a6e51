"""The PETS 2009 two-camera sample generator (samples/make_pets_multicam.py) on a few real frames."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import REPO, shared_path
from pipeline.formats.aicity import read_mtmc

spec = importlib.util.spec_from_file_location("make_pets_multicam", REPO / "samples" / "make_pets_multicam.py")
mpm = importlib.util.module_from_spec(spec)
sys.modules.setdefault("make_pets_multicam", mpm)
spec.loader.exec_module(mpm)


def read_frames(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    cap.release()
    return frames


def test_view_boxes_clip_shift_scale_by_hand():
    view = mpm.View("v", x0=100, x1=300, y0=50, y1=250, scale=0.5)           # 200x200 -> 100x100
    gt = np.array([[1, 1, 120, 60, 20, 40, 1, 0, 0, 0],      # inside
                   [1, 2, 290, 60, 20, 40, 1, 0, 0, 0],      # half outside on the right: kept, clipped
                   [1, 3, 295, 60, 20, 40, 1, 0, 0, 0],      # a quarter inside: dropped
                   [1, 4, 10, 60, 20, 40, 1, 0, 0, 0]], float)  # outside
    out = mpm.view_boxes(gt, view, min_visible=0.5)
    assert out[:, 1].tolist() == [1, 2]
    np.testing.assert_allclose(out[0, 2:6], [10, 5, 10, 20])   # ((120-100)*.5, (60-50)*.5, 20*.5, 40*.5)
    np.testing.assert_allclose(out[1, 2:6], [95, 5, 5, 20])    # clipped to x 290..300


def test_views_leave_a_blind_strip_and_third_view_changes_colour():
    left, right, third = mpm.default_views(768, 576, blind=80, scale=0.75, third=True)
    assert (left.x1, right.x0, right.x1) == (344, 424, 768)
    assert left.size == (258, 384)
    lut = mpm.colour_lut(third)                                            # B gain 0.75, R gain 1.2, gamma 0.8
    assert lut[255, 0].tolist() == [round(255 * 0.75 ** 0.8), round(255 * 0.95 ** 0.8), 255]  # [203, 245, 255]
    assert lut[0, 0].tolist() == [0, 0, 0]
    assert third.size[1] < left.size[1]


def test_generator_on_real_frames(tmp_path):
    video = shared_path("data", "pets09-s2l1", "vtest.avi")
    gt_src = shared_path("data", "pets09-s2l1", "gt", "gt.txt")
    s = mpm.make(video, gt_src, tmp_path, start=11, max_frames=6, third=True)
    assert s["frames"] == 6
    for name, size in (("pets_left", (258, 384)), ("pets_right", (258, 384)), ("pets_third", (216, 288))):
        frames = read_frames(tmp_path / f"{name}.mp4")
        assert len(frames) == 6
        assert frames[0].shape == (size[1], size[0], 3)
        assert (tmp_path / "gt" / name / "seqinfo.ini").read_text().count("seqLength=6") == 1

    src = np.loadtxt(gt_src, delimiter=",")
    left = np.loadtxt(tmp_path / "gt" / "pets_left" / "gt" / "gt.txt", delimiter=",", ndmin=2)
    right = np.loadtxt(tmp_path / "gt" / "pets_right" / "gt" / "gt.txt", delimiter=",", ndmin=2)
    mtmc = read_mtmc(tmp_path / "gt" / "mtmc.txt")
    assert sorted(np.unique(mtmc[:, 2])) == [1, 2, 3, 4, 5, 6]          # source frames 11..16 renumbered
    # id 15 walks right: 58 % of its box is left of x=344 in frame 12, 39 % in frame 13 -> leaves after frame 2
    assert left[left[:, 1] == 15, 0].tolist() == [1, 2]
    # source frame 11, id 15 is at x 320..351 (77 % left of 344): in the left camera clipped to 320..344,
    # (x, y, w, h) -> (x * .75, (y - 64) * .75, (344 - x) * .75, h * .75)
    r = src[(src[:, 0] == 11) & (src[:, 1] == 15)][0]
    got = left[(left[:, 0] == 1) & (left[:, 1] == 15)][0]
    np.testing.assert_allclose(got[2:6], [r[2] * .75, (r[3] - 64) * .75, (344 - r[2]) * .75, r[5] * .75], atol=0.01)
    # nobody is in both side cameras at once (the blind strip is wider than a person's half width)
    both = set(map(tuple, left[:, :2].astype(int))) & set(map(tuple, right[:, :2].astype(int)))
    assert not both
    # the AI City file is the union of the per-camera files with camera ids 1, 2, 3 and global ids
    assert np.bincount(mtmc[:, 0].astype(int))[1:3].tolist() == [len(left), len(right)]
    ids = np.unique(src[(src[:, 0] >= 11) & (src[:, 0] <= 16) & (src[:, 6] != 0), 1])
    assert set(np.unique(mtmc[:, 1])) == set(ids)


def test_generator_without_ground_truth_writes_clips_only(tmp_path):
    video = shared_path("data", "pets09-s2l1", "vtest.avi")
    s = mpm.make(video, None, tmp_path, max_frames=2)
    assert s["frames"] == 2
    assert not (tmp_path / "gt").exists()
    assert sorted(p.name for p in tmp_path.glob("*.mp4")) == ["pets_left.mp4", "pets_right.mp4"]


def test_committed_samples_match_their_ground_truth():
    gt = REPO / "samples" / "gt" / "mtmc.txt"
    missing = [str(p.relative_to(REPO)) for p in (gt, REPO / "samples" / "pets_left.mp4", REPO / "samples" / "pets_right.mp4")
               if not p.is_file()]
    assert not missing, f"committed sample files are missing: {missing} (git checkout samples/)"   # never a skip
    rows = read_mtmc(gt)
    assert set(np.unique(rows[:, 0])) == {1, 2}
    assert len(np.unique(rows[:, 1])) == 19
    cap = cv2.VideoCapture(str(REPO / "samples" / "pets_left.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 795
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(7)
    cap.release()
    assert rows[:, 2].max() <= 795
    assert (rows[:, 3] >= 0).all()
    assert (rows[:, 3] + rows[:, 5] <= 258.01).all()


@pytest.mark.slow
def test_multicam_benchmark_end_to_end_on_a_few_frames(tmp_path):
    """bench/multicam_pets.py: the real pipeline (offline detector, OpenVINO ReID) on 15 frames, scored."""
    import json

    shared_path("models", "yolov8n_saved_model", "yolov8n_full_integer_quant.tflite")
    reid = shared_path("models", "openvino", "person-reidentification-retail-0286", "FP16",
                       "person-reidentification-retail-0286.xml")
    spec_b = importlib.util.spec_from_file_location("multicam_pets", REPO / "bench" / "multicam_pets.py")
    bench = importlib.util.module_from_spec(spec_b)
    spec_b.loader.exec_module(bench)
    assert bench.main(["--max-frames", "15", "--out", str(tmp_path / "runs"), "--reid", str(reid),
                       "--json", str(tmp_path / "b.json")]) == 0
    results = json.loads((tmp_path / "b.json").read_text())["results"]
    assert list(results) == [str(reid)]
    res = results[str(reid)]
    assert set(res) == set(bench.VARIANTS) | {"oracle", "oracle, no overlap", "no association", "topology"}
    none = res["no association"]["cross"]
    assert none["pred_multicam_ids"] == 0
    assert none["handoffs_pred"] == 0  # ids kept per camera
    assert none["pred_ids"] >= res["defaults"]["cross"]["pred_ids"]
    assert res["oracle"]["cross"]["IDF1"] >= res["defaults"]["cross"]["IDF1"]     # the oracle is the ceiling
    for v in res.values():                                                 # the detector finds people
        assert v["per_camera"]["pets_left"]["MOTA"] > 30
        assert v["cross"]["true_ids"] == 3  # ids 9, 15, 19

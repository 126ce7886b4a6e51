"""Boxes of the frames between two boxes of one identity in a camera (``output.interpolate``): the rule on
generated boxes, a real ``mcmt run --stride 2`` of the two-camera sample whose output then has a box on every
frame of a track, and a person whose detections are missing for five frames."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.cli import main as mcmt
from pipeline.formats.mot import read_mot
from pipeline.outputs.interpolate import fill_camera, fill_gaps, gap_limit

REPO = Path(__file__).resolve().parents[1]
CAMS = ("pets_left", "pets_right")


def test_fill_gaps_fills_only_gaps_up_to_the_limit():
    # frame, local id, x1, y1, x2, y2, score: track 1 at 0, 2, 4, then lost until 10; track 2 at 2 and 4
    boxes = np.array([[0, 1, 0, 0, 10, 20, 0.9], [2, 1, 4, 0, 14, 20, 0.7], [4, 1, 8, 2, 18, 22, 0.8],
                      [10, 1, 20, 2, 30, 22, 0.9], [4, 2, 50, 50, 60, 70, 0.6], [2, 2, 40, 50, 50, 70, 0.5]])
    out, added = fill_gaps(boxes, 2)
    assert added == 3 and len(out) == 9
    one = out[out[:, 1] == 1]
    assert one[:, 0].tolist() == [0, 1, 2, 3, 4, 10]                  # 5..9: longer than the limit, left
    np.testing.assert_allclose(one[1, 2:7], [2, 0, 12, 20, 0.7])      # halfway, the lower score
    np.testing.assert_allclose(one[3, 2:7], [6, 1, 16, 21, 0.7])
    two = out[out[:, 1] == 2]
    np.testing.assert_allclose(two[:, 0], [2, 3, 4])                  # tracks are never bridged to each other
    np.testing.assert_allclose(two[1, 2:7], [45, 50, 55, 70, 0.5])
    six, n6 = fill_gaps(boxes[:4], 6)                                 # the 6-frame gap too, on a straight line
    assert n6 == 2 + 5 and six[:, 0].tolist() == list(range(11))
    np.testing.assert_allclose(six[7, 2:6], [8 + 12 * 3 / 6, 2, 18 + 12 * 3 / 6, 22])
    np.testing.assert_allclose(fill_gaps(boxes, 1)[0], boxes)        # no gap allowed: nothing changes
    assert fill_gaps(boxes[:1], 2)[1] == 0


def test_the_gap_limit_is_the_stride_or_the_seconds_at_the_camera_fps():
    assert gap_limit(1, 25.0, 0.0) == 1 and gap_limit(3, 25.0, 0.0) == 3          # the stride's gaps only
    assert gap_limit(1, 25.0, 2.0) == 50 and gap_limit(3, 7.0, 2.0) == 14
    assert gap_limit(100, 7.0, 2.0) == 100                                           # a stride longer than that
    boxes = np.array([[0, 1, 0, 0, 10, 20, 0.9], [14, 1, 14, 0, 24, 20, 0.9], [40, 1, 40, 0, 50, 20, 0.9]])
    out, added = fill_camera(boxes, {"name": "c", "fps": 7.0, "stride": 1}, 2.0)     # 13 frames at 7 fps: filled
    assert added == 13 and out[:, 0].tolist() == list(range(15)) + [40]             # 26 frames (3.7 s): not


def test_the_gap_between_two_tracklets_of_one_identity_is_filled_by_global_id():
    # local tracks 1 (frames 0-3) and 2 (frames 6-8) that the association gave identity 5; track 3 dropped (0)
    boxes = np.array([[f, 1, f, 0, f + 10, 20, 0.9] for f in range(4)] + [[f, 2, f, 0, f + 10, 20, 0.8] for f in
                     range(6, 9)] + [[f, 3, 50, 50, 60, 70, 0.9] for f in (0, 2)], float)
    cam = {"name": "c", "fps": 7.0, "stride": 1}
    by_track, n_track = fill_camera(boxes, cam, 2.0)
    assert n_track == 1 and 4 not in by_track[by_track[:, 1] <= 2, 0]         # tracks 1 and 2 are not bridged
    out, added = fill_camera(boxes, cam, 2.0, {1: 5, 2: 5, 3: 0})
    assert added == 2 and set(out[:, 1].tolist()) == {5}                     # global ids; track 3 left out
    np.testing.assert_allclose(out[:, 0], np.arange(9))
    np.testing.assert_allclose(out[4, 2:7], [4, 0, 14, 20, 0.8])
    empty, none = fill_camera(np.zeros((0, 7)), cam, 2.0, {})
    assert none == 0 and empty.shape == (0, 7)


def _gt(cam: str) -> np.ndarray:
    return np.loadtxt(REPO / "samples" / "gt" / cam / "gt" / "gt.txt", delimiter=",")


def _run(tmp_path: Path, name: str, *extra: str) -> Path:
    """The sample's ground truth as the detector (every box, score 1), no ReID, every 2nd of 80 frames."""
    files = []
    for cam in CAMS:
        g = _gt(cam)
        g = g[g[:, 0] <= 80]
        det = np.column_stack([g[:, 0], np.full(len(g), -1), g[:, 2:6], np.ones(len(g)), -np.ones((len(g), 3))])
        files.append(tmp_path / f"{cam}_det.txt")
        np.savetxt(files[-1], det, fmt="%.2f", delimiter=",")
    out = tmp_path / name
    code = mcmt(["run", "--videos", *(str(REPO / "samples" / f"{c}.mp4") for c in CAMS), "--out", str(out),
                 "--detections", *map(str, files), "--reid", "none", "--stride", "2", "--max-frames", "40",
                 "--no-progress", "-q", *extra])
    assert code == 0
    return out


def test_a_strided_run_gives_a_box_on_every_frame_of_a_track(tmp_path):
    import json

    filled = _run(tmp_path, "filled")
    plain = _run(tmp_path, "plain", "--set", "output.interpolate=false")
    summary = json.loads((filled / "identities.json").read_text())["summary"]
    assert summary["interpolated_boxes"] > 0
    ious = []                      # of every filled box, both cameras (the left one fills only about 10)
    for cam in CAMS:
        f, p = read_mot(filled / "mot" / f"{cam}.txt"), read_mot(plain / "mot" / f"{cam}.txt")
        assert len(p) and set((p[:, 0] - 1) % 2) == {0}                # analysed frames only: 1, 3, 5, ...
        kept = {tuple(r) for r in np.round(p[:, :6], 2).tolist()}
        assert kept <= {tuple(r) for r in np.round(f[:, :6], 2).tolist()}   # the analysed boxes unchanged
        for gid in np.unique(f[:, 1]):
            gaps = np.diff(np.sort(f[f[:, 1] == gid, 0]))
            assert gaps.min() >= 1 and not ((gaps > 1) & (gaps <= 14)).any()   # no gap of up to 2 s at 7 fps
        # the filled boxes are where the people were: IoU with the ground truth box of that frame
        g = _gt(cam)
        added = np.array([r for r in f if tuple(np.round(r[:6], 2)) not in kept])
        assert len(added) >= 0.8 * len(p) - 2 * len(np.unique(p[:, 1]))
        for r in added:
            same = g[g[:, 0] == r[0]]
            a, b = r[2:6], same[:, 2:6]
            iw = np.clip(np.minimum(a[0] + a[2], b[:, 0] + b[:, 2]) - np.maximum(a[0], b[:, 0]), 0, None)
            ih = np.clip(np.minimum(a[1] + a[3], b[:, 1] + b[:, 3]) - np.maximum(a[1], b[:, 1]), 0, None)
            ious.append((iw * ih / (a[2] * a[3] + b[:, 2] * b[:, 3] - iw * ih)).max())
    assert np.median(ious) > 0.85 and np.mean(np.array(ious) > 0.5) > 0.95


def test_a_person_missed_for_five_frames_gets_boxes_there(tmp_path):
    """Real boxes: the sample's right camera with its ground truth as the detector, person 13's boxes of frames
    78-82 removed (missed detections, under 1 s at 7 frames/s, while three others walk in view): the tracker
    keeps the track and finds it again, and the output fills the five frames where the person walked; with
    interpolate_seconds 0 they stay empty."""
    g = _gt("pets_right")
    g = g[g[:, 0] <= 120]
    hole = (g[:, 1] == 13) & (g[:, 0] >= 78) & (g[:, 0] <= 82)
    assert hole.sum() == 5
    kept = g[~hole]
    det = np.column_stack([kept[:, 0], np.full(len(kept), -1), kept[:, 2:6], np.ones(len(kept)),
                           -np.ones((len(kept), 3))])
    np.savetxt(tmp_path / "det.txt", det, fmt="%.2f", delimiter=",")
    outs = {}
    for secs in ("2.0", "0"):
        out = tmp_path / f"run{secs}"
        assert mcmt(["run", "--videos", str(REPO / "samples" / "pets_right.mp4"), "--out", str(out), "--detections",
                     str(tmp_path / "det.txt"), "--reid", "none", "--max-frames", "120", "--no-progress", "-q",
                     "--set", f"output.interpolate_seconds={secs}"]) == 0
        outs[secs] = read_mot(out / "mot" / "pets_right.txt")
    for secs, rows in outs.items():
        best = []
        for t in g[hole]:
            same = rows[rows[:, 0] == t[0]]
            a = t[2:6]
            iw = np.clip(np.minimum(a[0] + a[2], same[:, 2] + same[:, 4]) - np.maximum(a[0], same[:, 2]), 0, None)
            ih = np.clip(np.minimum(a[1] + a[3], same[:, 3] + same[:, 5]) - np.maximum(a[1], same[:, 3]), 0, None)
            iou = iw * ih / (a[2] * a[3] + same[:, 4] * same[:, 5] - iw * ih)
            best.append((float(iou.max()), int(same[iou.argmax(), 1])) if len(iou) else (0.0, 0))
        if secs == "0":
            assert max(b[0] for b in best) < 0.3                       # nobody there: five misses
        else:                                                          # the person, where they walked, one id
            assert min(b[0] for b in best) > 0.7 and len({b[1] for b in best}) == 1

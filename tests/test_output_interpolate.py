"""Boxes of the frames a stride skipped (``output.interpolate``): the rule on generated boxes, and a real
``mcmt run --stride 2`` of the two-camera sample whose output then has a box on every frame of a track."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.cli import main as mcmt
from pipeline.formats.mot import read_mot
from pipeline.outputs.interpolate import fill_stride

REPO = Path(__file__).resolve().parents[1]
CAMS = ("pets_left", "pets_right")


def test_fill_stride_fills_only_the_gaps_the_stride_made():
    # frame, local id, x1, y1, x2, y2, score: track 1 at 0, 2, 4, then lost until 10; track 2 at 2 and 4
    boxes = np.array([[0, 1, 0, 0, 10, 20, 0.9], [2, 1, 4, 0, 14, 20, 0.7], [4, 1, 8, 2, 18, 22, 0.8],
                      [10, 1, 20, 2, 30, 22, 0.9], [4, 2, 50, 50, 60, 70, 0.6], [2, 2, 40, 50, 50, 70, 0.5]])
    out, added = fill_stride(boxes, 2)
    assert added == 3 and len(out) == 9
    one = out[out[:, 1] == 1]
    assert one[:, 0].tolist() == [0, 1, 2, 3, 4, 10]                  # 5..9: an occlusion, left as it was
    np.testing.assert_allclose(one[1, 2:7], [2, 0, 12, 20, 0.7])      # halfway, the lower score
    np.testing.assert_allclose(one[3, 2:7], [6, 1, 16, 21, 0.7])
    two = out[out[:, 1] == 2]
    np.testing.assert_allclose(two[:, 0], [2, 3, 4])
    np.testing.assert_allclose(two[1, 2:7], [45, 50, 55, 70, 0.5])
    # stride 3: two frames between 4 and ... none (gap 6 > 3); between 0 and 2 one frame
    three, n3 = fill_stride(boxes[:4], 3)
    assert n3 == 2 and three[:, 0].tolist() == [0, 1, 2, 3, 4, 10]
    np.testing.assert_allclose(fill_stride(boxes, 1)[0], boxes)     # no stride: nothing changes
    assert fill_stride(boxes[:1], 2)[1] == 0


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
    for cam in CAMS:
        f, p = read_mot(filled / "mot" / f"{cam}.txt"), read_mot(plain / "mot" / f"{cam}.txt")
        assert len(p) and set((p[:, 0] - 1) % 2) == {0}                # analysed frames only: 1, 3, 5, ...
        kept = {tuple(r) for r in np.round(p[:, :6], 2).tolist()}
        assert kept <= {tuple(r) for r in np.round(f[:, :6], 2).tolist()}   # the analysed boxes unchanged
        for gid in np.unique(f[:, 1]):
            frames = np.sort(f[f[:, 1] == gid, 0])
            gaps = np.diff(frames)
            assert gaps.min() >= 1 and (gaps == 2).sum() == 0           # no skipped frame left in a track
        # the filled boxes are where the people were: IoU with the ground truth box of that frame
        g = _gt(cam)
        added = np.array([r for r in f if tuple(np.round(r[:6], 2)) not in kept])
        assert len(added) >= 0.8 * len(p) - 2 * len(np.unique(p[:, 1]))
        ious = []
        for r in added:
            same = g[g[:, 0] == r[0]]
            a, b = r[2:6], same[:, 2:6]
            iw = np.clip(np.minimum(a[0] + a[2], b[:, 0] + b[:, 2]) - np.maximum(a[0], b[:, 0]), 0, None)
            ih = np.clip(np.minimum(a[1] + a[3], b[:, 1] + b[:, 3]) - np.maximum(a[1], b[:, 1]), 0, None)
            ious.append((iw * ih / (a[2] * a[3] + b[:, 2] * b[:, 3] - iw * ih)).max())
        assert np.median(ious) > 0.85 and np.mean(np.array(ious) > 0.5) > 0.95

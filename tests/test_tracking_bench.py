"""The tracking bench's harness (bench/tracking.py): the ultralytics peers and the row that runs mcmt run
on each camera alone from a detection file, on generated footage."""
from __future__ import annotations

import numpy as np


def _look(k: int, dim: int = 32) -> np.ndarray:
    v = np.random.default_rng(k).normal(size=dim).astype(np.float32)
    return v / np.linalg.norm(v)


def _walk(frames: range, x0: float, look: np.ndarray, tid: int, rng) -> list:
    """Per frame (box row of the tracker's output, embedding) of one person walking right."""
    out = []
    for f in frames:
        x = x0 + 3 * f
        e = look + 0.02 * rng.normal(size=look.shape).astype(np.float32)
        out.append((f, np.array([x, 100, x + 40, 200, tid, 0.9, 0, -1], np.float64), e / np.linalg.norm(e)))
    return out


def _frames(walks, n: int):
    """Tracker outputs, detections and embeddings per frame from the walks (a detection per box)."""
    outs, dets, feats = [], [], []
    for f in range(n):
        rows = [(r, e) for w in walks for (g, r, e) in w if g == f]
        o = np.array([r for r, _ in rows], np.float64).reshape(-1, 8)
        o[:, 7] = np.arange(len(o))
        outs.append(o)
        dets.append(np.column_stack([o[:, :4], o[:, 5:7]]) if len(o) else np.zeros((0, 6)))
        feats.append(np.array([e for _, e in rows], np.float32).reshape(len(rows), -1))
    return outs, dets, feats


def test_ultralytics_peers_track_generated_people():
    from bench.tracking import run_ultralytics

    rng = np.random.default_rng(2)
    walks = [_walk(range(0, 40), 0, _look(8), 1, rng), _walk(range(0, 40), 400, _look(9), 2, rng)]
    outs, dets, feats = _frames(walks, 40)
    for kind in ("bytetrack", "botsort"):
        (pred,), _, n = run_ultralytics(kind, [dets], [feats])
        assert n == 40
        left = set(pred[pred[:, 2] < 300, 1].astype(int))
        right = set(pred[pred[:, 2] >= 400, 1].astype(int))
        assert len(left) == 1 and len(right) == 1 and left != right
        assert len(pred) >= 2 * 40 - 4                      # every box tracked once confirmed


def test_mcmt_row_runs_the_pipeline_on_the_given_detections(tmp_path):
    """bench/tracking.py's "mcmt run, one camera": a det.txt from the cached detections, mcmt run on the
    video alone, its mot/<camera>.txt read back; two people walking apart keep one id each."""
    import cv2

    from bench.tracking import run_mcmt
    from bench.tracking_data import Camera

    video = tmp_path / "walk.avi"
    out = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (320, 240))
    dets = []
    for f in range(30):
        img = np.full((240, 320, 3), 90, np.uint8)
        boxes = []
        for x0, colour in ((10, (40, 40, 200)), (200, (200, 160, 40))):
            x = x0 + 2 * f
            cv2.rectangle(img, (x, 60), (x + 40, 180), colour, -1)
            boxes.append([x, 60, x + 40, 180, 0.9, 0])
        out.write(img)
        dets.append(np.array(boxes, np.float32))
    out.release()
    cam = Camera("walk", video, tmp_path / "gt.txt")
    (pred,), secs, n = run_mcmt([dets], [cam], tmp_path / "bench")
    assert n == 30
    assert (tmp_path / "bench" / "walk" / "det.txt").read_text().count("\n") == 60
    left = set(pred[pred[:, 2] < 150, 1].astype(int))
    right = set(pred[pred[:, 2] >= 150, 1].astype(int))
    assert len(left) == 1 and len(right) == 1 and left != right
    assert len(pred) >= 2 * 30 - 6                          # every box tracked once confirmed

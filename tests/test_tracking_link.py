"""The tracking bench's harness (bench/tracking.py, bench/tracking_link.py): what mcmt run writes for one
camera (tracker + the association's joins in that camera) and the ultralytics peers, on generated
detections."""
from __future__ import annotations

import numpy as np

from bench.tracking_link import link_one_camera, tracklets_from_outputs
from pipeline.run.config import ReIDRunConfig


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


def test_a_person_broken_by_an_occlusion_gets_one_identity_and_others_keep_theirs():
    rng = np.random.default_rng(0)
    a, b, c = _look(1), _look(2), _look(3)
    walks = [_walk(range(0, 30), 0, a, 1, rng),            # A, then lost in an occlusion
             _walk(range(36, 70), 0, a, 2, rng),           # ... found again as a new track 6 frames later
             _walk(range(0, 70), 400, b, 3, rng),          # B and C at the same time (known different people)
             _walk(range(0, 70), 800, c, 4, rng)]
    outs, dets, feats = _frames(walks, 70)
    linked = link_one_camera(outs, dets, feats, fps=10.0)
    ids = {int(r[4]) for o in linked for r in o if r[0] < 300}            # A's boxes (x < 300)
    assert len(ids) == 1
    others = {int(r[4]) for o in linked for r in o if r[0] >= 400}
    assert len(others) == 2 and not ids & others
    assert [len(o) for o in linked] == [len(o) for o in outs]             # boxes unchanged, only ids


def test_gallery_follows_the_crop_policy():
    rng = np.random.default_rng(1)
    walk = _walk(range(0, 60), 0, _look(5), 7, rng)
    walk = [(f, r.copy(), e) for f, r, e in walk]
    for f, r, _ in walk[:9]:
        r[3] = r[1] + 30                                    # the first 9 boxes are too small to embed
    outs, dets, feats = _frames([walk], 60)
    policy = ReIDRunConfig(every_k_frames=3, gallery_size=10, min_box_height=40)
    (t,) = tracklets_from_outputs(outs, dets, feats, fps=10.0, policy=policy)
    assert (t.start_frame, t.end_frame, t.n_boxes) == (0, 59, 60)
    assert t.start_time == 0.0 and abs(t.end_time - 5.9) < 1e-9
    assert t.features.shape == (10, 32)                    # 17 usable (every 3rd of boxes 9..59), 10 kept
    assert np.allclose(np.linalg.norm(t.features, axis=1), 1.0, atol=1e-5)
    few = tracklets_from_outputs(outs, dets, feats, fps=10.0, policy=ReIDRunConfig(every_k_frames=3, gallery_size=50))
    assert few[0].features.shape[0] == 17


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

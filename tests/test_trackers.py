"""Tracker contract tests, parametrised over the registry, plus appearance and GMC behaviour."""
from dataclasses import asdict

import numpy as np
import pytest

from trackers import TRACKERS, build_tracker
from trackers.config import TrackerConfig
from trackers.gmc import SparseFlowGMC, build_gmc

NAMES = sorted(TRACKERS)


def box(x, y=100.0, w=40.0, h=100.0, score=0.9, cls=0.0):
    return [x, y, x + w, y + h, score, cls]


def dets(*rows):
    return np.array(rows, dtype=float).reshape(-1, 6)


def embeds_for(n, seed=0, dim=16):
    return np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)


@pytest.mark.parametrize("name", NAMES)
def test_empty_input_gives_0x8(name):
    t = build_tracker(name)
    for d in (np.zeros((0, 6)), np.empty((0, 6), dtype=np.float32), []):
        out = t.update(d)
        assert out.shape == (0, 8)
    t.update(dets(box(10)))
    t.update(dets(box(12)))
    assert t.update(np.zeros((0, 6))).shape == (0, 8)   # a lost track is not output


@pytest.mark.parametrize("name", NAMES)
def test_steady_box_keeps_id_and_det_idx(name):
    t = build_tracker(name)
    ids = []
    for f in range(60):
        out = t.update(dets(box(10 + 4 * f)))
        assert out.shape == (1, 8)
        ids.append(out[0, 4])
        assert out[0, 7] == 0
        assert abs(out[0, 0] - (10 + 4 * f)) < 3          # Kalman box follows the detection
    assert set(ids) == {1.0}


@pytest.mark.parametrize("name", NAMES)
def test_gap_shorter_than_buffer_keeps_id_longer_gives_new(name):
    t = build_tracker(name, track_buffer=10, frame_rate=30)
    x = 10.0
    for _ in range(10):
        out = t.update(dets(box(x)))
        x += 3
    first = out[0, 4]
    for _ in range(8):                                    # 8 missed frames < buffer of 10
        assert t.update(np.zeros((0, 6))).shape == (0, 8)
        x += 3
    out = t.update(dets(box(x)))
    assert out[0, 4] == first
    assert t.pop_finished() == []
    for _ in range(12):                                   # 12 missed frames > buffer
        t.update(np.zeros((0, 6)))
        x += 3
    assert t.pop_finished() == [first]                    # the finished id is handed out once
    assert t.pop_finished() == []
    t.update(dets(box(x)))
    out = t.update(dets(box(x + 3)))
    assert out.shape == (1, 8)
    assert out[0, 4] != first


@pytest.mark.parametrize("name", NAMES)
def test_buffer_scales_with_frame_rate(name):
    assert build_tracker(name, track_buffer=30, frame_rate=10).max_lost == 10
    assert build_tracker(name, track_buffer=30, frame_rate=60).max_lost == 60


def _walk_off_ids(name, frame_rate, **params):
    """Ids given to one person who stands for 4 frames, then walks off at 30 px a frame (3/4 of the box
    width: 3 frames/s of someone crossing the view) -> the ids output, one per frame it is output."""
    t = build_tracker(name, frame_rate=frame_rate, **params)
    ids = []
    for f in range(16):
        out = t.update(dets(box(100 + 30 * max(0, f - 3))))
        ids += out[:, 4].tolist()
    return ids


@pytest.mark.parametrize("name", NAMES)
def test_motion_buffer_follows_a_person_between_far_apart_frames(name):
    plain = _walk_off_ids(name, 3.0)
    assert len(plain) == 4      # plain IoU: lost as they set off; each new track is too far off the next frame
    buffered = _walk_off_ids(name, 3.0, motion_buffer=3.0)  # widened by 3 x (1/3 - 0.15) = 0.55 of their size
    assert len(buffered) == 16 and set(buffered) == {1.0}
    assert build_tracker(name, frame_rate=3.0, motion_buffer=3.0).iou_buffer == pytest.approx(0.55)
    for fps in (25.0, 7.0):     # the Kalman prediction holds: plain IoU, the same tracks as without the setting
        assert build_tracker(name, frame_rate=fps, motion_buffer=3.0).iou_buffer == 0.0
    assert _walk_off_ids(name, 3.0, motion_buffer=3.0, motion_buffer_from=1.0) == plain
    with pytest.raises(ValueError, match="motion_buffer"):
        TrackerConfig(motion_buffer=-1.0)


@pytest.mark.parametrize("name", NAMES)
def test_instances_have_independent_ids(name):
    a, b = build_tracker(name), build_tracker(name)
    for f in range(5):
        out_a = a.update(dets(box(10 + f), box(200 + f), box(400 + f)))
        out_b = b.update(dets(box(50 + f)))
    assert sorted(out_a[:, 4]) == [1, 2, 3]
    assert out_b[:, 4].tolist() == [1]
    a.reset()                                             # a new video on the same camera
    assert a.update(dets(box(10)))[:, 4].tolist() == [1]
    assert len(a.tracks) == 1


@pytest.mark.parametrize("name", NAMES)
def test_det_idx_points_at_the_detection(name):
    rng = np.random.default_rng(0)
    t = build_tracker(name)
    xs = np.array([10.0, 150.0, 300.0, 450.0])
    for f in range(30):
        rows = [box(x + 2 * f, score=0.8 + 0.01 * i) for i, x in enumerate(xs)]
        rows.append(box(600, score=0.05))                  # below track_low_thresh: ignored
        d = dets(*rows)[rng.permutation(5)]
        emb = embeds_for(5, seed=f)
        out = t.update(d, emb if name == "botsort" else None)
        for row in out:
            src = d[int(row[7])]
            assert src[4] == pytest.approx(row[5])
            assert src[4] > 0.1
            assert abs(row[0] - src[0]) < 4
            assert abs(row[2] - src[2]) < 4
    assert len(out) == 4
    assert len(set(out[:, 4])) == 4


@pytest.mark.parametrize("name", NAMES)
def test_state_bounded_over_10000_frames_with_churn(name):
    rng = np.random.default_rng(1)
    t = build_tracker(name, track_buffer=30, frame_rate=30)
    people = {}                     # person -> (x, y, vx, frames left)
    next_person, finished, max_live, max_id = 0, 0, 0, 0
    for f in range(10_000):
        if rng.random() < 0.1 and len(people) < 8:
            people[next_person] = (rng.uniform(0, 500), rng.uniform(0, 400), rng.uniform(-3, 3),
                                   int(rng.integers(5, 60)))
            next_person += 1
        rows = []
        for p, (x, y, vx, left) in list(people.items()):
            if left <= 0:
                del people[p]
                continue
            people[p] = (x + vx, y, vx, left - 1)
            rows.append(box(x, y, 30, 80, score=rng.uniform(0.2, 1.0)))
        d = dets(*rows) if rows else np.zeros((0, 6))
        out = t.update(d, embeds_for(len(d), seed=f) if name == "botsort" else None)
        finished += len(t.pop_finished())
        max_live = max(max_live, len(t.tracks))
        if len(out):
            max_id = max(max_id, out[:, 4].max())
    assert max_live <= 8 * 3                # live + lost tracks stay bounded
    assert len(t.tracks) <= max_live
    assert len(t._finished) == 0
    assert finished >= 0.8 * next_person    # tracks that ended were handed out
    assert max_id <= next_person * 2        # ids are not wasted on flickers


@pytest.mark.parametrize("name", NAMES)
def test_inputs_not_modified_and_validated(name):
    t = build_tracker(name)
    d = dets(box(10), box(100))
    keep = d.copy()
    t.update(d)
    np.testing.assert_array_equal(d, keep)
    bad = dets(box(10), box(100), box(200))
    bad[0, 0], bad[1, 4], bad[2, 2] = np.nan, np.nan, np.inf
    assert t.update(bad).shape == (0, 8)                   # non-finite boxes/scores are ignored
    with pytest.raises(ValueError, match=r"\(N, 6\)"):
        t.update(np.zeros((3, 5)))
    with pytest.raises(ValueError, match="embeds"):
        t.update(d, np.zeros((3, 4), dtype=np.float32))


@pytest.mark.parametrize("name", NAMES)
def test_every_config_field_is_accepted(name):
    params = asdict(TrackerConfig())
    params.pop("name")
    tracker = build_tracker(name, **params)
    assert tracker.update(dets(box(10))).shape == (1, 8)


def test_registry_errors_list_valid_names():
    with pytest.raises(ValueError, match="botsort.*bytetrack|bytetrack.*botsort"):
        build_tracker("sort")
    with pytest.raises(ValueError, match="match_thresh"):
        build_tracker("bytetrack", match_threshold=0.3)


def _occlusion_scene(tracker, emb_before, emb_after):
    """A person walks right, is hidden for 10 frames and reappears where it stopped (far from the
    Kalman prediction, no IoU with it). Returns (id before, id after)."""
    x = 100.0
    for _ in range(20):
        out = tracker.update(dets(box(x)), emb_before[None])
        x += 6
    before = out[0, 4]
    for _ in range(10):
        tracker.update(np.zeros((0, 6)), np.zeros((0, emb_before.size), np.float32))
    tracker.update(dets(box(x)), emb_after[None])
    out = tracker.update(dets(box(x)), emb_after[None])
    return before, out[0, 4]


def test_appearance_tracker_reacquires_after_occlusion():
    me, other = embeds_for(2, seed=5)
    before, after = _occlusion_scene(build_tracker("botsort"), me, me)
    assert after == before
    before, after = _occlusion_scene(build_tracker("botsort"), me, other)
    assert after != before                      # a different person is not glued to the lost track
    before, after = _occlusion_scene(build_tracker("bytetrack"), me, me)
    assert after != before                      # IoU-only ByteTrack cannot re-find it


def test_appearance_cost_prefers_same_person():
    """Two people swap positions between frames: IoU alone would keep the boxes, features fix ids."""
    a, b = embeds_for(2, seed=7)
    t = build_tracker("botsort", match_thresh=0.9, proximity_thresh=0.2)
    for _ in range(5):
        out = t.update(dets(box(100), box(120)), np.stack([a, b]))
    id_a = out[np.argmin(out[:, 0]), 4]
    out = t.update(dets(box(104), box(116)), np.stack([b, a]))   # a is now the right-hand box
    assert out[out[:, 7] == 1, 4][0] == id_a


def _masked(embeds, mask):
    out = np.zeros_like(embeds)
    out[mask] = embeds[mask]
    return out


def test_embedding_mask_skips_matches_that_motion_forces():
    t = build_tracker("botsort", appearance_every=3)
    a, b, c = embeds_for(3, seed=3)
    far = dets(box(100), box(400))
    assert t.embedding_mask(far).all()                     # first frame: no tracks yet
    t.update(far, np.stack([a, b]))
    assert not t.embedding_mask(dets(box(103), box(403))).any()   # each box has one candidate track
    close = dets(box(103), box(120, score=0.8), box(403), box(600, score=0.3))
    assert t.embedding_mask(close).tolist() == [True, True, False, False]  # contested; low score: no
    new = dets(box(103), box(403), box(250))
    assert t.embedding_mask(new).tolist() == [False, False, True]          # unexplained: embed
    t.update(dets(box(103), box(403)), np.zeros((2, 16), np.float32))
    assert t.embedding_mask(dets(box(106), box(406))).all()          # every 3rd frame: all of them
    every = build_tracker("botsort")                                  # appearance_every=1: always
    every.update(far, np.stack([a, c]))
    assert every.embedding_mask(dets(box(103), box(403))).all()
    with pytest.raises(ValueError, match="appearance_every"):
        build_tracker("botsort", appearance_every=0)


def test_unembedded_rows_leave_features_unchanged():
    t = build_tracker("botsort", appearance_every=3)
    a, b = embeds_for(2, seed=4)
    t.update(dets(box(100)), a[None])
    before = t.tracks.features.copy()
    t.update(dets(box(103)), np.zeros((1, 16), np.float32))
    assert np.array_equal(t.tracks.features, before)
    t2 = build_tracker("botsort")
    t2.update(dets(box(100)), np.zeros((1, 16), np.float32))        # born without an embedding
    assert not t2.tracks.has_feat.any()
    t2.update(dets(box(103)), b[None])
    assert t2.tracks.has_feat.all()
    assert np.allclose(t2.tracks.features[0], b / np.linalg.norm(b))


def test_lazy_embedding_keeps_ids_through_a_swap_and_an_occlusion():
    """appearance_every=3 with only the masked rows embedded: the appearance tests above still hold."""
    a, b = embeds_for(2, seed=7)
    t = build_tracker("botsort", match_thresh=0.9, proximity_thresh=0.2, appearance_every=3)
    for _ in range(5):
        d = dets(box(100), box(120))
        out = t.update(d, _masked(np.stack([a, b]), t.embedding_mask(d)))
    id_a = out[np.argmin(out[:, 0]), 4]
    d = dets(box(104), box(116))
    mask = t.embedding_mask(d)
    assert mask.all()                                               # both boxes are contested
    out = t.update(d, _masked(np.stack([b, a]), mask))
    assert out[out[:, 7] == 1, 4][0] == id_a
    me, other = embeds_for(2, seed=5)
    for emb_after, same in ((me, True), (other, False)):
        t = build_tracker("botsort", appearance_every=3)
        x = 100.0
        for _ in range(20):
            d = dets(box(x))
            out = t.update(d, _masked(me[None], t.embedding_mask(d)))
            x += 6
        before = out[0, 4]
        for _ in range(10):
            t.update(np.zeros((0, 6)), np.zeros((0, 16), np.float32))
        for _ in range(2):
            d = dets(box(x))
            out = t.update(d, _masked(emb_after[None], t.embedding_mask(d)))
        assert (out[0, 4] == before) == same


def test_gmc_warp_keeps_ids_under_camera_pan():
    t = build_tracker("botsort")
    shift = np.array([[1.0, 0, -35], [0, 1, 0]])             # camera pans: image content moves 35 px left
    ids = set()
    for f in range(15):
        x = 400 - 35 * f
        out = t.update(dets(box(x, w=25), box(x + 120, w=25)), warp=shift if f else None)
        ids |= set(out[:, 4].tolist())
    assert ids == {1.0, 2.0}
    b = build_tracker("bytetrack")                          # without compensation no box overlaps its
    rows = [len(b.update(dets(box(400 - 35 * f, w=25), box(520 - 35 * f, w=25)))) for f in range(15)]
    assert rows[0] == 2
    assert sum(rows[1:]) <= 2  # prediction: tracks are lost, rarely re-found


def test_sparse_flow_gmc_recovers_translation():
    rng = np.random.default_rng(0)
    texture = (rng.random((240, 320)) * 255).astype(np.uint8)
    import cv2
    texture = cv2.GaussianBlur(texture, (5, 5), 1.0)
    gmc = build_gmc("sparse")
    assert isinstance(gmc, SparseFlowGMC)
    assert build_gmc("none") is None
    np.testing.assert_allclose(gmc.apply(texture), np.eye(2, 3))
    moved = np.roll(np.roll(texture, 6, axis=1), -4, axis=0)   # content moves +6 x, -4 y
    warp = gmc.apply(moved)
    np.testing.assert_allclose(warp[:, :2], np.eye(2), atol=0.02)
    np.testing.assert_allclose(warp[:, 2], [6, -4], atol=0.5)
    with pytest.raises(ValueError, match="sparse"):
        build_gmc("orb")


def _pets09_frames(seq):
    from pipeline.formats.mot import read_mot
    det = read_mot(seq / "det" / "det.txt")
    scores = np.clip(det[:, 6] / det[:, 6].max(), 0, None)           # ACF scores -> [0, 1]
    rows = np.column_stack([det[:, 2:4], det[:, 2:4] + det[:, 4:6], scores, np.zeros(len(det))])
    return [rows[det[:, 0] == f] for f in range(1, int(det[:, 0].max()) + 1)]


def _to_mot(outputs):
    rows = [np.column_stack([np.full(len(o), f + 1), o[:, 4], o[:, :2], o[:, 2:4] - o[:, :2],
                             np.ones((len(o), 1)), -np.ones((len(o), 3))]) for f, o in enumerate(outputs) if len(o)]
    return np.concatenate(rows)


def test_pets09_public_detections_real_scores(shared_dir):
    """Real benchmark: ByteTracker on MOT15 PETS09-S2L1 public detections, scored on its ground truth,
    at least as good as ultralytics' BYTETracker with the same settings."""
    from types import SimpleNamespace

    from pipeline.evaluation.mot import evaluate_mot
    from pipeline.formats.mot import read_mot

    seq = shared_dir / "data" / "pets09-s2l1"
    frames = _pets09_frames(seq)
    gt = read_mot(seq / "gt" / "gt.txt")
    settings = dict(track_high_thresh=0.3, track_low_thresh=0.1, new_track_thresh=0.4, match_thresh=0.8,
                    track_buffer=30, frame_rate=7.0, fuse_score=True)
    ours = build_tracker("bytetrack", **settings)
    m = evaluate_mot(gt, _to_mot([ours.update(d) for d in frames]))
    assert m["MOTA"] > 70
    assert m["IDF1"] > 55
    assert m["HOTA"] > 43

    from ultralytics.trackers.byte_tracker import BYTETracker

    class Boxes:  # the part of ultralytics' Boxes that BYTETracker reads
        def __init__(self, d):
            self.data, self.conf, self.cls = d, d[:, 4], d[:, 5]
            self.xywh = np.column_stack([(d[:, :2] + d[:, 2:4]) / 2, d[:, 2:4] - d[:, :2]])

        def __len__(self):
            return len(self.data)

        def __getitem__(self, mask):
            return Boxes(self.data[mask])

    ultra = BYTETracker(SimpleNamespace(**{**settings, "track_buffer": ours.max_lost}))
    u = evaluate_mot(gt, _to_mot([ultra.update(Boxes(d)).reshape(-1, 8) for d in frames]))
    assert m["IDF1"] >= u["IDF1"] - 1e-6
    assert m["HOTA"] >= u["HOTA"] - 1e-6


@pytest.mark.parametrize("name", NAMES)
def test_low_score_detections_are_matched_on_plain_iou_only(name):
    """The buffer widens the high-score stages only: a low-score box (someone partly hidden) 25 px off a track's
    box (plain IoU 0.23, widened 0.54) is not taken in ByteTrack's low-score stage, while a high-score one is."""
    for score, taken in ((0.3, False), (0.9, True)):
        t = build_tracker(name, frame_rate=3.0, motion_buffer=3.0, track_high_thresh=0.5)
        for _ in range(3):
            t.update(dets(box(100)))
        out = t.update(dets(box(125, score=score)))
        assert (out[:, 4].tolist() == [1.0]) is taken


def _tracks_of_people(name: str, stride: int, motion_buffer: float):
    """The sample's right camera, its ground-truth boxes as detections (7 frames/s, every stride-th frame) ->
    (tracks per person summed over people, tracks that hold two people or more, boxes output)."""
    from pathlib import Path

    g = np.loadtxt(Path(__file__).resolve().parents[1] / "samples/gt/pets_right/gt/gt.txt", delimiter=",")
    t = build_tracker(name, frame_rate=7.0 / stride, track_buffer=108, motion_buffer=motion_buffer)
    pairs = []
    for f in range(1, int(g[:, 0].max()) + 1, stride):
        rows = g[g[:, 0] == f]
        xyxy = np.column_stack([rows[:, 2:4], rows[:, 2:4] + rows[:, 4:6]])
        out = t.update(np.column_stack([xyxy, np.full(len(rows), 0.9), np.zeros(len(rows))]))
        pairs += [(int(rows[int(o[7]), 1]), int(o[4])) for o in out]
    pairs = np.array(pairs)
    per_person = sum(len(set(pairs[pairs[:, 0] == p, 1])) for p in set(pairs[:, 0]))
    mixed = sum(len(set(pairs[pairs[:, 1] == i, 0])) > 1 for i in set(pairs[:, 1]))
    return per_person, mixed, len(pairs)


@pytest.mark.parametrize("name", NAMES)
def test_motion_buffer_on_real_boxes_at_low_frame_rates(name):
    """PETS09 people at 3.5 and 2.3 analysed frames/s: the buffered IoU breaks fewer tracks, mixes no more
    people and follows more boxes; at the camera's 7 frames/s it changes nothing."""
    assert _tracks_of_people(name, 1, 3.0) == _tracks_of_people(name, 1, 0.0)
    for stride in (2, 3):
        (frag, mixed, boxes), (frag0, mixed0, boxes0) = (_tracks_of_people(name, stride, mb) for mb in (3.0, 0.0))
        assert frag <= 0.8 * frag0 and mixed <= mixed0 and boxes > boxes0

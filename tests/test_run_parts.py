"""Parts of the run loop without video: crop selection, bounded tracklet store, stage cache, writers, config."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.runfolder.cache import CameraCache, DetectionWriter, load_tracklets, save_tracklets, stage_key
from core.boxes import ioa_matrix
from pipeline.run.crops import (CropPolicy, crop, crop_quality, fallback_candidates, select_for_embedding,
                                track_overlap)
from pipeline.tracklet import Tracklet
from pipeline.run.tracklet_store import FallbackCrop, TrackletStore
from pipeline.outputs.writers import attribute_summary, local_to_mot

REPO = Path(__file__).resolve().parents[1]


def test_ioa_matrix_hand_computed():
    boxes = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [0, 0, 20, 20]], float)
    m = ioa_matrix(boxes)
    # box0 (area 100) meets box1 in 5x10=50 -> 0.5; box0 lies inside box2 -> 1.0
    # box2 (area 400) meets box0 in 100 -> 0.25 and box1 in 100 -> 0.25
    expected = np.array([[0, 0.5, 1.0], [0.5, 0, 1.0], [0.25, 0.25, 0]])
    np.testing.assert_allclose(m, expected)


def test_track_overlap_ignores_own_detection():
    dets = np.array([[0, 0, 10, 10, .9, 0], [100, 100, 110, 120, .9, 0], [5, 0, 15, 10, .3, 0]], float)
    tracks = np.array([[0, 0, 10, 10, 1, .9, 0, 0], [100, 100, 110, 120, 2, .9, 0, 1]], float)
    # track 1 overlaps its own detection 0 fully (ignored) and detection 2 by half; track 2 nothing
    np.testing.assert_allclose(track_overlap(tracks, dets), [0.5, 0.0])


def test_select_for_embedding_rules():
    policy = CropPolicy(every_k=5, min_height=40, min_score=0.5, max_overlap=0.3, min_hits=2)
    tracks = np.array([
        [0, 0, 20, 100, 1, .9, 0, 0],     # good
        [0, 0, 20, 30, 2, .9, 0, 1],      # too small (30 px)
        [0, 0, 20, 100, 3, .4, 0, 2],     # low score
        [0, 0, 20, 100, 4, .9, 0, 3],     # overlapped
        [0, 0, 20, 100, 5, .9, 0, 4],     # not confirmed yet (1 hit)
        [0, 0, 20, 100, 6, .9, 0, 5],     # embedded 2 frames ago
        [0, 0, 20, 100, 7, .9, 0, 6],     # embedded 5 frames ago -> due again
    ], float)
    hits = np.array([3, 3, 3, 3, 1, 3, 3])
    last = np.array([-10 ** 9, -10 ** 9, -10 ** 9, -10 ** 9, -10 ** 9, 8, 5])
    overlap = np.array([0, 0, 0, 0.5, 0, 0, 0])
    mask = select_for_embedding(tracks, hits, last, 10, overlap, policy)
    assert mask.tolist() == [True, False, False, False, False, False, True]
    # a track with fewer features than few_features is embedded from few_score up: the low-score one (0.4)
    # when it has 2 features, not when it has 3; without counts (None) the one bar as before
    few = CropPolicy(every_k=5, min_height=40, min_score=0.5, max_overlap=0.3, min_hits=2, few_features=3,
                     few_score=0.35)
    for counts, low in (([2] * 7, True), ([3] * 7, False), (None, False)):
        m = select_for_embedding(tracks, hits, last, 10, overlap, few, None if counts is None else np.array(counts))
        assert m.tolist() == [True, False, low, False, False, False, True]
    off = CropPolicy(every_k=5, min_height=40, min_score=0.5, max_overlap=0.3, min_hits=2, few_features=0)
    assert not select_for_embedding(tracks, hits, last, 10, overlap, off, np.zeros(7, np.int64))[2]
    q = crop_quality(tracks[:2], np.array([0.0, 0.5]), policy)
    # quality = score * min(1, h / 80) * (1 - overlap): 0.9 * 1 * 1, 0.9 * 30/80 * 0.5
    np.testing.assert_allclose(q, [0.9, 0.9 * 30 / 80 * 0.5], rtol=1e-6)


def test_crop_is_clipped_to_the_image():
    img = np.arange(10 * 20 * 3, dtype=np.uint8).reshape(10, 20, 3)
    assert crop(img, np.array([-5, -5, 4, 3])).shape == (3, 4, 3)
    assert crop(img, np.array([18.2, 8.5, 40, 40])).shape == (2, 2, 3)
    assert crop(img, np.array([30, 30, 40, 40])).shape == (1, 1, 3)     # never empty


def _tracks(frame_ids, box_h=100):
    return np.array([[10 * i, 0, 10 * i + 40, box_h, tid, 0.9, 0, i] for i, tid in enumerate(frame_ids)], float)


def test_store_memory_is_bounded_over_10k_frames(tmp_path):
    store = TrackletStore("cam", fps=10.0, offset=100.0, gallery_size=5, thumbnails=2,
                          box_path=tmp_path / "boxes.csv", thumb_dir=tmp_path / "thumbs", attribute_names=("a", "b"))
    rng = np.random.default_rng(0)
    img = np.full((100, 40, 3), 128, np.uint8)
    for f in range(10_000):
        tracks = _tracks([1, 2])
        store.add_tracks(f, tracks)
        feats = rng.normal(size=(2, 8)).astype(np.float32)
        quality = np.array([f / 10_000, 0.5], np.float32)
        store.add_features(f, f, [1, 2], feats, np.array([[1.0, 0.0], [0.0, 1.0]]), quality, [img, img])
        live = store.live[1]
        assert len(live.features) <= 5
        assert len(live.thumbs) <= 2
    (t1, t2) = store.close_all()
    assert (t1.start_frame, t1.end_frame, t1.n_boxes) == (0, 9999, 10_000)
    assert t1.start_time == 100.0
    assert t1.end_time == pytest.approx(100.0 + 9999 / 10)
    assert t1.features.shape == (5, 8)
    # the gallery keeps the 5 best-quality features: those of the last 5 frames of track 1
    np.testing.assert_allclose(np.sort(t1.weights), np.arange(9995, 10_000) / 10_000, rtol=1e-6)
    np.testing.assert_allclose(t1.attributes, [1.0, 0.0])
    assert t2.attribute_names == ("a", "b")
    assert store.thumb_paths[1] == ["1_0.jpg", "1_1.jpg"]
    assert (tmp_path / "thumbs" / "1_1.jpg").is_file()
    rows = np.loadtxt(tmp_path / "boxes.csv", delimiter=",")
    assert rows.shape == (20_000, 7)
    assert set(rows[:, 1]) == {1.0, 2.0}


def test_store_closes_finished_tracks_only():
    store = TrackletStore("cam", fps=5.0)
    store.add_tracks(0, _tracks([1, 2]))
    store.add_tracks(1, _tracks([2]))
    store.add_tracks(2, _tracks([3, 2]))      # track 2 moves from x 10 to x 0 and back to 10
    (done,) = store.close([1, 99])            # unknown ids are ignored
    assert done.track_id == 1
    assert done.n_boxes == 1
    assert not done.has_features
    assert done.attributes is None
    assert sorted(store.live) == [2, 3]
    (two,) = store.close([2])
    np.testing.assert_array_equal(two.first_box, [10, 0, 50, 100])   # boxes at start and end frame
    np.testing.assert_array_equal(two.last_box, [10, 0, 50, 100])
    store.add_tracks(3, np.array([[70, 5, 90, 45, 3, 0.9, 0, 0]], float))
    (three,) = store.close([3])
    np.testing.assert_array_equal(three.first_box, [0, 0, 40, 100])
    np.testing.assert_array_equal(three.last_box, [70, 5, 90, 45])


def test_a_track_without_a_passing_crop_closes_with_its_best_crops_feature(tmp_path):
    store = TrackletStore("cam", fps=5.0, thumbnails=2, thumb_dir=tmp_path)
    img = {q: np.full((60, 20, 3), int(q * 100), np.uint8) for q in (0.2, 0.5, 0.3)}
    for f, q in enumerate((0.2, 0.5, 0.3)):                  # track 1: only fallback offers, best 0.5 at frame 1
        store.add_tracks(f, _tracks([1, 2]))
        assert store.wants_fallback(1, q) == (q != 0.3)
        store.offer_fallback(FallbackCrop(1, q, f, img[q]))
    store.add_features(2, 2, [2], np.ones((1, 4), np.float32), None, np.array([0.9]))
    assert not store.wants_fallback(2, 1.0)                   # track 2 has a feature: no fallback kept
    waiting = store.close_with_fallback([1, 2])
    assert [(c.track_id, c.quality, c.frame) for c in waiting] == [(1, 0.5, 1)]
    assert waiting[0].image is img[0.5]
    assert [t.track_id for t in store.finished] == [2]        # 2 closed at once, 1 waits for its feature
    assert list(store.awaiting) == [1] and not store.live
    store.add_features(1, 9, [1], np.full((1, 4), 2.0, np.float32), None, np.array([0.5]), [img[0.5]])
    one = store.finished[-1]
    assert (one.track_id, one.n_boxes) == (1, 3) and not store.awaiting
    np.testing.assert_array_equal(one.features, np.full((1, 4), 2.0, np.float32))
    assert len(store.thumb_paths[1]) == 1                     # its crop is its thumbnail too
    store.add_tracks(3, _tracks([3]))
    store.offer_fallback(FallbackCrop(3, 0.4, 3, img[0.2]))
    assert store.close_with_fallback([3])
    store.close_all()                                         # interrupted: track 3 closes without a feature
    assert store.finished[-1].track_id == 3 and not store.finished[-1].has_features


def test_fallback_candidates_are_confirmed_matched_and_not_selected():
    tracks = np.array([[0, 0, 20, 100, t, .3, 0, d] for t, d in ((1, 0), (2, 1), (3, -1), (4, 2), (5, 7))], float)
    hits = np.array([3, 3, 3, 1, 3])
    policy = CropPolicy(min_hits=2)
    # 1 selected, 3 not matched to a detection this frame, 4 not confirmed, 5's detection row out of range
    assert fallback_candidates(tracks, hits, 3, np.array([0]), policy).tolist() == [1]
    assert fallback_candidates(tracks, hits, 3, np.array([0]), CropPolicy(every_track=False)).tolist() == []


def test_tracklets_roundtrip_through_cache(tmp_path):
    t = [Tracklet("c", 3, 5, 9, 0.5, 0.9, 5, np.eye(2, 4, dtype=np.float32), np.array([0.2, 0.8], np.float32),
                  np.array([0.1, 0.9], np.float32), ("x", "y"), True),
         Tracklet("c", 4, 0, 1, 0.0, 0.1, 2)]
    t[0].first_box, t[0].last_box = np.array([1, 2, 3, 4.5], np.float32), np.array([5, 6, 7, 8], np.float32)
    t[0].fallback = True
    save_tracklets(tmp_path, t, {3: ["3_0.jpg"]})
    back, thumbs = load_tracklets(tmp_path)
    assert back[0].key == ("c", 3)
    assert back[0].flagged
    assert back[0].fallback and not back[1].fallback
    assert back[0].attribute_names == ("x", "y")
    np.testing.assert_array_equal(back[0].features, t[0].features)
    np.testing.assert_array_equal(back[0].attributes, t[0].attributes)
    assert back[1].attributes is None
    assert not back[1].has_features
    np.testing.assert_array_equal(back[0].last_box, t[0].last_box)
    np.testing.assert_array_equal(back[0].first_box, t[0].first_box)
    assert back[1].first_box is None
    assert back[1].last_box is None
    assert thumbs == {3: ["3_0.jpg"], 4: []}


def test_tracklets_of_the_older_cache_layout_still_load(tmp_path):
    """Caches written before the concatenated layout (one npz entry per tracklet) stay readable."""
    save_tracklets(tmp_path, [], {})
    np.savez(tmp_path / "tracklets.npz", f0=np.ones((2, 3), np.float32), w0=np.ones(2, np.float32),
             a0=np.array([0.5], np.float32), f1=np.zeros((0, 0), np.float32), w1=np.zeros(0, np.float32))
    meta = [{"camera": "c", "track_id": k, "start_frame": 0, "end_frame": 1, "start_time": 0.0, "end_time": 0.1,
             "n_boxes": 2, "attribute_names": ["x"] if k == 0 else [], "flagged": False} for k in (0, 1)]
    (tmp_path / "tracklets.json").write_text(json.dumps(meta))
    back, thumbs = load_tracklets(tmp_path)
    np.testing.assert_array_equal(back[0].features, np.ones((2, 3)))
    np.testing.assert_array_equal(back[0].attributes, [0.5])
    assert back[1].attributes is None and not back[1].has_features
    assert thumbs == {0: [], 1: []}


def test_many_tracklets_load_as_views_of_one_array(tmp_path):
    rng = np.random.default_rng(0)
    t = [Tracklet("c", k, k, k + 5, 0.0, 1.0, 6, rng.random((k % 4, 8), dtype=np.float32),
                  rng.random(k % 4, dtype=np.float32), rng.random(3, dtype=np.float32) if k % 2 else None,
                  ("a", "b", "c") if k % 2 else ()) for k in range(50)]
    save_tracklets(tmp_path, t, {})
    with np.load(tmp_path / "tracklets.npz") as z:
        assert "f0" not in z.files and z["features"].shape == (sum(k % 4 for k in range(50)), 8)
    back, _ = load_tracklets(tmp_path)
    for a, b in zip(t, back):
        assert a.has_features == b.has_features
        if a.has_features:
            np.testing.assert_array_equal(a.features, b.features)
            np.testing.assert_array_equal(a.weights, b.weights)
        assert (a.attributes is None) == (b.attributes is None)
        if a.attributes is not None:
            np.testing.assert_array_equal(a.attributes, b.attributes)


def test_detection_cache_resumes_after_interruption(tmp_path):
    cache = CameraCache(tmp_path, "cam")
    w = DetectionWriter(cache, "k1", cache.cached_detections("k1"), every=2)
    dets = {f: np.array([[f, 0, f + 10, 20, 0.5, 0]], np.float32) for f in range(5)}
    dets[2] = np.zeros((0, 6), np.float32)
    for f in range(5):
        w.add(f, dets[f])
    w._file.flush()          # a crash here: frame 4 written but not yet recorded as done
    reused = CameraCache(tmp_path, "cam").cached_detections("k1")
    assert [f for f in range(6) if f in reused] == [0, 1, 2, 3]    # progress recorded every 2 frames
    np.testing.assert_allclose(reused[3], dets[3])
    assert reused[2].shape == (0, 6)
    assert not cache.cached_detections("other-key")
    w2 = DetectionWriter(cache, "k1", reused)         # the next run continues from frame 4
    w2.add(3, dets[3])                                # already done: ignored
    w2.add(4, dets[4])
    w2.close(complete=True)
    again = cache.cached_detections("k1")
    assert [f for f in range(6) if f in again] == [0, 1, 2, 3, 4]
    assert cache.detect_complete("k1")
    assert len(np.loadtxt(cache.dets, delimiter=",", ndmin=2)) == 4      # no duplicated rows


def test_detection_cache_keeps_frame_numbers_of_long_videos_exact(tmp_path):
    cache = CameraCache(tmp_path, "cam")
    frames = [12_345_678, 12_345_679, 98_765_432]            # about 137 and 1097 hours at 25 fps
    w = DetectionWriter(cache, "k", cache.cached_detections("k"))
    for f in frames:
        w.add(f, np.array([[1.5, 2, 30, 40, 0.9, 0]], np.float32))
    w.close(complete=True)
    back = cache.cached_detections("k")
    assert back.upto == 98_765_432
    assert np.loadtxt(cache.dets, delimiter=",", ndmin=2)[:, 0].astype(np.int64).tolist() == frames
    np.testing.assert_allclose(back[12_345_679], [[1.5, 2, 30, 40, 0.9, 0]])
    assert back[12_345_680].shape == (0, 6)                   # analysed, no detection


def test_stage_key_changes_with_settings():
    assert stage_key({"a": 1, "b": [1, 2]}) == stage_key({"b": [1, 2], "a": 1})
    assert stage_key({"a": 1}) != stage_key({"a": 2})


def test_local_to_mot_maps_global_ids_and_drops_unassigned():
    boxes = np.array([[0, 7, 10, 20, 30, 60, 0.9], [1, 8, 0, 0, 5, 5, 0.5], [1, 7, 12, 20, 32, 60, 0.8]])
    rows = local_to_mot(boxes, {7: 3})             # local 8 has no identity (dropped tracklet)
    np.testing.assert_allclose(rows, [[1, 3, 10, 20, 20, 40, 0.9, -1, -1, -1],
                                      [2, 3, 12, 20, 20, 40, 0.8, -1, -1, -1]])


def test_local_to_mot_keeps_one_box_per_identity_and_frame():
    """A handover (two tracklets of one camera, one identity, one shared frame) writes the better box only."""
    boxes = np.array([[4, 1, 10, 20, 30, 80, 0.2], [5, 1, 11, 20, 31, 80, 0.17],       # the person's track ends
                      [5, 2, 13, 50, 28, 82, 0.51], [6, 2, 13, 22, 31, 82, 0.6],       # a track starts on their legs
                      [5, 3, 50, 20, 70, 80, 0.4]])                                     # someone else
    rows = local_to_mot(boxes, {1: 9, 2: 9, 3: 4})
    assert [(int(f), int(g)) for f, g in rows[:, :2]] == [(5, 9), (6, 4), (6, 9), (7, 9)]
    np.testing.assert_allclose(rows[(rows[:, 0] == 6) & (rows[:, 1] == 9), 6], [0.51])


def test_attribute_summary_readable():
    names = ["female", "backpack", "age:young", "age:adult", "upper:white", "upper:black"]
    probs = np.array([0.93, 0.2, 0.3, 0.7, 0.88, 0.12])
    assert attribute_summary(names, probs) == ["female 0.93", "upper: white 0.88", "age: adult 0.70"]
    assert attribute_summary([], None) == []


def test_run_yaml_mirrors_the_defaults():
    from core.config import load_config, read_yaml, to_dict
    from pipeline.config import RunConfig

    path = REPO / "configs" / "run.yaml"
    assert read_yaml(path) == to_dict(RunConfig())      # every key present with the default value
    assert load_config(RunConfig, path) == RunConfig()


def test_stitched_chunks_keep_a_fallback_feature_only_when_no_piece_has_a_real_one():
    from types import SimpleNamespace

    from pipeline.run.chunks import _merge

    def piece(tid, feat, fallback):
        return (Tracklet("c", tid, 0, 9, 0.0, 0.9, 10, np.asarray([feat], np.float32), np.ones(1, np.float32),
                         fallback=fallback), Path("."), [])

    rows = np.array([[f, 0, 0, 10, 20] for f in range(20)], float)
    src = SimpleNamespace(time_of=lambda i: i / 10.0)
    real, weak = piece(1, [1.0, 0.0], False), piece(2, [0.0, 1.0], True)
    one = _merge("c", 5, [weak, real], rows, src, gallery_size=10)
    np.testing.assert_array_equal(one.features, [[1.0, 0.0]])            # the real piece's feature only
    assert not one.fallback
    only = _merge("c", 6, [weak, piece(3, [0.6, 0.8], True)], rows, src, gallery_size=10)
    assert only.fallback and len(only.features) == 2

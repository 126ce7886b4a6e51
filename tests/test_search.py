"""pipeline.search: attribute queries, ranking on constructed embeddings, filters, examples, run galleries.

``make_run_folder`` (also used by the other search tests) writes a run folder the way ``mcmt run``
does (cache tracklets, identities.json, run.json) from hand-made features and attributes.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.atomic import atomic_write_json
from core.errors import UserError
from pipeline.outputs.writers import build_identities, write_identities
from pipeline.runfolder.cache import save_tracklets
from pipeline.search.attributes import joint_probability, parse_attributes, vocabulary
from pipeline.search.gallery import Vectors, from_tracklets, load_run, quantize
from pipeline.search.rank import Query, example_embedding, example_rows, rank
from pipeline.tracklet import Tracklet

NAMES = ("female", "hat", "upper_color:red", "upper_color:blue", "upper_color:black")


def unit(*v) -> np.ndarray:
    x = np.asarray(v, np.float32)
    return x / np.linalg.norm(x)


def tracklet(cam, tid, t0, t1, feat, attrs=None, n=10, names=NAMES) -> Tracklet:
    f = None if feat is None else np.asarray(feat, np.float32).reshape(1, -1)
    return Tracklet(camera=cam, track_id=tid, start_frame=int(t0 * 10), end_frame=int(t1 * 10), start_time=t0,
                    end_time=t1, n_boxes=n, features=np.zeros((0, 0), np.float32) if f is None else f,
                    weights=np.ones(0 if f is None else 1, np.float32),
                    attributes=None if attrs is None else np.asarray(attrs, np.float32),
                    attribute_names=tuple(names) if attrs is not None else ())


def make_run_folder(root: Path, spec: dict, reid: str = "default", cameras=("cam1", "cam2"), names=NAMES) -> Path:
    """spec: global id -> [(camera, track id, t0, t1, feature, attributes, n_boxes)]."""
    root.mkdir(parents=True, exist_ok=True)
    cams = [{"name": c, "video": f"{c}.mp4", "fps": 10, "frames": 1000} for c in cameras]
    ts, gids = [], []
    for gid, rows in spec.items():
        for cam, tid, t0, t1, feat, attrs, n in rows:
            ts.append(tracklet(cam, tid, t0, t1, feat, attrs, n, names))
            gids.append(gid)
    for c in cameras:
        save_tracklets(root / "cache" / c, [t for t in ts if t.camera == c], {})
        atomic_write_json(root / "cache" / c / "track.json", {"complete": True, "key": "x"})
    thumbs = {}
    for gid in spec:
        (root / "thumbs").mkdir(exist_ok=True)
        for cam in {r[0] for r in spec[gid]}:
            rel = f"thumbs/{gid}_{cam}_0.jpg"
            _write_jpeg(root / rel, gid)
            thumbs.setdefault(gid, {})[cam] = [rel]
    write_identities(root, build_identities(cams, ts, np.array(gids), thumbs, names if any(
        t.attributes is not None for t in ts) else (), {}))
    atomic_write_json(root / "run.json", {"cameras": cams, "config": {"reid": {"checkpoint": reid},
                                                                       "detector": {"model": "default"}}})
    return root


def _write_jpeg(path: Path, gid: int) -> None:
    import cv2
    img = np.zeros((64, 32, 3), np.uint8)
    img[:] = (40 * gid % 255, 80, 160)
    cv2.imwrite(str(path), img)


# a run: id 1 = "red woman" in both cameras, 2 = "blue man with hat" in cam2, 3 = "black" in cam1 late
A, B, C = unit(1, 0, 0, 0), unit(0, 1, 0, 0), unit(0, 0, 1, 0)
SPEC = {
    1: [("cam1", 1, 0.0, 10.0, unit(1, 0.1, 0, 0), [0.9, 0.1, 0.8, 0.1, 0.1], 20),
        ("cam2", 4, 20.0, 30.0, unit(1, 0, 0.2, 0), [0.7, 0.2, 0.6, 0.2, 0.2], 10)],
    2: [("cam2", 2, 5.0, 15.0, unit(0.1, 1, 0, 0), [0.2, 0.8, 0.1, 0.8, 0.1], 30)],
    3: [("cam1", 7, 40.0, 50.0, unit(0, 0.2, 1, 0), [0.4, 0.3, 0.1, 0.1, 0.8], 5)],
}


@pytest.fixture()
def run(tmp_path) -> Path:
    return make_run_folder(tmp_path / "run", SPEC)


# ---- attribute words ------------------------------------------------------------------------------
def test_parse_binary_negated_and_class_terms():
    assert parse_attributes("no-hat", NAMES) == parse_attributes("-hat", NAMES)
    terms = parse_attributes("female -hat upper_color=red, upper_color:blue", NAMES)
    assert [(t.group, t.columns, t.negate) for t in terms] == [("female", (0,), False), ("hat", (1,), True),
                                                               ("upper_color", (2, 3), False)]


def test_unknown_word_lists_valid_words():
    with pytest.raises(UserError) as exc:
        parse_attributes("female red upper_color=orange", NAMES, "mymodel")
    msg = str(exc.value)
    assert "'red'" in msg and "'upper_color=orange'" in msg and "mymodel" in msg
    assert "female hat upper_color=red|blue|black" in msg
    assert vocabulary(NAMES) == ["female", "hat", "upper_color=red|blue|black"]


def test_model_without_attributes_says_so():
    with pytest.raises(UserError, match="predicts no attributes"):
        parse_attributes("female", (), "person-reidentification-retail-0286")


def test_contradicting_words_are_an_error():
    with pytest.raises(UserError, match="both"):
        parse_attributes("hat -hat", NAMES)


def test_joint_probability_by_hand():
    p = np.array([[0.9, 0.1, 0.5, 0.3, 0.2], [0.5, 0.5, 0.1, 0.1, 0.8]], np.float32)
    terms = parse_attributes("female -hat upper_color=red upper_color=blue", NAMES)
    np.testing.assert_allclose(joint_probability(p, terms), [0.9 * 0.9 * 0.8, 0.5 * 0.5 * 0.2], rtol=1e-6)


# ---- ranking ----------------------------------------------------------------------------------------
def gallery(spec=SPEC):
    ts, gids = [], []
    for gid, rows in spec.items():
        for cam, tid, t0, t1, feat, attrs, n in rows:
            ts.append(tracklet(cam, tid, t0, t1, feat, attrs, n))
            gids.append(gid)
    return from_tracklets("r", None, ["cam1", "cam2"], ts, gids, {"name": "m", "dim": 4})


def test_appearance_ranks_by_best_tracklet():
    res = rank([gallery()], Query(embedding=unit(1, 0, 1, 0)))
    assert [r.identity for r in res] == [1, 3, 2]
    # id 1: best of its two tracklets, cos(unit(1,0,.2,0), unit(1,0,1,0)) = 1.2 / (sqrt(1.04) sqrt(2))
    assert res[0].score == pytest.approx(1.2 / np.sqrt(1.04 * 2), abs=1e-5)
    assert res[0].appearance == res[0].score and res[0].attributes is None


def test_attributes_use_box_weighted_identity_means():
    res = rank([gallery()], Query(terms=tuple(parse_attributes("female upper_color=red", NAMES))))
    # id 1: female (20*.9 + 10*.7)/30, red (20*.8 + 10*.6)/30
    assert [r.identity for r in res] == [1, 3, 2]
    assert res[0].score == pytest.approx((25 / 30) * (22 / 30), abs=1e-5)
    assert res[1].score == pytest.approx(0.4 * 0.1, abs=1e-5)


def test_both_scores_multiply():
    q = Query(embedding=unit(0, 1, 0, 0), terms=tuple(parse_attributes("hat", NAMES)))
    res = {r.identity: r for r in rank([gallery()], q)}
    cos2 = float(unit(0.1, 1, 0, 0) @ unit(0, 1, 0, 0))
    assert res[2].score == pytest.approx((1 + cos2) / 2 * 0.8, abs=1e-5)
    assert max(res.values(), key=lambda r: r.score).identity == 2


def test_camera_and_time_filters():
    g = gallery()
    res = rank([g], Query(embedding=A, cameras=("cam2",)))
    assert [r.identity for r in res] == [1, 2]
    assert res[0].cameras == ["cam2"] and [t["track_id"] for t in res[0].tracklets] == [4]
    assert res[0].first_seen == 20.0 and res[0].last_seen == 30.0
    # overlap with [12, 22]: id 1's cam2 tracklet (20-30) and id 2 (5-15), not id 1's cam1 one (0-10)
    res = rank([g], Query(embedding=A, t_from=12, t_to=22))
    assert {r.identity: [t["track_id"] for t in r.tracklets] for r in res} == {1: [4], 2: [2]}
    assert rank([g], Query(embedding=A, t_from=100)) == []


def test_appearance_counts_every_camera_of_an_identity_filters_choose_what_is_shown():
    # id 1 looks like the query in cam1 only; in cam2 (the filter) id 2 is closer than id 1's cam2 tracklet
    spec = {1: [("cam1", 1, 0.0, 10.0, unit(1, 0, 0, 0), None, 20), ("cam2", 4, 20.0, 30.0, unit(0.3, 0, 1, 0), None, 10)],
            2: [("cam2", 2, 5.0, 15.0, unit(0.5, 0, 1, 0), None, 30)],
            3: [("cam1", 7, 40.0, 50.0, unit(0.9, 0.1, 0, 0), None, 5)]}
    res = rank([gallery(spec)], Query(embedding=A, cameras=("cam2",)))
    assert [r.identity for r in res] == [1, 2]                              # id 3 is never in cam2
    assert res[0].score == pytest.approx(1.0) and res[0].best_match == {"camera": "cam1", "track_id": 1}
    assert [(t["camera"], t["track_id"]) for t in res[0].tracklets] == [("cam2", 4)]
    assert res[0].to_dict()["best_match"] == {"camera": "cam1", "track_id": 1}
    # the example's own rows give no score: without cam1 track 1, id 1 falls back to its cam2 tracklet
    res = rank([gallery(spec)], Query(embedding=A, cameras=("cam2",), exclude={"r": np.array([0])}))
    assert [r.identity for r in res] == [2, 1]
    assert res[1].best_match == {"camera": "cam2", "track_id": 4}


def test_top_and_ties_are_deterministic():
    spec = {gid: [("cam1", gid, 0.0, 1.0, unit(1, 0, 0, 0), None, 5)] for gid in (5, 3, 9, 1)}
    res = rank([gallery(spec)], Query(embedding=A, top=3))
    assert [r.identity for r in res] == [1, 3, 5]


def test_rank_merges_galleries_best_first():
    g1, g2 = gallery(), gallery({8: [("cam1", 1, 0.0, 1.0, unit(1, 0, 0.05, 0), None, 5)]})
    g2.run = "other"
    res = rank([g1, g2], Query(embedding=A, top=2))
    assert [(r.run, r.identity) for r in res] == [("other", 8), ("r", 1)]


def test_example_specs_and_exclusion():
    g = gallery()
    assert list(example_rows(g, "1")) == [0, 1]
    assert list(example_rows(g, "cam2:1")) == [1]
    assert list(example_rows(g, "cam1:t7")) == [3]
    for bad, msg in (("cam9:1", "cameras: cam1, cam2"), ("cam1:2", "identity 2 is not"), ("x", "expected")):
        with pytest.raises(UserError, match=msg):
            example_rows(g, bad)
    rows = example_rows(g, "cam1:1")
    res = rank([g], Query(embedding=example_embedding(g, rows), exclude={"r": rows}))
    assert res[0].identity == 1 and [t["track_id"] for t in res[0].tracklets] == [4]   # its other camera


def test_query_needs_something_and_a_valid_window():
    with pytest.raises(UserError, match="nothing to search"):
        Query()
    with pytest.raises(UserError, match="before"):
        Query(embedding=A, t_from=10, t_to=5)


def test_int8_vectors_rank_like_float32():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5000, 256)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q = x[17] + 0.5 * x[99]
    codes, scale = quantize(x)
    exact, approx = Vectors(x).dot(q), Vectors(codes, scale).dot(q)
    assert np.abs(exact - approx).max() < 0.01
    assert set(np.argsort(-exact)[:10]) == set(np.argsort(-approx)[:10])


# ---- run folders ------------------------------------------------------------------------------------
def test_load_run_reads_global_ids_features_and_model(run):
    g = load_run(run)
    assert sorted(g.gids.tolist()) == [1, 2, 3] and len(g) == 4
    assert g.model["name"] == "default" and g.model["dim"] == 4 and len(g.model["sha256"]) == 64
    assert g.attribute_names == NAMES
    assert g.thumbnails[1] == {"cam1": ["thumbs/1_cam1_0.jpg"], "cam2": ["thumbs/1_cam2_0.jpg"]}
    res = rank([g], Query(embedding=unit(0, 0, 1, 0)))
    assert res[0].identity == 3


def test_identities_json_carries_compact_identity_embeddings(run):
    import base64
    doc = json.loads((run / "identities.json").read_text())
    assert doc["embedding_dim"] == 4
    e = np.frombuffer(base64.b64decode(doc["identities"][0]["embedding_f16"]), "<f2").astype(np.float32)
    w = 20 * unit(1, 0.1, 0, 0) + 10 * unit(1, 0, 0.2, 0)
    np.testing.assert_allclose(e, w / np.linalg.norm(w), atol=1e-3)


def test_empty_or_broken_runs_are_clear_errors(tmp_path):
    with pytest.raises(UserError, match="no identities.json"):
        load_run(tmp_path)
    empty = make_run_folder(tmp_path / "empty", {})
    with pytest.raises(UserError, match="no identities"):
        load_run(empty)
    run = make_run_folder(tmp_path / "run", SPEC)
    (run / "cache" / "cam2" / "tracklets.npz").unlink()
    with pytest.raises(UserError, match="cam2"):
        load_run(run)


def test_selective_filters_score_only_kept_rows_with_the_same_result():
    rng = np.random.default_rng(1)
    n = 2000
    x = rng.standard_normal((n, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    cams = [f"cam{i}" for i in range(8)]
    ts = [tracklet(cams[i % 8], i, float(i), float(i) + 5, x[i]) for i in range(n)]
    codes, scale = quantize(x)
    g = from_tracklets("r", None, cams, ts, [i // 4 + 1 for i in range(n)], {"name": "m", "dim": 16})
    g.vectors = Vectors(codes, scale)
    gids = np.array([i // 4 + 1 for i in range(n)])
    cam = np.arange(n) % 8
    q = x[41]
    # cam0 keeps 1/8 of the rows, identities with a cam0 row hold 1/4 of them: the sparse path
    res = rank([g], Query(embedding=q, cameras=("cam0",), top=5))
    dots = (codes.astype(np.float32) @ q) * scale
    shown = np.unique(gids[cam == 0])
    best_of = {int(i): dots[gids == i].max() for i in shown}               # over all cameras of the identity
    expect = sorted(best_of, key=lambda i: (-best_of[i], i))[:5]
    assert [r.identity for r in res] == expect
    np.testing.assert_allclose(res[0].score, best_of[expect[0]], rtol=1e-6)
    assert all(t["camera"] == "cam0" for r in res for t in r.tracklets)
    dense = rank([g], Query(embedding=q, top=len(g.gids)))                  # no filter: the dense path
    assert {r.identity: r.score for r in dense if r.identity in best_of} == pytest.approx(
        {i: float(v) for i, v in best_of.items()}, abs=1e-6)

"""The ground plane in the association (pipeline/association/ground.py) and in the outputs (world columns of
mtmc.txt, trajectories, transitions, mcmt calibrate)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.association.associate import associate_detailed
from pipeline.association.config import AssociationConfig
from pipeline.formats.calibration import CameraCalibration, GroundCalibration, apply_homography
from pipeline.tracklet import Tracklet

FPS = 10
# image -> ground (metres): camera a looks one way, camera b another (a perspective tilt each, no mirror)
HA = np.array([[0.010, 0.001, -2.0], [0.0005, 0.020, -4.0], [0.0, 0.0004, 1.0]])
HB = np.array([[-0.012, 0.001, 8.0], [0.0, -0.018, 10.0], [0.0, -0.0003, 1.0]])   # from the other side (turned 180)
CFG = AssociationConfig(threshold=0.3, link_threshold=0.4, same_camera_threshold=None, overlap_geometry=False)


def ground_cal(**cams) -> GroundCalibration:
    return GroundCalibration({n: CameraCalibration(n, h, "inline") for n, h in cams.items()}, "m")


def walk(h, t0, t1, start, velocity, height_m=1.7):
    """Footprints (time, u, v, box height px) of a person walking on the ground, seen through image->ground h."""
    times = np.arange(t0, t1 + 1e-9, 1.0 / FPS)
    xy = np.asarray(start, float) + np.outer(times - t0, velocity)
    uv = apply_homography(np.linalg.inv(h), xy)
    scale = CameraCalibration("x", h, "").scale(uv)                       # metres per pixel
    return np.column_stack([times, uv, height_m / scale]).astype(np.float32)


def trk(cam, tid, fp, feat):
    t0, t1 = float(fp[0, 0]), float(fp[-1, 0])
    return Tracklet(cam, tid, int(round(t0 * FPS)), int(round(t1 * FPS)), t0, t1, n_boxes=len(fp),
                    features=np.asarray(feat, np.float32).reshape(1, -1), weights=np.ones(1, np.float32),
                    footprints=fp)


def unit(rng):
    v = rng.normal(size=32) + 1.0
    return v / np.linalg.norm(v)


def both_views(seed=0):
    """Four people on the floor at once, seen by a and b; b renders everyone in other colours."""
    rng = np.random.default_rng(seed)
    ts, truth = [], []
    for p, (start, vel) in enumerate([((0, 0), (1.2, 0.2)), ((4, 1), (-0.8, 0.9)), ((1, 5), (0.9, -1.0)),
                                      ((5, 5), (0.1, 1.3))]):
        ts.append(trk("a", p + 1, walk(HA, 2.0 * p, 2.0 * p + 8, start, vel), unit(rng)))
        ts.append(trk("b", p + 1, walk(HB, 2.0 * p + 0.5, 2.0 * p + 7.5, np.add(start, 0.5 * np.array(vel)), vel),
                      unit(rng)))
        truth += [p, p]
    return ts, np.array(truth)


def same_partition(ids, truth) -> bool:
    return len(set(zip(ids.tolist(), truth.tolist()))) == len(set(ids.tolist())) == len(set(truth.tolist()))


def test_same_place_same_time_joins_people_whose_looks_differ_between_views():
    ts, truth = both_views()
    plain = associate_detailed(ts, CFG)
    assert not same_partition(plain.global_ids, truth)              # appearance alone cannot do it
    res = associate_detailed(ts, CFG, ground=ground_cal(a=HA, b=HB))
    assert same_partition(res.global_ids, truth), res.global_ids
    assert res.stats["ground_same"] == 4 and res.stats["ground_pairs"] >= 4


def test_far_apart_at_the_same_time_is_never_one_person():
    rng = np.random.default_rng(3)
    look = unit(rng)
    ts = [trk("a", 1, walk(HA, 0, 8, (0, 0), (1, 0)), look),
          trk("b", 1, walk(HB, 0, 8, (0, 6), (1, 0)), look + 0.01 * rng.normal(size=32))]   # 6 m away
    assert associate_detailed(ts, CFG).global_ids.tolist() == [1, 1]          # they look the same
    res = associate_detailed(ts, CFG, ground=ground_cal(a=HA, b=HB))
    assert res.global_ids.tolist() == [1, 2] and res.stats["ground_different"] == 1


def test_transit_faster_than_people_walk_is_cannot_link():
    """Camera c sees another floor area; a look-alike appears there 1 s after a person left a, 40 m away."""
    rng = np.random.default_rng(4)
    hc = HA.copy()
    hc[0, 2] += 40.0                                                  # c's floor starts 40 m further along X
    look = unit(rng)
    ts = [trk("a", 1, walk(HA, 0, 6, (0, 0), (1.2, 0)), look),
          trk("c", 1, walk(hc, 7, 13, (41, 0), (1.2, 0)), look + 0.01 * rng.normal(size=32))]
    ts += [trk("a", 2 + k, walk(HA, 20 + 8 * k, 27 + 8 * k, (0, 2 + k), (1.0, 0.3)), unit(rng)) for k in range(3)]
    assert associate_detailed(ts, CFG).global_ids[0] == associate_detailed(ts, CFG).global_ids[1]
    res = associate_detailed(ts, CFG, ground=ground_cal(a=HA, c=hc))
    assert res.global_ids[0] != res.global_ids[1]
    assert res.stats["ground_transit_blocked"] >= 1 and 0.5 < res.stats["ground_speed"][0] < 2.0


def test_without_calibration_the_association_is_unchanged():
    ts, truth = both_views(seed=5)
    a = associate_detailed(ts, AssociationConfig())
    b = associate_detailed(ts, AssociationConfig(), ground=None)
    assert a.global_ids.tolist() == b.global_ids.tolist() and not any(k.startswith("ground") for k in b.stats)


# --- outputs ----------------------------------------------------------------------------------------------------

def test_mtmc_world_columns_for_calibrated_cameras_only(tmp_path):
    from pipeline.formats.aicity import read_mtmc
    from pipeline.outputs.world import box_world
    from pipeline.outputs.writers import write_tracks

    cal = ground_cal(a=HA)
    boxes = np.array([[f, 1, 100 + f, 200, 140 + f, 300, 0.9] for f in range(12)], np.float64)
    world = {n: box_world(boxes, cal, n) for n in ("a", "b")}
    assert world["b"] is None
    write_tracks(tmp_path, ["a", "b"], {"a": boxes, "b": boxes}, {"a": {1: 1}, "b": {1: 2}}, world)
    rows = read_mtmc(tmp_path / "mtmc.txt")
    a, b = rows[rows[:, 0] == 1], rows[rows[:, 0] == 2]
    expect = apply_homography(HA, np.column_stack([boxes[:, 2] + 20, boxes[:, 5]]))  # foot points, a straight walk
    np.testing.assert_allclose(a[:, 7:9], expect, atol=2e-3)          # the median of a straight line is the line
    assert (b[:, 7:9] == -1).all()


def test_smoothing_removes_a_jumping_box():
    from pipeline.outputs.world import box_world

    boxes = np.array([[f, 3, 100, 200, 140, 300 + (60 if f == 5 else 0), 0.9] for f in range(11)], np.float64)
    w = box_world(boxes, ground_cal(a=HA), "a")
    np.testing.assert_allclose(w[5], apply_homography(HA, [[120, 300]])[0], atol=1e-9)


def test_trajectories_and_transitions():
    from pipeline.outputs.world import trajectories, transitions

    rows = np.full((4, 10), -1.0)
    rows[:, 0], rows[:, 1] = [1, 2, 11, 12], 7
    rows[:, 7:9] = [[0, 0], [2, 0], [4, 0], [6, 0]]
    traj = trajectories({"a": rows}, [{"name": "a", "fps": 10.0, "offset": 0.0}], step=0.5)
    assert traj == {7: [[0.05, 1.0, 0.0], [1.05, 5.0, 0.0]]}                 # mean time and place per step
    idents = [{"global_id": g, "tracklets": [{"camera": c, "start_time": s, "end_time": e} for c, s, e in tl]}
              for g, tl in [(1, [("a", 0, 10), ("b", 14, 20)]), (2, [("a", 0, 5), ("b", 8, 9), ("a", 12, 13)]),
                            (3, [("b", 0, 5), ("a", 3, 9)])]]
    assert transitions(idents) == [{"from": "a", "to": "b", "people": 2, "median_seconds": 3.5},
                                   {"from": "b", "to": "a", "people": 1, "median_seconds": -2.0}]


def test_calibrate_command_writes_the_entry_and_a_check_picture(tmp_path, capsys):
    import cv2
    import yaml

    from pipeline.cli import main
    from pipeline.formats.calibration import load_calibration

    image = np.full((480, 640, 3), 90, np.uint8)
    cv2.imwrite(str(tmp_path / "frame.png"), image)
    uv = np.array([[50, 460], [600, 450], [520, 260], [120, 270], [320, 350]], float)
    pts = np.column_stack([uv, apply_homography(HA, uv)])
    (tmp_path / "pts.txt").write_text("# u v X Y\n" + "\n".join(" ".join(f"{v:.6f}" for v in r) for r in pts[:4]))
    out = tmp_path / "calibration.yaml"
    argv = ["calibrate", "--camera", "cam1", "--video", str(tmp_path / "frame.png"), "--points",
            str(tmp_path / "pts.txt"), "--point", ",".join(f"{v:.6f}" for v in pts[4]), "--out", str(out),
            "--units", "m"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "median reprojection error 0.00 px over 5 of 5 points" in text
    cal = load_calibration(out)
    np.testing.assert_allclose(cal.to_ground("cam1", [[300, 400]]), apply_homography(HA, [[300, 400]]), rtol=1e-4)
    assert yaml.safe_load(out.read_text())["units"] == "m"
    pic = cv2.imread(str(tmp_path / "calibration_cam1.jpg"))
    assert pic is not None and (np.abs(pic.astype(int) - image).sum(axis=2) > 60).mean() > 0.01   # grid drawn


def test_calibrate_rejects_a_bad_points_line(tmp_path):
    from core.errors import UserError
    from pipeline.commands.calibrate import parse_points

    with pytest.raises(UserError, match=r"pts.txt:2: expected 4 numbers"):
        parse_points("1 2 3 4\n1 2 3\n", "pts.txt")


def test_search_results_say_where_the_person_was():
    from pipeline.search.gallery import from_tracklets
    from pipeline.search.rank import Query, rank
    from pipeline.search.results import format_table

    feats = [np.array([1, 0, 0, 0], np.float32), np.array([0, 1, 0, 0], np.float32)]
    ts = [Tracklet("cam1", k + 1, 0, 100, 10.0 * k, 10.0 * k + 10, n_boxes=20, features=f.reshape(1, -1),
                   weights=np.ones(1, np.float32)) for k, f in enumerate(feats)]
    traj = {1: [[t, 0.5 * t, 1.0] for t in range(0, 11)], 2: [[t, 3.0, t - 10.0] for t in range(10, 21)]}
    g = from_tracklets("r", None, ["cam1"], ts, [1, 2], {"name": "m", "dim": 4}, trajectories=traj)
    res = rank([g], Query(embedding=feats[1], t_from=12, t_to=15))
    assert res[0].identity == 2 and res[0].where == traj[2]
    assert res[0].to_dict()["where"][0] == [10, 3.0, 0.0]
    assert "(3, 0) -> (3, 10)" in format_table(res)
    plain = from_tracklets("r", None, ["cam1"], ts, [1, 2], {"name": "m", "dim": 4})
    res = rank([plain], Query(embedding=feats[1]))
    assert res[0].where is None and "where" not in res[0].to_dict() and "where" not in format_table(res)


@pytest.mark.parametrize("command", ["run", "associate"])
def test_a_bad_calibration_stops_run_and_associate_before_any_work(tmp_path, capsys, command):
    import json

    from pipeline.cli import main

    repo = Path(__file__).resolve().parents[1]
    bad = tmp_path / "calib.yaml"
    bad.write_text("cameras:\n  nosuch:\n    homography: [[1, 0, 0], [0, 1, 0], [0, 0, 1]]\n")
    out = tmp_path / "out"
    if command == "run":
        argv = ["run", "--videos", str(repo / "samples" / "pets_left.mp4"), str(repo / "samples" / "pets_right.mp4"),
                "--calibration", str(bad), "--out", str(out)]
    else:                                         # a run folder whose cache was never written
        out.mkdir()
        (out / "run.json").write_text(json.dumps({"cameras": [{"name": "pets_left", "width": 384, "height": 288}],
                                                  "config": {}}))
        argv = ["associate", "--run", str(out), "--calibration", str(bad)]
    assert main(argv) != 0
    err = capsys.readouterr().err
    assert "camera(s) nosuch are not in this run" in err and "pets_left" in err
    assert not (out / "cache").exists() and not (out / "identities.json").exists()


def test_field_of_view_is_the_floor_in_front_of_the_camera():
    import cv2

    from pipeline.outputs.world import fields_of_view

    fov = fields_of_view(ground_cal(a=HA), [{"name": "a", "width": 640, "height": 480}, {"name": "b"}])
    assert list(fov) == ["a"]
    poly, near = np.array(fov["a"]["polygon"], np.float32), fov["a"]["near"]
    np.testing.assert_allclose(near, apply_homography(HA, [[320, 480]])[0], atol=1e-3)
    assert len(poly) >= 4 and np.isfinite(poly).all()
    assert cv2.pointPolygonTest(poly, (float(near[0]), float(near[1]) - 0.01), False) >= 0   # on the near edge
    # the horizon of HA is at v = -2500: the whole image is floor, so the polygon is the image's four corners
    corners = apply_homography(HA, [[0, 0], [640, 0], [640, 480], [0, 480]])
    for c in corners:
        assert np.min(np.hypot(*(poly - c).T)) < 1e-2


def test_calibration_decides_where_the_run_cannot_learn_the_views_geometry():
    """Two people seen by both cameras: too few for overlap.py to learn the views' homography from the run,
    enough for the calibration's (the run-learned overlap stays on)."""
    ts, truth = both_views(seed=7)
    ts, truth = ts[:4], truth[:4]
    cfg = AssociationConfig(threshold=0.3, link_threshold=0.4, same_camera_threshold=None)
    plain = associate_detailed(ts, cfg)
    assert plain.stats["overlap_models"] == 0 and not same_partition(plain.global_ids, truth)
    res = associate_detailed(ts, cfg, ground=ground_cal(a=HA, b=HB))
    assert same_partition(res.global_ids, truth) and res.stats["ground_same"] == 2

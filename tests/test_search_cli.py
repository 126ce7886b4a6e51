"""'mcmt search' and 'mcmt index' end to end: table, --json, --html, errors; image queries with the real
default ReID model and detector on crops of the sample videos."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from pipeline.cli import main
from test_search import SPEC, make_run_folder, unit

REPO = Path(__file__).resolve().parents[1]


def search(capsys, *args) -> tuple[int, str, str]:
    code = main(["search", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture()
def run(tmp_path) -> Path:
    return make_run_folder(tmp_path / "run", SPEC)


def test_attribute_search_table_and_json(run, tmp_path, capsys):
    out_json = tmp_path / "hits.json"
    code, out, _ = search(capsys, "--run", str(run), "--attributes", "female upper_color=red", "--json", str(out_json))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["rank", "identity", "score"]
    assert [ln.split()[1] for ln in lines[1:]] == ["1", "3", "2"]
    doc = json.loads(out_json.read_text())
    assert doc["query"]["attributes"] == ["female", "upper_color=red"] and doc["query"]["run"] == str(run)
    first = doc["results"][0]
    assert first["identity"] == 1 and first["cameras"] == ["cam1", "cam2"]
    assert (first["first_seen"], first["last_seen"]) == (0.0, 30.0)
    assert [t["track_id"] for t in first["tracklets"]] == [1, 4]
    scores = [r["score"] for r in doc["results"]]
    assert scores == sorted(scores, reverse=True)


def test_example_with_camera_filter_and_html(run, tmp_path, capsys):
    page = tmp_path / "hits.html"
    code, out, _ = search(capsys, "--run", str(run), "--example", "cam1:1", "--cameras", "cam2", "--html", str(page))
    assert code == 0
    assert [ln.split()[1] for ln in out.splitlines()[1:]] == ["1", "2"]      # id 1's cam2 tracklet first
    text = page.read_text()
    assert [int(x) for x in re.findall(r'data-identity="(\d+)"', text)] == [1, 2]
    assert text.count("data:image/jpeg;base64,") == 2                       # one cam2 thumbnail each
    assert not re.search(r'(src|href)="(https?:)?//', text)


def test_time_window_and_top(run, capsys):
    code, out, _ = search(capsys, "--run", str(run), "--attributes", "no-hat", "--from", "35", "--top", "1")
    assert code == 0 and [ln.split()[1] for ln in out.splitlines()[1:]] == ["3"]


@pytest.mark.parametrize("args,msg", [
    (["--attributes", "female red"], "valid: female hat upper_color=red|blue|black"),
    (["--attributes", "female", "--cameras", "cam9"], "unknown camera(s) cam9; cameras: cam1, cam2"),
    (["--example", "cam1:99"], "identity 99 is not in run"),
    (["--box", "1,2,3,4", "--attributes", "hat"], "give --image too"),
    (["--image", "missing.jpg"], "query image not found"),
    ([], "nothing to search for"),
])
def test_bad_input_is_a_one_line_error(run, capsys, args, msg):
    code, _, err = search(capsys, "--run", str(run), *args)
    assert code == 2
    assert msg in err and len(err.strip().splitlines()) == 1


def test_unreadable_image_and_empty_run(run, tmp_path, capsys):
    bad = tmp_path / "bad.jpg"
    bad.write_text("not a jpeg")
    assert "cannot read the query image" in search(capsys, "--run", str(run), "--image", str(bad), "--crop")[2]
    empty = make_run_folder(tmp_path / "empty", {})
    code, _, err = search(capsys, "--run", str(empty), "--attributes", "female")
    assert code == 2 and "no identities" in err


def test_index_commands(run, tmp_path, capsys):
    db = str(tmp_path / "db")
    assert main(["index", "add", str(run), "--index", db]) == 0
    assert main(["index", "add", str(run), "--index", db]) == 0
    out = capsys.readouterr().out
    assert out.startswith("added: run (id 1): 4 tracklets, 3 identities") and "unchanged: run (id 1)" in out
    assert main(["index", "list", "--index", db]) == 0
    assert "1 run(s), 4 tracklets" in capsys.readouterr().out
    code, out, _ = search(capsys, "--index", db, "--example", "run:cam1:1", "--cameras", "cam2")
    assert code == 0 and out.splitlines()[0].split()[:3] == ["rank", "run", "identity"]
    assert out.splitlines()[1].split()[1:3] == ["run", "1"]
    other = make_run_folder(tmp_path / "dim6", {1: [("cam1", 1, 0.0, 5.0, unit(1, 0, 0, 0, 0, 0), None, 10)]})
    assert main(["index", "add", str(other), "--index", db]) == 2
    assert "not comparable" in capsys.readouterr().err
    assert main(["index", "remove", "run", "--index", db]) == 0
    code, _, err = search(capsys, "--index", db, "--attributes", "female")
    assert code == 2 and "holds no run" in err
    assert main(["index", "list", "--index", str(tmp_path / "nope")]) == 2


# ---- real model, real crops -------------------------------------------------------------------------
def sample_people(n_people: int = 4):
    """(frame image by frame number, gt rows) of the n people with the tallest boxes among those seen in
    at least 80 frames of pets_left."""
    import cv2

    gt = np.loadtxt(REPO / "samples" / "gt" / "pets_left" / "gt" / "gt.txt", delimiter=",", ndmin=2)
    gt = gt[(gt[:, 2] >= 0) & (gt[:, 3] >= 0) & (gt[:, 2] + gt[:, 4] <= 258) & (gt[:, 3] + gt[:, 5] <= 384)]
    long = [p for p in np.unique(gt[:, 1]) if (gt[:, 1] == p).sum() >= 80]          # seen long enough
    pids = sorted(long, key=lambda p: -np.median(gt[gt[:, 1] == p, 5]))[:n_people]
    rows = {int(p): gt[gt[:, 1] == p][np.argsort(gt[gt[:, 1] == p][:, 0])] for p in pids}
    wanted = {int(r[0]) for rs in rows.values() for r in rs[[0, len(rs) // 3, len(rs) // 2, -1]]}
    cap, frames, f = cv2.VideoCapture(str(REPO / "samples" / "pets_left.mp4")), {}, 0
    while wanted - frames.keys():
        ok, img = cap.read()
        f += 1
        if not ok:
            break
        if f in wanted:
            frames[f] = img
    return frames, rows


def crop(frames, r):
    x, y, w, h = (int(round(v)) for v in r[2:6])
    return frames[int(r[0])][y:y + h, x:x + w]


def test_image_search_with_the_default_model_and_detector(tmp_path, capsys):
    import cv2

    from reid.encoder import ReIDEncoder

    enc = ReIDEncoder.from_checkpoint("default")
    frames, rows = sample_people()
    spec = {}
    for gid, (pid, rs) in enumerate(rows.items(), 1):
        feats, attrs = enc.embed([crop(frames, rs[0]), crop(frames, rs[len(rs) // 3])])
        f = feats.mean(0)
        spec[gid] = [("pets_left", gid, rs[0][0] / 7, rs[-1][0] / 7, f / np.linalg.norm(f), attrs.mean(0), 30)]
    run = make_run_folder(tmp_path / "run", spec, cameras=("pets_left",), names=enc.attribute_names)
    for gid, (pid, rs) in enumerate(rows.items(), 1):              # a later view of each person -> that person
        q = tmp_path / f"q{gid}.png"
        cv2.imwrite(str(q), crop(frames, rs[len(rs) // 2]))
        code, out, _ = search(capsys, "--run", str(run), "--image", str(q), "--crop")
        assert code == 0 and out.splitlines()[1].split()[1] == str(gid), out
    # the first query again, given as a box in the whole frame, and found by the detector
    rs = rows[next(iter(rows))]
    r = rs[len(rs) // 2]
    frame = tmp_path / "frame.png"
    cv2.imwrite(str(frame), frames[int(r[0])])
    js = tmp_path / "box.json"
    code, out, _ = search(capsys, "--run", str(run), "--image", str(frame), "--box", ",".join(map(str, r[2:6])),
                          "--json", str(js))
    assert code == 0 and json.loads(js.read_text())["results"][0]["identity"] == 1
    code, out, _ = search(capsys, "--run", str(run), "--image", str(frame), "--json", str(js))
    doc = json.loads(js.read_text())["query"]
    assert code == 0 and doc["box_from"] == "detected"
    gt_boxes = np.loadtxt(REPO / "samples" / "gt" / "pets_left" / "gt" / "gt.txt", delimiter=",", ndmin=2)
    gt_boxes = gt_boxes[gt_boxes[:, 0] == r[0], 2:6]
    x, y, w, h = doc["box"]
    ix1, iy1 = np.maximum(gt_boxes[:, 0], x), np.maximum(gt_boxes[:, 1], y)
    ix2, iy2 = np.minimum(gt_boxes[:, 0] + gt_boxes[:, 2], x + w), np.minimum(gt_boxes[:, 1] + gt_boxes[:, 3], y + h)
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    assert (inter / (w * h + gt_boxes[:, 2] * gt_boxes[:, 3] - inter)).max() > 0.5   # a real person's box
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((300, 200, 3), 200, np.uint8))
    code, _, err = search(capsys, "--run", str(run), "--image", str(blank))
    assert code == 2 and "no person found" in err and "--box" in err

"""The report's bird's-eye map (pipeline/outputs/report_map.py): drawn from identities.json trajectories and
fields of view, tied to the identity cards; camera transitions; the summary in plain words."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline.outputs import draw
from pipeline.outputs.report import write_report

CHROMIUM = "/usr/bin/chromium"
HAVE_CHROMIUM = Path(CHROMIUM).exists() or shutil.which("chromium") is not None


def make_run(tmp_path: Path, calibrated: bool = True) -> Path:
    run = tmp_path / "run"
    run.mkdir(parents=True)

    def tl(cam, a, b):
        return {"camera": cam, "track_id": 1, "start_frame": int(a * 10), "end_frame": int(b * 10),
                "start_time": a, "end_time": b, "n_boxes": int((b - a) * 10), "flagged": False}

    idents = [
        {"global_id": 1, "cameras": ["cam1", "cam2"], "tracklets": [tl("cam1", 0.0, 10.0), tl("cam2", 14.0, 30.0)],
         "time_spans": {"cam1": [0.0, 10.0], "cam2": [14.0, 30.0]}, "box_count": 260},
        {"global_id": 2, "cameras": ["cam2"], "tracklets": [tl("cam2", 5.0, 15.0)],
         "time_spans": {"cam2": [5.0, 15.0]}, "box_count": 100},
    ]
    if calibrated:
        idents[0]["trajectory"] = [[t, 1.0 + 0.3 * t, 2.0] for t in range(0, 31)]          # left -> right at y=2
        idents[1]["trajectory"] = [[t, 3.0, 9.0 - 0.5 * (t - 5)] for t in range(5, 16)]     # upwards at x=3
    summary = {"identities": 2, "tracklets": 3, "transitions": [
        {"from": "cam1", "to": "cam2", "people": 1, "median_seconds": 4.0}]}
    if calibrated:
        summary.update(calibration={"file": "c.yaml", "units": "m", "cameras": {"cam1": {}, "cam2": {}}},
                       fields_of_view={"cam1": {"polygon": [[0, 0], [6, 0], [6, 10], [0, 10]], "near": [3, 10]},
                                       "cam2": {"polygon": [[4, 0], [11, 0], [11, 10], [4, 10]], "near": [8, 0]}})
    doc = {"cameras": [{"name": "cam1", "video": "a.mp4", "fps": 10, "frames": 310},
                       {"name": "cam2", "video": "b.mp4", "fps": 10, "frames": 310}],
           "attribute_names": [], "identities": idents, "summary": summary, "embedding_dim": 0}
    (run / "identities.json").write_text(json.dumps(doc))
    return run


def test_map_polylines_follow_the_trajectories(tmp_path):
    text = write_report(make_run(tmp_path)).read_text()
    svg = re.search(r'<svg[^>]*class="map".*?</svg>', text, re.S).group(0)
    width = float(re.search(r'width="(\d+)"', svg).group(1))
    lines = dict(re.findall(r'<g class="traj" data-gid="(\d+)">.*?<polyline points="([^"]+)"', svg))
    assert set(lines) == {"1", "2"}
    p1 = np.array([[float(v) for v in p.split(",")] for p in lines["1"].split()])
    p2 = np.array([[float(v) for v in p.split(",")] for p in lines["2"].split()])
    assert np.ptp(p1[:, 1]) < 1e-6 and np.all(np.diff(p1[:, 0]) > 0)        # horizontal, left to right
    assert np.ptp(p2[:, 0]) < 1e-6 and np.all(np.diff(p2[:, 1]) < 0)        # vertical, upwards (Y down)
    k = (p1[-1, 0] - p1[0, 0]) / 9.0                                        # 9 m walked by ID 1
    assert p2[0, 1] - p2[-1, 1] == pytest.approx(5.0 * k, rel=1e-3)         # one scale for both axes
    assert 0 <= p1[:, 0].min() and p1[:, 0].max() <= width
    assert svg.count('class="fov"') == 2 and "m</text>" in svg               # fields of view, scale bar in m
    assert "cam1 &rarr; cam2</td><td>1</td><td>4.0 s" in text
    assert "2 cameras (cam1, cam2), 0:31 of footage. 2 people found, 1 of them seen by several cameras." in text
    assert "<details><summary>all numbers" in text


def test_no_map_without_calibration(tmp_path):
    text = write_report(make_run(tmp_path, calibrated=False)).read_text()
    assert 'class="map"' not in text and "<h2>Map</h2>" not in text and "select=" not in text.split("<body>")[1]


def chromium(page: Path, tmp_path: Path, fragment: str = "", screenshot: Path | None = None) -> str:
    exe = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
           f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1000,3000"]   # the whole page
    cmd += [f"--screenshot={screenshot}"] if screenshot else ["--dump-dom"]
    return subprocess.run(cmd + [f"{page.as_uri()}#{fragment}"], capture_output=True, text=True, timeout=90,
                          check=False).stdout


@pytest.mark.skipif(not HAVE_CHROMIUM, reason="headless Chromium not installed")
def test_map_is_drawn_in_headless_chromium(tmp_path):
    counts = {}
    for calibrated in (True, False):                  # the cards' borders have the identity colours too
        page = write_report(make_run(tmp_path / str(calibrated), calibrated))
        shot = tmp_path / f"map_{calibrated}.png"
        chromium(page, tmp_path, screenshot=shot)
        img = cv2.imread(str(shot))
        assert img is not None, "chromium wrote no screenshot"
        flat = img.reshape(-1, 3).astype(int)
        counts[calibrated] = [(np.abs(flat - np.array(draw.id_colour(g))).max(axis=1) <= 30).sum() for g in (1, 2)]
    for gid, with_map, without in zip((1, 2), counts[True], counts[False]):
        assert with_map - without > 300, f"trajectory of ID {gid} not visible on the map ({with_map} vs {without})"


@pytest.mark.skipif(not HAVE_CHROMIUM, reason="headless Chromium not installed")
def test_clicking_a_trajectory_selects_its_identity_in_chromium(tmp_path):
    page = write_report(make_run(tmp_path))

    def selected(dom: str) -> tuple[set, set]:
        assert 'class="map' in dom, "chromium returned no page"
        cards = set(re.findall(r'<div class="card selected" id="id-(\d+)"', dom))
        trajs = set(re.findall(r'<g class="traj selected" data-gid="(\d+)"', dom))
        return cards, trajs

    assert selected(chromium(page, tmp_path)) == (set(), set())
    dom = chromium(page, tmp_path, "select=2")                       # the page's hook clicks trajectory 2
    assert selected(dom) == ({"2"}, {"2"})
    assert re.search(r'<svg[^>]*class="map picking"', dom)            # the other paths fade

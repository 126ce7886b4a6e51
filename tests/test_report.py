"""pipeline.outputs.report: a generated run folder -> a self-contained report.html with every identity."""
from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline.outputs import draw
from core.errors import UserError
from pipeline.outputs.report import CAMERA_COLOURS, write_report

# thumbnail colours (BGR), one per identity: easy to find again in decoded images / screenshots
THUMB = {1: (0, 200, 255), 2: (200, 0, 200)}
CHROMIUM = "/usr/bin/chromium"


def make_run(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    (run / "thumbs").mkdir(parents=True)
    thumbs = {}
    for gid, cams in [(1, {"cam1": 3, "cam2": 2}), (2, {"cam2": 1})]:
        thumbs[gid] = {}
        for cam, n in cams.items():
            rels = []
            for k in range(n):
                img = np.zeros((160, 70, 3), np.uint8)
                img[:] = THUMB[gid]
                rel = f"thumbs/{gid}_{cam}_{k}.jpg"
                cv2.imwrite(str(run / rel), img)
                rels.append(rel)
            thumbs[gid][cam] = rels

    def tl(cam, tid, a, b, flagged=False):
        return {"camera": cam, "track_id": tid, "start_frame": int(a * 10), "end_frame": int(b * 10),
                "start_time": a, "end_time": b, "n_boxes": int((b - a) * 10), "flagged": flagged}

    doc = {
        "embedding_dim": 3,
        "cameras": [{"name": "cam1", "video": "a.mp4", "fps": 10, "frames": 300},
                    {"name": "cam2", "video": "b.mp4", "fps": 10, "frames": 300}],
        "attribute_names": ["female", "hat", "upper_color:red", "upper_color:blue"],
        "identities": [
            {"global_id": 1, "cameras": ["cam1", "cam2"], "tracklets": [tl("cam1", 1, 0.0, 10.0),
                                                                         tl("cam2", 4, 20.0, 30.0)],
             "time_spans": {"cam1": [0.0, 10.0], "cam2": [20.0, 30.0]}, "box_count": 200,
             "attributes": {"female": 0.93, "hat": 0.6, "upper_color:red": 0.7, "upper_color:blue": 0.3},
             "attribute_summary": ["female 0.93"], "thumbnails": thumbs[1], "embedding_f16": f16(1, 0, 0)},
            {"global_id": 2, "cameras": ["cam2"], "tracklets": [tl("cam2", 2, 5.0, 15.0)],
             "time_spans": {"cam2": [5.0, 15.0]}, "box_count": 100,
             "attributes": {"female": 0.2, "hat": 0.7, "upper_color:red": 0.2, "upper_color:blue": 0.8},
             "attribute_summary": ["hat 0.70"], "thumbnails": thumbs[2], "embedding_f16": f16(0.6, 0.8, 0)},
            {"global_id": 3, "cameras": ["cam1"], "tracklets": [tl("cam1", 7, 12.0, 13.0, True)],
             "time_spans": {"cam1": [12.0, 13.0]}, "box_count": 10, "attributes": {},
             "attribute_summary": [], "thumbnails": {}, "embedding_f16": f16(0, 1, 0)},
        ],
        "summary": {"identities": 3, "tracklets": 4},
    }
    (run / "identities.json").write_text(json.dumps(doc))
    return run


def f16(*v) -> str:
    x = np.asarray(v, np.float32)
    return base64.b64encode((x / np.linalg.norm(x)).astype("<f2").tobytes()).decode("ascii")


def inline_images(text: str) -> list[np.ndarray]:
    blobs = re.findall(r'src="data:image/jpeg;base64,([A-Za-z0-9+/=]+)"', text)
    return [cv2.imdecode(np.frombuffer(base64.b64decode(b), np.uint8), cv2.IMREAD_COLOR) for b in blobs]


def near(pixel, bgr, tol=25) -> bool:
    return bool(np.all(np.abs(np.asarray(pixel, int) - np.asarray(bgr, int)) <= tol))


def test_report_has_every_identity_and_inline_images(tmp_path):
    run = make_run(tmp_path)
    path = write_report(run)
    assert path == run / "report.html"
    text = path.read_text()
    assert text.count('class="card"') == 3
    for gid in (1, 2, 3):
        assert f'id="id-{gid}"' in text
        assert f'href="#id-{gid}"' in text
    assert text.count("<td>identities</td>") == 1
    assert "female 0.93" in text
    assert "no thumbnails" in text
    assert "1 short/low-quality" in text
    # self-contained: no external resources
    assert not re.search(r'(src|href)="(https?:)?//', text)
    assert "<link" not in text
    assert "<script src" not in text and re.findall(r"<script[^>]*>", text) == [
        '<script type="application/json" id="search-data">', "<script>"]          # inline data and code only
    imgs = inline_images(text)
    assert len(imgs) == 2
    # ID 1: 2 camera rows of (128+4)-px tiles (draw.identity_crops defaults), 3 crops in the widest row
    assert imgs[0].shape == (2 * 4 + 2 * 132 + 4, 2 * 4 + 90 + 3 * (68 + 4), 3)
    first_tile = (4 + 2, 4 + 90 + 4 + 2)                          # inside border, top-left of crop 1
    crop_px = imgs[0][first_tile[0] + 60, first_tile[1] + 30]
    assert near(crop_px, THUMB[1]), crop_px
    assert near(imgs[0][4 + 60, 4 + 90 + 4], draw.id_colour(1), tol=40)   # border in the id colour
    assert near(imgs[1][4 + 60, 4 + 90 + 4 + 2 + 30], THUMB[2])


def test_timeline_bars_at_hand_computed_positions(tmp_path):
    text = write_report(make_run(tmp_path)).read_text()
    svg = text[text.index("<svg"):text.index("</svg>")]
    assert svg.count("<rect") == 4                                 # one bar per tracklet
    # t0 = 0 s, t1 = 30 s, plot from x = 70 over 960 - 70 - 30 = 860 px: 20 s -> 70 + 20/30*860
    assert re.search(r'<rect x="643.3" y="\d+" width="286.7"', svg)
    cam2 = CAMERA_COLOURS[1]
    assert re.search(rf'x="643.3"[^>]*fill="{cam2}"', svg)


def test_missing_or_broken_identities_json(tmp_path):
    with pytest.raises(UserError, match="mcmt run"):
        write_report(tmp_path)
    (tmp_path / "identities.json").write_text("{not json")
    with pytest.raises(UserError, match="cannot read"):
        write_report(tmp_path)


def test_missing_thumbnail_becomes_placeholder(tmp_path):
    run = make_run(tmp_path)
    (run / "thumbs" / "2_cam2_0.jpg").unlink()
    imgs = inline_images(write_report(run).read_text())
    assert len(imgs) == 2
    assert not near(imgs[1][4 + 60, 4 + 90 + 4 + 2 + 30], THUMB[2])


@pytest.mark.skipif(not Path(CHROMIUM).exists() and shutil.which("chromium") is None,
                    reason="headless Chromium not installed")
def test_report_renders_in_headless_chromium(tmp_path):
    run = make_run(tmp_path)
    path = write_report(run)
    shot = tmp_path / "shot.png"
    exe = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
           f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1100,1400",
           path.as_uri()]
    subprocess.run(cmd, capture_output=True, timeout=90, check=False)
    img = cv2.imread(str(shot))
    assert img is not None, "chromium wrote no screenshot"
    flat = img.reshape(-1, 3).astype(int)
    for name, bgr in [("ID 1 crops", THUMB[1]), ("ID 2 crops", THUMB[2]),
                      ("cam1 timeline bar", (0xb4, 0x77, 0x1f))]:
        hits = (np.abs(flat - np.array(bgr)).max(axis=1) <= 25).sum()
        assert hits > 500, f"{name} not visible in the rendered page ({hits} pixels)"
    if Path("/tmp/viz").is_dir():                                   # keep a copy to look at by hand
        shutil.copyfile(shot, "/tmp/viz/report_screenshot.png")


def test_nice_ticks():
    from pipeline.outputs.report import nice_ticks
    assert nice_ticks(0.0, 30.0) == [0.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0]   # 30/5 = 6 <= 6 ticks
    assert nice_ticks(3.0, 113.4) == [30.0, 60.0, 90.0]                # 110.4/15 > 6, /30 <= 6
    assert nice_ticks(0.0, 0.0) == [0.0]


# ---- search inside the report: attribute filters and "find similar" ---------------------------------
def test_report_search_data_and_controls(tmp_path):
    import json as _json

    text = write_report(make_run(tmp_path)).read_text()
    data = _json.loads(re.search(r'<script type="application/json" id="search-data">(.*?)</script>', text).group(1))
    assert data["groups"]["upper_color"] == {"classes": ["red", "blue"], "cols": [2, 3]}
    assert data["ids"]["1"]["p"] == [0.93, 0.6, 0.7, 0.3] and data["ids"]["3"]["p"] is None
    e = np.frombuffer(base64.b64decode(data["ids"]["2"]["e"]), np.int8).astype(np.float32)
    assert len(e) == 3 and float(e @ np.array([0.6, 0.8, 0]) / np.linalg.norm(e)) > 0.999   # int8 keeps the direction
    assert 'data-name="female"' in text and 'data-name="hat"' in text
    assert re.search(r'data-name="upper_color:red"[^>]*><i style="background:red">', text)   # a colour swatch
    assert text.count('class="similar"') == 3


def test_report_without_attributes_or_embeddings_has_no_search_bar(tmp_path):
    run = make_run(tmp_path)
    doc = json.loads((run / "identities.json").read_text())
    doc["attribute_names"] = []
    for ident in doc["identities"]:
        ident["attributes"], ident["embedding_f16"] = {}, None
    (run / "identities.json").write_text(json.dumps(doc))
    text = write_report(run).read_text()
    assert "<script" not in text and 'class="search"' not in text and 'class="similar"' not in text


def chromium_dom(page: Path, fragment: str, tmp_path: Path) -> tuple[list[int], set[int], str]:
    """Card order, hidden cards and status line after the page's hook clicked ``#fragment``."""
    exe = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", f"{page.as_uri()}#{fragment}"]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=90, check=False).stdout
    cards = re.findall(r'<div class="card( hidden)?" id="id-(\d+)"', dom)
    assert cards, "chromium returned no page"
    status = re.search(r'id="search-status">([^<]*)<', dom).group(1)
    return [int(g) for _, g in cards], {int(g) for h, g in cards if h}, status


@pytest.mark.skipif(not Path(CHROMIUM).exists() and shutil.which("chromium") is None,
                    reason="headless Chromium not installed")
def test_report_filters_and_find_similar_in_headless_chromium(tmp_path):
    page = write_report(make_run(tmp_path))
    # nothing clicked: every card, in id order
    assert chromium_dom(page, "", tmp_path) == ([1, 2, 3], set(), "3 of 3 identities shown")
    # "find similar" on ID 3: 3 (itself), 2 (cos 0.8), 1 (cos 0)
    order, hidden, status = chromium_dom(page, "similar=3", tmp_path)
    assert (order, hidden) == ([3, 2, 1], set()) and "similarity to ID 3" in status
    # checkbox: hat holds for 2 (0.7) and 1 (0.6), ordered by probability; 3 has no attributes
    order, hidden, _ = chromium_dom(page, "check=hat", tmp_path)
    assert order[:2] == [2, 1] and hidden == {3}
    order, hidden, _ = chromium_dom(page, "check=female", tmp_path)
    assert hidden == {2, 3}
    # colour swatch: blue is the most likely upper colour of 2 only; red or blue: 1 and 2
    assert chromium_dom(page, "check=upper_color:blue", tmp_path)[1] == {1, 3}
    assert chromium_dom(page, "check=upper_color:red,upper_color:blue", tmp_path)[1] == {3}
    # both: filter by hat, order by similarity to 1
    order, hidden, _ = chromium_dom(page, "check=hat&similar=1", tmp_path)
    assert order[:2] == [1, 2] and hidden == {3}

"""Sharpening of blurred cameras (pipeline/run/sharpness.py, ``video.sharpen``): the blur index tells a
blurred camera from a sharp one on real frames, auto sharpens only the blurred one, the embedded detector
finds more people on a blurred camera once it is sharpened, and stage keys follow the amount."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline.config import RunConfig
from pipeline.run.config import VideoConfig
from pipeline.run.runner import stage_keys
from pipeline.run.sharpness import MAX_AMOUNT, auto_amount, blur_index, camera_amount, camera_blur, sharpen
from pipeline.run.video import VideoSource

REPO = Path(__file__).resolve().parents[1]
RIGHT = REPO / "samples" / "pets_right.mp4"
GT = REPO / "samples" / "gt" / "pets_right" / "gt" / "gt.txt"
PICKS = range(20, 400, 40)


def frames_of(picks=PICKS) -> dict[int, np.ndarray]:
    """0-based frame index -> BGR frame of the right sample camera."""
    cap = cv2.VideoCapture(str(RIGHT))
    out = {}
    for k in picks:
        cap.set(cv2.CAP_PROP_POS_FRAMES, k)
        ok, f = cap.read()
        assert ok, f"{RIGHT}: frame {k}"
        out[k] = f
    cap.release()
    return out


def blurred(frame: np.ndarray, sigma: float = 2.5) -> np.ndarray:
    return cv2.GaussianBlur(frame, (0, 0), sigma)


def write_folder(folder: Path, frames) -> Path:
    folder.mkdir()
    for k, f in enumerate(frames):
        cv2.imwrite(str(folder / f"{k:04d}.png"), f)
    return folder


def test_blur_index_orders_real_frames_by_blur():
    f = next(iter(frames_of().values()))
    sharp, soft, softer = blur_index(f), blur_index(blurred(f, 1.2)), blur_index(blurred(f, 2.5))
    assert sharp < 0.35 < 0.45 < softer            # the sample camera is sharp, sigma 2.5 is not
    assert sharp < soft < softer
    assert blur_index(sharpen(blurred(f), 2.0)) < softer - 0.1
    assert blur_index(np.full((32, 32, 3), 7, np.uint8)) == 1.0     # flat: nothing to gain


def test_auto_sharpens_the_blurred_camera_only(tmp_path):
    frames = list(frames_of().values())
    sharp_cam = write_folder(tmp_path / "sharp", frames)
    soft_cam = write_folder(tmp_path / "soft", [blurred(f) for f in frames])
    assert camera_blur(sharp_cam) < 0.35
    assert camera_amount(sharp_cam, "auto", 0.4) == 0.0
    assert camera_amount(soft_cam, "auto", 0.4) == MAX_AMOUNT
    assert camera_amount(soft_cam, "off", 0.4) == 0.0
    assert camera_amount(sharp_cam, 1.5, 0.4) == 1.5              # a number: every camera
    assert 0 < auto_amount(0.5, 0.4) < MAX_AMOUNT                  # a ramp, not a step
    assert camera_blur(RIGHT) == pytest.approx(camera_blur(sharp_cam), abs=0.03)   # video == its frames


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    lt, rb = np.maximum(a[:, None, :2], b[None, :, :2]), np.minimum(a[:, None, 2:4], b[None, :, 2:4])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area = lambda z: np.prod(z[:, 2:4] - z[:, :2], axis=1)     # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter)


def test_embedded_detector_finds_more_people_on_a_sharpened_blurred_camera():
    from pipeline.run.config import DetectorConfig
    from pipeline.run.detectors import build_detector

    detector = build_detector(DetectorConfig(conf=0.05))
    gt = np.loadtxt(GT, delimiter=",", ndmin=2)
    found = {"blurred": 0, "sharpened": 0}
    total = 0
    for k, frame in frames_of(range(10, 790, 30)).items():
        rows = gt[gt[:, 0] == k + 1]
        truth = np.c_[rows[:, 2:4], rows[:, 2:4] + rows[:, 4:6]]
        total += len(truth)
        soft = blurred(frame)
        for name, image in (("blurred", soft), ("sharpened", sharpen(soft, MAX_AMOUNT))):
            boxes = np.asarray(detector([image])[0])
            boxes = boxes[boxes[:, 4] >= 0.3] if len(boxes) else boxes
            if len(boxes) and len(truth):
                found[name] += int((_iou(truth, boxes[:, :4]) >= 0.5).any(1).sum())
    assert total > 60
    assert found["sharpened"] >= found["blurred"] + 0.15 * total, found


def test_stage_keys_follow_the_amount_and_spare_sharp_cameras(tmp_path):
    frames = list(frames_of(range(0, 200, 50)).values())
    sharp_cam = VideoSource(write_folder(tmp_path / "sharp", frames), "sharp")
    soft_cam = VideoSource(write_folder(tmp_path / "soft", [blurred(f) for f in frames]), "soft")
    auto = RunConfig()
    assert auto.video.sharpen == "auto"                                            # the default
    off = dataclasses.replace(auto, video=dataclasses.replace(auto.video, sharpen="off"))
    assert stage_keys(sharp_cam, auto, None) == stage_keys(sharp_cam, off, None)   # caches stay valid
    assert stage_keys(soft_cam, auto, None).det != stage_keys(soft_cam, off, None).det
    assert stage_keys(soft_cam, auto, None).track != stage_keys(soft_cam, off, None).track


@pytest.mark.parametrize("bad", ["sometimes", -1.0, True])
def test_bad_sharpen_settings_say_what_is_allowed(bad):
    with pytest.raises(ValueError, match="video.sharpen must be auto, off or an amount"):
        VideoConfig(sharpen=bad)
    assert VideoConfig(sharpen=False).sharpen == "off"          # YAML's bare off
    with pytest.raises(ValueError, match="sharpen_from"):
        VideoConfig(sharpen_from=1.5)


def test_mcmt_run_sharpens_a_blurred_camera_and_says_so(tmp_path):
    """End to end: ``mcmt run`` on a blurred camera (frames of the right sample, Gaussian sigma 2.5) tracks
    more of its people with the default ``auto`` than with ``off``, and run.json names the amount the stage used
    (also when the video was cut into chunks and stitched)."""
    from pipeline.cli import main as mcmt

    folder = write_folder(tmp_path / "soft", [blurred(f) for f in frames_of(range(0, 400, 4)).values()])
    (tmp_path / "soft" / "seqinfo.ini").write_text("[Sequence]\nname=soft\nframeRate=7\n")
    boxes, amount = {}, {}
    for setting, chunks in (("auto", 0.0), ("off", 0.0), ("auto chunked", 0.1)):
        out = tmp_path / f"run_{setting.replace(' ', '_')}"
        assert mcmt(["run", "--videos", str(folder), "--out", str(out), "--no-progress", "-q",
                     "--set", f"video.sharpen={setting.split()[0]}", "--set", "reid.checkpoint=none",
                     "--set", "output.report=false", "--set", f"scale.chunk_minutes={chunks}"]) == 0
        camera = json.loads((out / "run.json").read_text())["cameras"][0]
        amount[setting] = camera["sharpen"]
        boxes[setting] = sum(1 for line in (out / "mot" / f"{camera['name']}.txt").read_text().splitlines() if line)
    assert amount == {"auto": MAX_AMOUNT, "off": 0.0, "auto chunked": MAX_AMOUNT}   # 6 s chunks, stitched
    assert boxes["auto"] > 1.2 * boxes["off"], boxes

"""Per-camera colour constancy of ReID crops (pipeline/run/colour.py): a camera with another colour
response hands the ReID model the same neutral colours, so one person's two views stay close."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline.run.colour import apply_gains, camera_gains, gains_from_frames

REPO = Path(__file__).resolve().parents[1]
RIGHT = REPO / "samples" / "pets_right.mp4"
CAST = np.array([1.0, 0.8, 1.45], np.float32)           # B, G, R: a pinkish camera


def cast(frame: np.ndarray, gains=CAST) -> np.ndarray:
    return np.clip(frame.astype(np.float32) * gains, 0, 255).astype(np.uint8)


def frames_of(path: Path, picks=(100, 300, 500)) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    out = []
    for k in picks:
        cap.set(cv2.CAP_PROP_POS_FRAMES, k)
        ok, f = cap.read()
        assert ok, f"{path}: frame {k}"
        out.append(f)
    cap.release()
    return out


def test_gains_undo_a_colour_cast_up_to_brightness():
    frames = frames_of(RIGHT)
    plain, tinted = gains_from_frames(frames), gains_from_frames([cast(f) for f in frames])
    ratio = (tinted * CAST) / plain                       # corrected cast / corrected original: flat
    assert np.ptp(ratio / ratio.mean()) < 0.1               # (bright pixels clip at 255 under the cast)
    assert np.ptp(plain) < 0.15                           # a natural camera is left nearly as it is


def test_gains_come_from_the_whole_video_and_are_the_same_every_time(tmp_path):
    a, b = camera_gains(RIGHT), camera_gains(RIGHT)
    np.testing.assert_array_equal(a, b)
    folder = tmp_path / "frames"
    folder.mkdir()
    for k, f in enumerate(frames_of(RIGHT, range(0, 795, 50))):
        cv2.imwrite(str(folder / f"{k:04d}.png"), f)
    assert np.abs(camera_gains(folder) - a).max() < 0.05  # a frame folder reads the same


def test_apply_gains_keeps_the_crop_without_gains():
    crop = np.full((8, 4, 3), 100, np.uint8)
    assert apply_gains(crop, None) is crop
    out = apply_gains(crop, np.array([2.0, 1.0, 0.5], np.float32))
    assert out.dtype == np.uint8 and tuple(out[0, 0]) == (200, 100, 50)


def test_corrected_crops_of_a_tinted_camera_embed_closer_to_the_original():
    """A colour-sensitive ReID model (torchreid's OSNet x0.25, MSMT17) on real people of the sample: a
    cast moves their features; the correction brings them back most of the way."""
    from reid.encoder import ReIDEncoder
    from tests.conftest import shared_path

    model = shared_path("models", "osnet_x0_25_msmt17.onnx")
    gt = np.loadtxt(REPO / "samples" / "gt" / "pets_right" / "gt" / "gt.txt", delimiter=",")
    frames = frames_of(RIGHT, (200, 400, 600))
    tinted_frames = [cast(f) for f in frames]
    gains = gains_from_frames(frames_of(RIGHT, range(0, 795, 50)))
    tinted_gains = gains_from_frames([cast(f) for f in frames_of(RIGHT, range(0, 795, 50))])
    plain, tinted, fixed = [], [], []
    for f, t, k in zip(frames, tinted_frames, (200, 400, 600)):
        for x, y, w, h in gt[gt[:, 0] == k + 1][:, 2:6]:
            if h < 40:
                continue
            x1, y1, x2, y2 = int(max(x, 0)), int(max(y, 0)), int(x + w), int(y + h)
            plain.append(apply_gains(f[y1:y2, x1:x2], gains))
            tinted.append(t[y1:y2, x1:x2])
            fixed.append(apply_gains(t[y1:y2, x1:x2], tinted_gains))
    assert len(plain) >= 5
    enc = ReIDEncoder.from_checkpoint(str(model))
    p, t, c = (enc.embed(x)[0] for x in (plain, tinted, fixed))
    moved, back = 1 - (p * t).sum(1), 1 - (p * c).sum(1)
    assert back.mean() < 0.5 * moved.mean()

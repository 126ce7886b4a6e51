"""The score a track's crop needs to be embedded on a blurred camera, real frames (``reid.few_features``).

The shipped sample's right camera blurred as the bench's ``blur-strong`` variant blurs it (Gaussian sigma
2.5) scores its people lower than a sharp one, even after ``video.sharpen``. With one bar for every crop
(``reid.min_score`` 0.5) several of its tracks kept one or two features, or only their fallback crop, and the
association could not place them; a track with fewer than ``reid.few_features`` features is embedded from
``reid.few_score`` (0.45, between the tracker's first-stage bar and ``min_score``) up, so that every long track
keeps an appearance of its own, for no more crops embedded (the tracker embeds those detections anyway).
"""
from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from core.config import load_config
from pipeline.config import RunConfig
from pipeline.run.config import ReIDRunConfig

REPO = Path(__file__).resolve().parents[1]
FRAMES, SIGMA, LONG = 150, 2.5, 20          # frames of the clip, blur, boxes of a track worth an appearance


def test_a_feature_poor_track_is_embedded_from_a_lower_bar_the_tracker_trusts():
    cfg = RunConfig()
    assert cfg.reid.few_features >= 2 and cfg.tracker.track_high_thresh <= cfg.reid.few_score < cfg.reid.min_score
    with pytest.raises(ValueError, match="gallery_size"):           # counted in the gallery, so at most its size
        ReIDRunConfig(few_features=11, gallery_size=10)


@pytest.fixture(scope="module")
def blurred_right(tmp_path_factory):
    src = REPO / "samples" / "pets_right.mp4"
    if not src.is_file():
        pytest.skip("samples/pets_right.mp4 is not there")
    out_path = tmp_path_factory.mktemp("blur") / "right.mp4"
    cap = cv2.VideoCapture(str(src))
    fps = cap.get(cv2.CAP_PROP_FPS)
    size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    out = cv2.VideoWriter(str(out_path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for _ in range(FRAMES):
        ok, frame = cap.read()
        assert ok
        out.write(cv2.GaussianBlur(frame, (0, 0), SIGMA))
    out.release()
    cap.release()
    return out_path


def test_every_long_track_of_a_blurred_camera_keeps_an_appearance(blurred_right, tmp_path):
    from pipeline.run.detectors import build_detector
    from pipeline.run.runner import run_cameras
    from pipeline.run.video import open_sources
    from pipeline.runfolder.cache import load_tracklets
    from reid.encoder import ReIDEncoder

    encoder = ReIDEncoder.from_checkpoint("default", device="cpu")
    found = {}
    for bar in (0, None):                   # one bar for all, then the default; one run folder: detections reused
        cfg = load_config(RunConfig, None, [f"reid.few_features={bar}"] if bar is not None else [])
        stats = run_cameras(open_sources([str(blurred_right)]), cfg, tmp_path, encoder=encoder, progress=False,
                            detector_factory=lambda: build_detector(cfg.detector))
        tracklets = load_tracklets(tmp_path / "cache" / "right")[0]
        long = [t for t in tracklets if t.n_boxes >= LONG]
        found[bar] = ([t.features.shape[0] for t in long], sum(t.fallback for t in tracklets), stats.embedded_crops)
    (former, former_fallbacks, former_crops), (now, now_fallbacks, now_crops) = found[0], found[None]
    assert len(now) == len(former) >= 3                                 # the same tracks (the tracker is unchanged)
    assert min(former) <= 2 and former_fallbacks >= 1                   # what one bar left them
    assert min(now) >= RunConfig().reid.few_features and now_fallbacks < former_fallbacks
    assert now_crops <= former_crops * 1.1                              # for about the same ReID work

"""Footages of the detector and tracking benches, with cached detections and embeddings.

Each footage is a list of cameras (video, MOTChallenge gt, optional don't-care boxes). Detections of a
detector over every frame (score >= 0.05) are cached as .npz under ``runs/bench_cache/`` (git-ignored),
keyed by detector name and footage; the ReID features of the detections with score >= EMBED_MIN are
cached next to them. The trackers then run in-process on the cache, so tracker variants cost seconds.

Scoring: ``score`` evaluates one camera with the code behind ``mcmt eval``; boxes the annotators
marked occluded (EPFL terrace ``ignore/<camera>.txt``) are don't-care: they enter as MOT16 distractor
rows, so a prediction matched to one is neither a true nor a false positive (TrackEval's rule).
"""
from __future__ import annotations

import logging
import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MCMT_SHARED", str(REPO.parent / "shared")))
CACHE = REPO / "runs" / "bench_cache"
DET_MIN = 0.05      # detections cached down to this score
EMBED_MIN = 0.5     # detections embedded: those the appearance tracker compares (track_high_thresh)
# ReID of the benches: mcmt run's default model (reid/weights/default.pt, its int8 OpenVINO trunk: fast
# enough to embed every detection); the cache is keyed by the checkpoint's bytes
BENCH_REID = REPO / "reid" / "weights" / "default.pt"
DISTRACTOR = 8      # MOT16 class id of a don't-care box

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Camera:
    name: str
    video: Path
    gt: Path
    ignore: Optional[Path] = None


def footages(shared: Path = SHARED) -> dict[str, list[Camera]]:
    """name -> cameras: PETS09-S2L1 (one camera), EPFL terrace (two), the repository's two-camera sample."""
    pets, epfl = shared / "data/pets09-s2l1", shared / "data/epfl-terrace"
    return {
        "pets09": [Camera("pets09", pets / "vtest.avi", pets / "gt/gt.txt")],
        "epfl": [Camera(c, epfl / f"{c}.mp4", epfl / f"gt/{c}/gt/gt.txt", epfl / f"ignore/{c}.txt")
                 for c in ("terrace_c0", "terrace_c1")],
        "sample": [Camera(c, REPO / f"samples/{c}.mp4", REPO / f"samples/gt/{c}/gt/gt.txt")
                   for c in ("pets_left", "pets_right")],
    }


def available(shared: Path = SHARED) -> dict[str, list[Camera]]:
    """The footages whose files are all present."""
    return {k: cams for k, cams in footages(shared).items()
            if all(c.video.is_file() and c.gt.is_file() for c in cams)}


def read_frames(video: Path):
    """Yield the BGR frames of a video as ``mcmt run``'s defaults see them (a blurred camera sharpened by
    ``video.sharpen``; the bench's cameras are sharp, so their frames are as decoded)."""
    import cv2

    from pipeline.run.config import VideoConfig
    from pipeline.run.sharpness import camera_amount, sharpen

    defaults = VideoConfig()
    amount = camera_amount(video, defaults.sharpen, defaults.sharpen_from)
    cap = cv2.VideoCapture(str(video))
    try:
        while True:
            ok, img = cap.read()
            if not ok:
                return
            yield sharpen(img, amount)
    finally:
        cap.release()


def video_fps(cam: Camera) -> float:
    """The camera's frame rate (30 when the video does not say)."""
    import cv2

    cap = cv2.VideoCapture(str(cam.video))
    fps = cap.get(cv2.CAP_PROP_FPS)
    cap.release()
    return fps if fps and fps > 0 else 30.0


def resolve_rate(params: dict, cam: Camera) -> dict:
    """Tracker params with ``frame_rate`` 0 replaced by the camera's frame rate (as ``mcmt run`` does)."""
    if params.get("frame_rate", 30.0) > 0:
        return params
    return {**params, "frame_rate": video_fps(cam)}


def _split(rows: np.ndarray, n_frames: int) -> list[np.ndarray]:
    """(K, 7) frame, x1, y1, x2, y2, score, cls rows -> per frame (N, 6) float32."""
    frame = rows[:, 0].astype(np.int64)
    order = np.argsort(frame, kind="stable")
    rows, frame = rows[order], frame[order]
    cuts = np.searchsorted(frame, np.arange(n_frames + 1))
    return [rows[cuts[i]:cuts[i + 1], 1:].astype(np.float32) for i in range(n_frames)]


def _join(per_frame: list[np.ndarray]) -> np.ndarray:
    parts = [np.column_stack([np.full(len(d), i), d]) for i, d in enumerate(per_frame) if len(d)]
    return np.concatenate(parts) if parts else np.zeros((0, 7))


def detections(detector_name: str, make_detector, cam: Camera) -> list[np.ndarray]:
    """Per frame (N, 6) x1, y1, x2, y2, score, cls of the detector on every frame of ``cam`` (cached);
    ``make_detector()`` builds the detector only when the cache misses."""
    path = CACHE / detector_name.replace(" ", "_").replace("/", "_") / f"{cam.name}.npz"
    if path.is_file():
        data = np.load(path)
        return _split(data["rows"], int(data["frames"]))
    det = make_detector()
    out = [det([img])[0] for img in read_frames(cam.video)]
    out = [d[d[:, 4] >= DET_MIN] for d in out]
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, rows=_join(out), frames=len(out))
    log.info("cached %s detections of %s (%d frames)", detector_name, cam.name, len(out))
    return out


@functools.lru_cache(maxsize=None)
def reid_tag() -> str:
    """Names the bench's ReID model in cache file names: its file name and the start of its md5 (read once)."""
    import hashlib

    return f"{BENCH_REID.stem}-{hashlib.md5(BENCH_REID.read_bytes()).hexdigest()[:8]}"


def embeddings(detector_name: str, dets: list[np.ndarray], cam: Camera, encoder_factory) -> list[np.ndarray]:
    """Per frame (N, D) float32 ReID features of the detections with score >= EMBED_MIN (zero rows for
    the others: "not embedded" to the trackers); cached next to the detections."""
    path = CACHE / detector_name.replace(" ", "_").replace("/", "_") / f"{cam.name}.{EMBED_MIN}.{reid_tag()}.emb.npz"
    if path.is_file():
        data = np.load(path)
        feats, counts = data["feats"], data["counts"]
        if len(counts) == len(dets) and int(counts.sum()) == sum(len(d) for d in dets):
            return np.split(feats, np.cumsum(counts)[:-1])
    from pipeline.run.crops import crop

    encoder = encoder_factory()
    out = []
    for img, d in zip(read_frames(cam.video), dets):
        f = np.zeros((len(d), encoder.dim), np.float32)
        pick = np.flatnonzero(d[:, 4] >= EMBED_MIN)
        if len(pick):
            f[pick] = encoder.embed([crop(img, d[i, :4]) for i in pick])[0]
        out.append(f)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, feats=np.concatenate(out), counts=np.array([len(d) for d in dets]))
    return out


def read_mot_rows(path: Path) -> np.ndarray:
    """A MOTChallenge file as (K, 10) float64 rows (the layout ``score`` takes for predictions)."""
    from pipeline.formats.mot import read_mot

    return _ten(read_mot(path))


def read_gt(cam: Camera) -> np.ndarray:
    """Ground truth rows (K, 10) with the don't-care boxes added as MOT16 distractors (class 8)."""
    gt = read_mot_rows(cam.gt)
    if cam.ignore is None or not cam.ignore.is_file():
        return gt
    ign = read_mot_rows(cam.ignore)
    gt[:, 6:9] = (1, 1, 1)                    # conf 1, class pedestrian, visibility 1
    ign[:, 6:9] = (1, DISTRACTOR, 1)
    return np.concatenate([gt, ign])


def _ten(rows) -> np.ndarray:
    rows = np.asarray(rows, np.float64)
    out = np.full((len(rows), 10), -1.0)
    out[:, :rows.shape[1]] = rows[:, :10]
    if rows.shape[1] < 7:
        out[:, 6] = 1
    return out


def to_mot(outputs: list[np.ndarray]) -> np.ndarray:
    """Per-frame tracker outputs (M, >= 5) x1, y1, x2, y2, id -> MOTChallenge rows (K, 10), frame 1-based."""
    rows = [np.column_stack([np.full(len(o), f + 1), o[:, 4], o[:, 0], o[:, 1], o[:, 2] - o[:, 0],
                             o[:, 3] - o[:, 1], np.ones((len(o), 1)), -np.ones((len(o), 3))])
            for f, o in enumerate(outputs) if len(o)]
    return np.concatenate(rows) if rows else np.zeros((0, 10))


def score(gts: list[np.ndarray], preds: list[np.ndarray]) -> dict:
    """MOTA / IDF1 / HOTA ... of the cameras together (``mcmt eval``'s "combined")."""
    from pipeline.evaluation.mot import evaluate_mot
    from pipeline.evaluation.scores import rows_end_to_end

    if len(gts) == 1:
        return evaluate_mot(gts[0], preds[0])
    return evaluate_mot(*rows_end_to_end(gts, preds))


def import_run(run: Path, detector_name: str, cams: list[Camera]) -> None:
    """Cache the detections an ``mcmt run`` made (its stage cache ``cache/<camera>/dets.csv``: 0-based
    frame, x1, y1, x2, y2, score, cls, down to ``detector.conf``) as ``detector_name``'s, for cameras
    the run covered completely."""
    for cam in cams:
        dets = Path(run) / "cache" / cam.name / "dets.csv"
        if not dets.is_file():                                   # the run names a camera by its video
            dets = Path(run) / "cache" / cam.video.stem / "dets.csv"
        meta = dets.with_name("detect.json")
        if not dets.is_file() or '"complete": true' not in meta.read_text():
            continue
        rows = np.loadtxt(dets, delimiter=",", ndmin=2)
        n = sum(1 for _ in read_frames(cam.video))
        path = CACHE / detector_name.replace(" ", "_").replace("/", "_") / f"{cam.name}.npz"
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, rows=rows, frames=n)
        log.info("imported %s detections of %s from %s", detector_name, cam.name, run)


if __name__ == "__main__":
    import argparse

    p = argparse.ArgumentParser(description="cache the detections of an mcmt run under a detector name")
    p.add_argument("run")
    p.add_argument("name")
    a = p.parse_args()
    logging.basicConfig(level=logging.INFO)
    import_run(Path(a.run), a.name, [c for cams in available().values() for c in cams])

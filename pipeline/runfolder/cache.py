"""Stage cache of a run folder: ``<out>/cache/<camera>/`` (file names: pipeline/runfolder/layout.py).

Two stages per camera, each keyed by a hash of its inputs and settings:

* ``detect``: ``dets.csv`` (frame, x1, y1, x2, y2, score, cls), appended while the run goes and made
  durable every few frames; ``detect.json`` says the key and how many frames are done. An interrupted
  run leaves both; the next run with the same key reuses the finished frames and detects the rest.
* ``track``: ``boxes.csv`` (frame, local id, x1, y1, x2, y2, score), ``tracklets.npz`` +
  ``tracklets.json`` (features, attributes, spans, thumbnails) and ``thumbs/``; ``track.json`` holds
  the key and ``complete: true`` only once everything is written. A complete stage with the same key
  is reused as is (no decoding, no detection, no ReID), which is also what ``mcmt associate`` reads.

Everything written here is atomic (tmp file + ``os.replace``) except the two append-only CSV streams,
whose valid length is recorded in the stage's json. Integrity (pipeline/runfolder/manifest.py): ``detect.json``
records the rows, bytes and SHA-256 of the valid prefix of ``dets.csv``, ``track.json`` those of
``boxes.csv`` and the tracklet files; every read checks them, and a file that disagrees makes its stage
unfinished (recomputed, with a warning naming the file). Detections are stored at full float32 precision
(``%.9g``), so a resumed run sees the very detections a clean one sees.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import zipfile
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from core.atomic import atomic_write, atomic_write_json
from core.errors import UserError
from core.frames import group_by_frame
from pipeline.runfolder.layout import (BOXES_FILE, DETECT_META, DETS_FILE, STAGE_SETTINGS, THUMBS_DIR, TRACK_FILES,
                                       TRACK_META, TRACKLETS_JSON, TRACKLETS_NPZ, camera_dir)
from pipeline.runfolder.runfile import read_json
from pipeline.runfolder.manifest import (check_file, check_manifest, format_rows, parse_rows, stage_manifest,
                                         valid_prefix)
from pipeline.tracklet import Tracklet

log = logging.getLogger(__name__)
_WARNED: set[str] = set()

CACHE_VERSION = 2


def stage_key(parts: Any) -> str:
    """Stable short hash of a JSON-serialisable description of a stage's inputs and settings."""
    text = json.dumps({"v": CACHE_VERSION, "parts": parts}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def input_fingerprint(path: str | Path) -> dict:
    """Identity of a video file or frame folder: absolute path, size and modification time."""
    p = Path(path).resolve()
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.is_file())
        return {"path": str(p), "files": len(files),
                "size": sum(f.stat().st_size for f in files),
                "mtime": max((f.stat().st_mtime_ns for f in files), default=0)}
    st = p.stat()
    return {"path": str(p), "size": st.st_size, "mtime": st.st_mtime_ns}


def model_fingerprint(spec: str) -> Optional[dict]:
    """Identity of a model a stage ran with, so that a model file rewritten in place (a new
    ``default.pt``, a re-exported detector) invalidates the cache: size and modification time of the
    file and of its same-stem companions (OpenVINO ``.bin`` beside ``.xml``), or of every file under a
    model folder. ``"default"`` is the shipped ReID checkpoint; a name that is no local path (an
    ultralytics name it downloads, ``"none"``) gives None."""
    if spec == "default":
        from reid.encoder import DEFAULT_CHECKPOINT
        p = DEFAULT_CHECKPOINT
    else:
        p = Path(spec).expanduser()
    if not p.exists():
        return None
    p = p.resolve()
    if p.is_dir():
        files = sorted(f for f in p.rglob("*") if f.is_file())
    else:
        files = sorted(f for f in p.parent.iterdir()
                       if f.is_file() and (f == p or f.name.startswith(p.stem + ".")))
    return {"path": str(p), "files": [input_fingerprint(f) for f in files]}


class CameraCache:
    """Files of one camera's stages under ``<out>/cache/<camera>/``."""

    def __init__(self, run_dir: Path, camera: str, chunk: Optional[int] = None):
        self.dir = camera_dir(run_dir, camera, chunk)   # chunk: a time chunk of a long video (pipeline/run/chunks.py)
        self.camera = camera
        self.dets = self.dir / DETS_FILE
        self.boxes = self.dir / BOXES_FILE
        self.thumbs = self.dir / THUMBS_DIR
        self.detect_meta = self.dir / DETECT_META
        self.track_meta = self.dir / TRACK_META

    # ---- detect stage ----------------------------------------------------------------------
    def cached_detections(self, key: str) -> "CachedDetections":
        """Detections of the frames a previous run finished with this key."""
        meta = read_json(self.detect_meta)
        if not meta or meta.get("key") != key or int(meta.get("frames_done_upto", -1)) < 0:
            return CachedDetections(-1, np.zeros((0, 7)))
        rows, problem = valid_prefix(self.dets, meta, 7)
        if problem:
            _warn(f"camera '{self.camera}': {problem}; detecting its frames again")
            return CachedDetections(-1, np.zeros((0, 7)))
        done = int(meta["frames_done_upto"])
        return CachedDetections(done, rows[rows[:, 0] <= done])

    def detect_complete(self, key: str) -> bool:
        meta = read_json(self.detect_meta)
        return bool(meta and meta.get("key") == key and meta.get("complete"))

    # ---- track stage -----------------------------------------------------------------------
    def track_complete(self, key: Optional[str] = None) -> bool:
        """Whether the track stage (with this key) is finished and its files hold what it wrote; a damaged
        file makes it unfinished, with a warning naming the file."""
        meta = read_json(self.track_meta)
        if not (meta and meta.get("complete") and (key is None or meta.get("key") == key)):
            return False
        problem = self.track_problem(meta)
        if problem:
            _warn(f"camera '{self.camera}': {problem}; its tracks are treated as unfinished "
                  "('mcmt run' with the same --out recomputes them)")
        return problem is None

    def track_problem(self, meta: dict) -> Optional[str]:
        """What is wrong with the files of a finished track stage, or None. Stages written before the
        manifest are checked by their recorded box and tracklet counts."""
        if "files" in meta:
            return check_manifest(self.dir, meta["files"])
        for name in TRACK_FILES:
            if not (self.dir / name).is_file():
                return f"{self.dir / name} is missing"
        legacy = {BOXES_FILE: meta.get("boxes")}
        for name, rows in legacy.items():
            problem = check_file(self.dir / name, {"rows": int(rows)}) if rows is not None else None
            if problem:
                return problem
        return None

    def track_info(self) -> dict:
        return read_json(self.track_meta) or {}

    def finished_key(self) -> Optional[str]:
        """The key of this camera's finished track stage (its files unchecked), None when none is finished."""
        meta = read_json(self.track_meta)
        return str(meta.get("key")) if meta and meta.get("complete") else None

    def record_settings(self, key: str, settings: dict) -> None:
        """Keep beside the finished track stage with ``key`` the settings that made it (``section.field`` ->
        value): what a rerun that would replace it names as changed."""
        atomic_write_json(self.dir / STAGE_SETTINGS, {"key": key, "settings": settings})

    def settings_of(self, key: Optional[str]) -> Optional[dict]:
        """The settings recorded for the track stage with ``key``; None when none were (or for another key)."""
        doc = read_json(self.dir / STAGE_SETTINGS)
        return doc["settings"] if key and doc and doc.get("key") == key and isinstance(doc.get("settings"), dict) \
            else None

    def start_track_stage(self, key: str) -> None:
        """Mark the stage as in progress (a crash leaves ``complete: false`` and is redone)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.track_meta, {"key": key, "complete": False})
        for p in (self.dir / TRACKLETS_NPZ, self.dir / TRACKLETS_JSON):
            if p.exists():
                p.unlink()
        if self.thumbs.is_dir():
            for f in self.thumbs.iterdir():
                f.unlink()

    def finish_track_stage(self, key: str, tracklets: Sequence[Tracklet], thumbs: dict[int, list[str]],
                           info: dict) -> None:
        save_tracklets(self.dir, tracklets, thumbs)
        files = stage_manifest(self.dir, TRACK_FILES)
        if "boxes" in info and files[BOXES_FILE]["rows"] != int(info["boxes"]):
            raise UserError(f"{self.boxes}: {files[BOXES_FILE]['rows']} rows written, {info['boxes']} boxes made: "
                            "is another 'mcmt run' writing the same --out? Run one at a time")
        atomic_write_json(self.track_meta, {**info, "key": key, "complete": True, "files": files})

    def load_tracklets(self) -> tuple[list[Tracklet], dict[int, list[str]]]:
        try:
            return load_tracklets(self.dir, self.camera)
        except FileNotFoundError:
            raise                           # not there: the caller says which run to finish
        except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as exc:
            raise UserError(f"{self.dir / TRACKLETS_NPZ} or {TRACKLETS_JSON} cannot be read ({exc}); "
                            f"{_FIX.format(dir=self.dir)}") from None


class CachedDetections:
    """The detect stage's finished prefix: every analysed frame up to ``upto`` was detected, and a
    frame without rows had no detection (so empty frames cost nothing to record)."""

    def __init__(self, upto: int, rows: np.ndarray):
        self.upto, self.rows = int(upto), rows                    # rows (N, 7) frame, x1, y1, x2, y2, score, cls
        self._by_frame = {f: r.astype(np.float32) for f, r in group_by_frame(rows[:, 0], rows[:, 1:7]).items()}

    def __contains__(self, frame: int) -> bool:
        return frame <= self.upto

    def __getitem__(self, frame: int) -> np.ndarray:
        """(N, 6) detections of an analysed frame (``frame in self``)."""
        return self._by_frame.get(frame, _NO_DETECTIONS)

    def __bool__(self) -> bool:
        return self.upto >= 0


_NO_DETECTIONS = np.zeros((0, 6), np.float32)


class DetectionWriter:
    """Append detections of one camera to ``dets.csv``; records progress in ``detect.json``."""

    def __init__(self, cache: CameraCache, key: str, reused: CachedDetections, every: int = 50):
        cache.dir.mkdir(parents=True, exist_ok=True)
        self.cache, self.key, self.every = cache, key, every
        self.upto = reused.upto
        # invalidate first, so a crash while the valid prefix is rewritten cannot leave a stale count
        atomic_write_json(cache.detect_meta, {"key": key, "frames_done_upto": -1, "complete": False})
        self._file = open(cache.dets, "wb")
        self._hash, self._rows, self._bytes = hashlib.sha256(), 0, 0
        self._write(reused.rows)
        self._since = 0
        self._flush_meta(False)

    def _write(self, rows: np.ndarray) -> None:
        """Append rows (N, 7), keeping the count, length and checksum that detect.json records."""
        data = format_rows(rows)
        self._file.write(data)
        self._hash.update(data)
        self._rows += len(rows)
        self._bytes += len(data)

    def add(self, frame: int, dets: np.ndarray) -> None:
        if frame <= self.upto:
            return
        if len(dets):
            self._write(np.column_stack([np.full(len(dets), frame), dets[:, :6]]))
        self.upto = frame
        self._since += 1
        if self._since >= self.every:
            self._flush_meta(False)

    def _flush_meta(self, complete: bool) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        atomic_write_json(self.cache.detect_meta, {"key": self.key, "frames_done_upto": self.upto,
                                                   "complete": complete, "rows": self._rows, "bytes": self._bytes,
                                                   "sha256": self._hash.hexdigest()})
        self._since = 0

    def close(self, complete: bool) -> None:
        if self._file.closed:
            return
        self._flush_meta(complete)
        self._file.close()


_FIX = "delete {dir} and rerun 'mcmt run' with the same --out to recompute it"


def _warn(message: str) -> None:
    """A warning about a damaged cache file, once per process."""
    if message not in _WARNED:
        _WARNED.add(message)
        log.warning("%s", message)


def read_boxes(cache: CameraCache) -> np.ndarray:
    """(N, 7) frame (0-based), local id, x1, y1, x2, y2, score of a finished track stage; UserError naming
    the file and the fix when it is damaged."""
    try:
        return parse_rows(cache.boxes.read_bytes(), 7, cache.boxes)
    except (OSError, ValueError) as exc:
        raise UserError(f"{cache.boxes} cannot be read ({exc}); {_FIX.format(dir=cache.dir)}") from None


# ---- tracklets <-> npz/json ---------------------------------------------------------------
def save_tracklets(folder: Path, tracklets: Sequence[Tracklet], thumbs: dict[int, list[str]]) -> None:
    """tracklets.npz holds each per-tracklet array kind concatenated once (one read per kind on load,
    which is what makes 'mcmt index add' of a long run fast) with per-tracklet row counts;
    tracklets.json holds the rest."""
    meta = [{"camera": t.camera, "track_id": t.track_id, "start_frame": t.start_frame,
             "end_frame": t.end_frame, "start_time": t.start_time, "end_time": t.end_time,
             "n_boxes": t.n_boxes, "attribute_names": list(t.attribute_names), "flagged": t.flagged,
             "fallback": t.fallback,
             "thumbnails": thumbs.get(t.track_id, []),
             "first_box": _box_list(t.first_box), "last_box": _box_list(t.last_box)} for t in tracklets]
    dims = {t.features.shape[1] for t in tracklets if t.has_features}
    if len(dims) > 1:
        raise ValueError(f"tracklets of one camera have features of several sizes: {sorted(dims)}")
    dim = dims.pop() if dims else 0
    feats = [t.features.reshape(-1, dim) if t.has_features else np.zeros((0, dim), np.float32) for t in tracklets]
    attrs = [np.zeros(0, np.float32) if t.attributes is None else np.asarray(t.attributes).reshape(-1)
             for t in tracklets]
    arrays = {"features": _concat(feats, (0, dim)), "feature_rows": _rows(feats),
              "weights": _concat([t.weights.reshape(-1) for t in tracklets], (0,)),
              "weight_rows": _rows([t.weights.reshape(-1) for t in tracklets]),
              "attributes": _concat(attrs, (0,)),
              "attribute_rows": np.array([-1 if t.attributes is None else a.size for t, a in zip(tracklets, attrs)],
                                         np.int64)}
    folder = Path(folder)
    atomic_write(folder / TRACKLETS_NPZ, lambda tmp: np.savez(tmp, **arrays), suffix=".npz")
    atomic_write_json(folder / TRACKLETS_JSON, meta)


def _concat(parts: list[np.ndarray], empty_shape: tuple[int, ...]) -> np.ndarray:
    return np.concatenate(parts).astype(np.float32) if parts else np.zeros(empty_shape, np.float32)


def _rows(parts: list[np.ndarray]) -> np.ndarray:
    return np.array([len(p) for p in parts], np.int64)


def _split(flat: np.ndarray, rows: np.ndarray) -> list[np.ndarray]:
    return np.split(flat, np.cumsum(np.maximum(rows, 0))[:-1]) if len(rows) else []


def _read_arrays(z, n: int) -> tuple[list, list, list]:
    """Per-tracklet features, weights and attributes (None where absent) of tracklets.npz, in the
    concatenated layout or the older one-entry-per-tracklet layout (f0, w0, a0, ...)."""
    if "feature_rows" not in z.files:
        return ([z[f"f{i}"] for i in range(n)], [z[f"w{i}"] for i in range(n)],
                [z[f"a{i}"] if f"a{i}" in z.files else None for i in range(n)])
    feats, weights = _split(z["features"], z["feature_rows"]), _split(z["weights"], z["weight_rows"])
    attr_rows = z["attribute_rows"]
    attrs = [None if r < 0 else a for a, r in zip(_split(z["attributes"], attr_rows), attr_rows)]
    feats = [f if len(f) else np.zeros((0, 0), np.float32) for f in feats]
    if not (len(feats) == len(weights) == len(attrs) == n):
        raise ValueError(f"{TRACKLETS_NPZ} and {TRACKLETS_JSON} disagree on the number of tracklets")
    return feats, weights, attrs


def load_tracklets(folder: Path, camera: str = "") -> tuple[list[Tracklet], dict[int, list[str]]]:
    folder = Path(folder)
    meta = read_json(folder / TRACKLETS_JSON)
    if meta is None or not (folder / TRACKLETS_NPZ).is_file():
        raise FileNotFoundError(f"no finished tracklets in {folder}")
    out, thumbs = [], {}
    with np.load(folder / TRACKLETS_NPZ) as z:
        feats, weights, attrs = _read_arrays(z, len(meta))
    for m, f, w, a in zip(meta, feats, weights, attrs):
        out.append(Tracklet(camera=m["camera"], track_id=int(m["track_id"]),
                            start_frame=int(m["start_frame"]), end_frame=int(m["end_frame"]),
                            start_time=float(m["start_time"]), end_time=float(m["end_time"]),
                            n_boxes=int(m["n_boxes"]), features=f, weights=w,
                            attributes=a, attribute_names=tuple(m["attribute_names"]),
                            flagged=bool(m["flagged"]), fallback=bool(m.get("fallback", False)),
                            first_box=_box_array(m.get("first_box")), last_box=_box_array(m.get("last_box"))))
        thumbs[int(m["track_id"])] = list(m.get("thumbnails", []))
    return out, thumbs


def _box_list(box) -> list[float] | None:
    return None if box is None else [round(float(v), 2) for v in box]


def _box_array(box) -> np.ndarray | None:
    """A stored box as (4,) float32; None when the cache predates boxes in tracklets."""
    return None if box is None else np.asarray(box, np.float32).reshape(4)

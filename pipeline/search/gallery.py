"""A run's tracklets as columns, the unit that search ranks over (one run folder, or one run of an index).

Rows are tracklets that belong to a global identity (as in ``identities.json`` and ``mot/*.txt``).
The appearance of a tracklet is its quality-weighted mean feature (L2-normalised), kept either as
float32 (a run folder) or as int8 with a per-row scale (an index: 4x smaller, read memory-mapped).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from core.errors import UserError
from pipeline.formats.identities import load_identities

BLOCK = 2048             # rows per block when scoring (a float32 block stays in the CPU cache)
_local = threading.local()


def _buffer(dim: int) -> np.ndarray:
    """A (BLOCK, dim) float32 scratch array, one per thread and dimension (no page faults per query)."""
    buf = getattr(_local, "buf", None)
    if buf is None or buf.shape[1] != dim:
        buf = _local.buf = np.empty((BLOCK, dim), np.float32)
    return buf


@dataclass
class Vectors:
    """(T, D) embeddings: float32, or int8 codes with a (T,) float32 scale (row = codes * scale)."""

    data: np.ndarray
    scale: Optional[np.ndarray] = None

    @property
    def dim(self) -> int:
        return int(self.data.shape[1])

    def __len__(self) -> int:
        return int(self.data.shape[0])

    def dot(self, q: np.ndarray, rows: Optional[np.ndarray] = None) -> np.ndarray:
        """(T,) inner products with one query vector (D,), or (len(rows),) for some rows only, block by
        block through a reused float32 buffer. einsum, not BLAS: a multi-threaded BLAS matrix-vector
        product slows down badly on a machine whose cores are busy with other work, and this product
        is memory-bound anyway."""
        q = np.asarray(q, np.float32).reshape(-1)
        if q.shape[0] != self.dim:
            raise UserError(f"query embedding has {q.shape[0]} dimensions, the gallery {self.dim}: "
                            "they come from different ReID models")
        n = len(self) if rows is None else len(rows)
        out = np.empty(n, np.float32)
        buf = _buffer(self.dim) if self.data.dtype != np.float32 else None
        for s in range(0, n, BLOCK):
            block = self.data[s:s + BLOCK] if rows is None else self.data[rows[s:s + BLOCK]]
            if buf is not None:
                np.copyto(buf[:len(block)], block, casting="unsafe")
                block = buf[:len(block)]
            out[s:s + len(block)] = np.einsum("ij,j->i", block, q)
        if self.scale is not None:
            out *= self.scale if rows is None else self.scale[rows]
        return out

    def rows(self, idx) -> np.ndarray:
        """Float32 rows (dequantised)."""
        r = np.asarray(self.data[idx], np.float32)
        return r * self.scale[idx][..., None] if self.scale is not None else r


def quantize(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(T, D) float -> int8 codes and (T,) scales with row = codes * scale (symmetric, per row)."""
    x = np.asarray(x, np.float32)
    amax = np.abs(x).max(axis=1) if x.size else np.zeros(len(x), np.float32)
    scale = np.where(amax > 0, amax / 127.0, 0.0).astype(np.float32)
    codes = np.round(x / np.where(scale > 0, scale, 1.0)[:, None]).astype(np.int8)
    return codes, scale


@dataclass
class Gallery:
    """Columns of one run's tracklets (see the module docstring); ``ident`` (T,) indexes ``gids``."""

    run: str                                   # label: run folder name, or the index's run name
    run_dir: Optional[Path]
    cameras: list[str]                         # names; ``camera`` codes index this list
    camera: np.ndarray                         # (T,) int16
    track_id: np.ndarray                       # (T,) int64 local tracker id
    ident: np.ndarray                          # (T,) int32 index into gids
    gids: np.ndarray                           # (I,) int64 global ids
    start: np.ndarray                          # (T,) float64 seconds
    end: np.ndarray                            # (T,) float64
    n_boxes: np.ndarray                        # (T,) int32
    vectors: Optional[Vectors]                 # appearance, None when the run has none
    has_feature: np.ndarray                    # (T,) bool
    attributes: Optional[np.ndarray]           # (T, A) float32 probabilities, or uint8 (p * 255)
    has_attributes: np.ndarray                 # (T,) bool: the row's attributes are known
    attribute_names: tuple[str, ...]
    model: dict                                # ReID model record (see pipeline.search.model)
    thumbnails: dict = field(default_factory=dict)   # gid -> {camera: [relative paths]}
    trajectories: dict = field(default_factory=dict)  # gid -> [[t, X, Y], ...] on the ground (calibrated runs)
    run_id: Optional[int] = None               # row id in an index

    def __len__(self) -> int:
        return int(len(self.camera))

    def attribute_columns(self, cols: Sequence[int], rows=None) -> np.ndarray:
        """(T or len(rows), len(cols)) float32 probabilities of some attribute columns."""
        a = self.attributes if rows is None else self.attributes[rows]
        a = np.asarray(a[:, list(cols)])
        return a.astype(np.float32) / 255.0 if a.dtype == np.uint8 else a.astype(np.float32)

    def camera_codes(self, names: Sequence[str]) -> np.ndarray:
        return np.array([i for i, c in enumerate(self.cameras) if c in set(names)], np.int16)


def load_run(run_dir, model: Optional[dict] = None) -> Gallery:
    """The gallery of a run folder: identities.json (global ids, thumbnails) + the stage cache
    (features, attributes). ``model`` is the run's ReID model record, found from run.json if None."""
    from pipeline.runfolder.cache import CameraCache
    from pipeline.runfolder.generation import outputs_dir
    from pipeline.runfolder.layout import IDENTITIES_FILE

    run_dir = Path(run_dir)
    doc = load_identities(outputs_dir(run_dir, verify=[IDENTITIES_FILE]))   # a complete generation that matches the cache
    if not doc["identities"]:
        raise UserError(f"{run_dir}: the run has no identities (no person was tracked), nothing to search")
    gid_of = {(str(t["camera"]), int(t["track_id"])): int(i["global_id"])
              for i in doc["identities"] for t in i.get("tracklets", [])}
    cameras = list(dict.fromkeys([str(c["name"]) for c in doc.get("cameras", []) if isinstance(c, dict)]
                                 + [c for c, _ in gid_of]))
    tracklets = []
    for cam in sorted({c for c, _ in gid_of}):
        try:
            ts, _ = CameraCache(run_dir, cam).load_tracklets()
        except FileNotFoundError:
            raise UserError(f"{run_dir}: camera {cam!r} has no tracklets in cache/{cam}/ (deleted, or the run "
                            "was interrupted); rerun 'mcmt run' with the same --out") from None
        tracklets += [t for t in ts if (t.camera, t.track_id) in gid_of]
    if model is None:
        from pipeline.search.model import run_model
        model = run_model(run_dir, tracklets)
    return from_tracklets(run_dir.name, run_dir, cameras, tracklets, [gid_of[t.key] for t in tracklets], model,
                          thumbnails={int(i["global_id"]): i.get("thumbnails") or {} for i in doc["identities"]},
                          trajectories={int(i["global_id"]): i["trajectory"] for i in doc["identities"]
                                        if i.get("trajectory")})


def from_tracklets(run: str, run_dir: Optional[Path], cameras: Sequence[str], tracklets: Sequence, gids: Sequence[int],
                   model: dict, thumbnails: Optional[dict] = None, trajectories: Optional[dict] = None) -> Gallery:
    """Gallery of :class:`pipeline.tracklet.Tracklet` objects with their global ids."""
    cameras = list(cameras)
    uniq, ident = np.unique(np.asarray(gids, np.int64), return_inverse=True)
    has = np.array([t.has_features for t in tracklets], bool)
    dim = next((t.features.shape[1] for t in tracklets if t.has_features), 0)
    feats = np.zeros((len(tracklets), dim), np.float32)
    for i, t in enumerate(tracklets):
        if has[i]:
            feats[i] = t.mean_feature()
    names = next((tuple(t.attribute_names) for t in tracklets if t.attribute_names), ())
    has_attrs = np.array([bool(names) and t.attributes is not None and len(t.attributes) == len(names)
                          for t in tracklets], bool)
    attrs = None
    if names:
        attrs = np.zeros((len(tracklets), len(names)), np.float32)
        for i in np.flatnonzero(has_attrs):
            attrs[i] = tracklets[i].attributes
    return Gallery(
        run=run, run_dir=run_dir, cameras=cameras,
        camera=np.array([cameras.index(t.camera) for t in tracklets], np.int16),
        track_id=np.array([t.track_id for t in tracklets], np.int64), ident=ident.astype(np.int32).reshape(-1),
        gids=uniq, start=np.array([t.start_time for t in tracklets], np.float64),
        end=np.array([t.end_time for t in tracklets], np.float64),
        n_boxes=np.array([max(t.n_boxes, 1) for t in tracklets], np.int32),
        vectors=Vectors(feats) if dim else None, has_feature=has, attributes=attrs, has_attributes=has_attrs,
        attribute_names=names,
        model=model, thumbnails=thumbnails or {}, trajectories=trajectories or {})

"""Embedding crops during the run: chunked encoder calls, and a one-step-deep background queue so
the ReID call of step t runs while step t+1 decodes and detects."""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np


@dataclass
class CropBatch:
    """The tracks of one camera and step selected for embedding, and their crops."""
    camera: str
    frame_index: int
    step: int
    track_ids: np.ndarray                  # (K,) int64
    quality: np.ndarray                    # (K,) float
    crops: list                            # K BGR crops
    det_idx: np.ndarray                    # (K,) int64 row of each track's detection this step
    det_embeddings: Optional[tuple[np.ndarray, np.ndarray]] = None  # (N, D), (N, A) of this step's
    #                                      detections, when the appearance tracker had them embedded

    def reusing_detections(self) -> "CropBatch":
        """The tracks whose matched detection was embedded, with those features to reuse."""
        feats = self.det_embeddings[0]
        ok = (self.det_idx >= 0) & (self.det_idx < len(feats))
        ok[ok] = np.abs(feats[self.det_idx[ok]]).sum(1) > 0          # that detection was embedded
        return CropBatch(self.camera, self.frame_index, self.step, self.track_ids[ok], self.quality[ok],
                         [c for c, o in zip(self.crops, ok) if o], self.det_idx[ok], self.det_embeddings)


# called with each batch and its features (K, D) and attributes (K, A), in submission order
ApplyFeatures = Callable[[CropBatch, np.ndarray, np.ndarray], None]


class Embedder:
    """Calls ``encoder.embed`` in chunks of ``batch`` crops; (N, D) features, (N, A) attributes."""

    def __init__(self, encoder, batch: int):
        self.encoder, self.batch = encoder, max(1, int(batch))

    @property
    def dim(self) -> int:
        return int(self.encoder.dim)

    def __call__(self, crops: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        feats, attrs = [], []
        for s in range(0, len(crops), self.batch):
            f, a = self.encoder.embed(list(crops[s:s + self.batch]))
            feats.append(np.asarray(f, np.float32))
            attrs.append(np.asarray(a, np.float32))
        if not feats:
            return np.zeros((0, self.encoder.dim), np.float32), np.zeros((0, 0), np.float32)
        return np.concatenate(feats), np.concatenate(attrs)


class ReIDQueue:
    """The ReID calls of one step, run in a worker thread while the next step decodes and detects:
    the selected crops of all cameras (``submit``; ``collect`` hands their features to ``apply`` in
    the main thread, before tracks can close), and the detections of appearance-tracker cameras
    (``submit_detections``; that step is tracked once ``take_detections`` returns them). Batches
    of those cameras reuse the detection embeddings instead of embedding their crops again."""

    def __init__(self, embed: Optional[Embedder], apply: ApplyFeatures, stats, background: bool = True):
        self.embed, self.apply, self.stats = embed, apply, stats
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reid") if background else None
        self._pending: list[CropBatch] = []
        self._job = None
        self._detections = None

    def _run(self, crops):
        t0 = time.perf_counter()
        feats, attrs = self.embed(crops)
        return feats, attrs, time.perf_counter() - t0

    def _start(self, crops: list):
        if not crops:
            return None
        self.stats.embedded_crops += len(crops)
        return self._pool.submit(self._run, crops) if self._pool is not None else _Done(self._run(crops))

    def _result(self, job):
        feats, attrs, seconds = job.result()
        self.stats.reid_seconds += seconds
        return feats, attrs

    def submit(self, batches: list[CropBatch]) -> None:
        self.collect()
        self._pending = batches
        self._job = self._start([c for b in batches if b.det_embeddings is None for c in b.crops])

    def submit_detections(self, frames: dict, dets: dict, picks: dict, crops: list) -> None:
        """Embed ``crops``: the rows ``picks[camera]`` of ``dets[camera]``, in camera order."""
        self._detections = (frames, dets, picks, self._start(crops))

    def take_detections(self) -> Optional[tuple]:
        """(frames, dets, {camera: (features, attributes)}) of the last ``submit_detections`` (waits
        for the worker), or None; rows that were not embedded are zero."""
        if self._detections is None:
            return None
        frames, dets, picks, job = self._detections
        self._detections = None
        feats, attrs = self._result(job) if job is not None else (None, None)
        out, s = {}, 0
        for name, rows in picks.items():
            f = np.zeros((len(dets[name]), feats.shape[1] if feats is not None else self.embed.dim), np.float32)
            a = np.zeros((len(dets[name]), attrs.shape[1] if attrs is not None else 0), np.float32)
            if len(rows):
                f[rows], a[rows] = feats[s:s + len(rows)], attrs[s:s + len(rows)]
            out[name] = (f, a)
            s += len(rows)
        return frames, dets, out

    def collect(self) -> None:
        """Hand the features of the last submitted step to ``apply`` (waits for the worker)."""
        pending, job = self._pending, self._job
        self._pending, self._job = [], None
        feats, attrs = self._result(job) if job is not None else (None, None)
        s = 0
        for batch in pending:
            if batch.det_embeddings is None:
                k = len(batch.track_ids)
                self.apply(batch, feats[s:s + k], attrs[s:s + k])
                s += k
            else:
                kept = batch.reusing_detections()
                f, a = kept.det_embeddings
                self.apply(kept, f[kept.det_idx], a[kept.det_idx])

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


class _Done:
    """A finished result with the ``Future.result()`` interface (no worker thread)."""

    def __init__(self, value):
        self.value = value

    def result(self):
        return self.value

"""Embedding crops during the run: chunked encoder calls, and a one-step-deep background queue so
the ReID call of step t runs while step t+1 decodes and detects."""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Optional, Sequence

import numpy as np


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
    the selected crops of all cameras (features applied in the main thread before tracks can close),
    and the detections of appearance-tracker cameras (``submit_detections``; that step is tracked
    once ``take_detections`` returns them). Crops of those cameras reuse the detection embeddings."""

    def __init__(self, embed: Optional[Embedder], cams: dict, stats, background: bool = True):
        self.embed, self.cams, self.stats = embed, cams, stats
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reid") if background else None
        self._pending: list = []
        self._job = None
        self._detections = None

    def _run(self, crops):
        t0 = time.perf_counter()
        feats, attrs = self.embed(crops)
        return feats, attrs, time.perf_counter() - t0

    def submit(self, pending: list) -> None:
        self.collect()
        crops = [c for p in pending if p[6] is None for c in p[5]]
        self._pending = pending
        if crops and self._pool is not None:
            self._job = self._pool.submit(self._run, crops)
        elif crops:
            self._job = _Done(self._run(crops))
        self.stats.embedded_crops += len(crops)

    def submit_detections(self, frames: dict, dets: dict, picks: dict, crops: list) -> None:
        """Embed ``crops``: the rows ``picks[camera]`` of ``dets[camera]``, in camera order."""
        job = None
        if crops:
            job = self._pool.submit(self._run, crops) if self._pool is not None else _Done(self._run(crops))
        self._detections = (frames, dets, picks, job)
        self.stats.embedded_crops += len(crops)

    def take_detections(self) -> Optional[tuple]:
        """(frames, dets, {camera: (features, attributes)}) of the last ``submit_detections`` (waits
        for the worker), or None; rows that were not embedded are zero."""
        if self._detections is None:
            return None
        frames, dets, picks, job = self._detections
        self._detections = None
        feats = attrs = None
        if job is not None:
            feats, attrs, seconds = job.result()
            self.stats.reid_seconds += seconds
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
        """Apply the features of the last submitted step (waits for the worker)."""
        pending, job = self._pending, self._job
        self._pending, self._job = [], None
        feats = attrs = None
        if job is not None:
            feats, attrs, seconds = job.result()
            self.stats.reid_seconds += seconds
        s = 0
        for name, fr, step, tids, quality, cr, emb, det_idx in pending:
            if emb is None:
                f, a = feats[s:s + len(tids)], attrs[s:s + len(tids)]
                s += len(tids)
            else:
                ok = (det_idx >= 0) & (det_idx < len(emb[0]))
                ok[ok] = np.abs(emb[0][det_idx[ok]]).sum(1) > 0          # that detection was embedded
                tids, quality, det_idx = tids[ok], quality[ok], det_idx[ok]
                cr = [c for c, o in zip(cr, ok) if o]
                f, a = emb[0][det_idx], emb[1][det_idx]
            self.cams[name].store.add_features(fr.index, step, tids, f, a, quality, cr)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


class _Done:
    """A finished result with the ``Future.result()`` interface (no worker thread)."""

    def __init__(self, value):
        self.value = value

    def result(self):
        return self.value

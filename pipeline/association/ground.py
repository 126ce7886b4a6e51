"""The ground plane of calibrated cameras (``--calibration``): where people stand decides.

Each calibrated tracklet's foot points (``Tracklet.footprints``) lie on one ground plane through its
camera's homography (pipeline/formats/calibration.py). Two cues follow:

1. **Same time, two views** (:func:`view_pairs`): for two calibrated cameras, the calibration gives the
   view-to-view homography (image a -> ground -> image b) that overlap.py otherwise has to learn from
   the run; tracklets seen at once are judged under it with overlap.py's own rules (median foot-point
   error in box heights of b, one-to-one matching on a time grid with appearance as a tie-break): one
   person seen twice joins (longest matched time first), two people far apart never share an identity.
   For calibrated pairs this replaces the run-learned model (:func:`skip_calibrated`), so a short run,
   a crowd or views whose colours differ too much for appearance seeds lose nothing.
2. **Transit time** (:func:`transit_blocked`): a person cannot change cameras faster than people walk.
   The walking speed is learned from the run (``SPEED_QUANTILE`` of the tracklets' own median ground
   speeds, times ``SPEED_FACTOR``, at least ``MIN_SPEED`` ground box heights per second: a box's height
   in pixels times the ground units per pixel at its foot, so nothing depends on the calibration's
   units); a tracklet that starts in another camera after one ended, farther away on the ground (less
   ``SLACK`` box heights) than that speed allows in the gap, is a different person. Within one camera
   the association's own motion limit applies (a tracker's jumps at occlusions would mislead this one).

Measured on EPFL terrace with its published homographies (bench/calibration.py): cross-camera IDF1 the
same as with the homography learned from the run when that one is found (the calibration is the same
plane), and the same person's two world positions a median 19 ground units apart (ground truth's own 21).
:func:`apply_ground` is the hook the association calls before its other geometry.
"""
from __future__ import annotations

import logging
from typing import Optional, Sequence

import numpy as np

from pipeline.formats.calibration import GroundCalibration, apply_homography
from pipeline.tracklet import Tracklet

log = logging.getLogger(__name__)

SPEED_QUANTILE = 0.9      # of the tracklets' median ground speeds
SPEED_FACTOR = 1.5        # the fastest plausible move = this x that quantile ...
MIN_SPEED = 1.0           # ... and at least this many ground box heights per second
MIN_SPEED_SECONDS = 2.0   # tracklets shorter than this do not teach the speed
SLACK = 1.0               # combined ground box heights of localisation error allowed in a transit

GroundTrack = np.ndarray  # (K, 4) time (s), X, Y, ground box height (ground units)


def ground_tracks(tracklets: Sequence[Tracklet], ground: GroundCalibration) -> list[Optional[GroundTrack]]:
    """Each tracklet's foot points on the ground; None for cameras without calibration or footprints."""
    out: list[Optional[GroundTrack]] = []
    for t in tracklets:
        fp = t.footprints
        if t.camera not in ground or fp is None or not len(fp):
            out.append(None)
            continue
        cal = ground.cameras[t.camera]
        uv = fp[:, 1:3].astype(np.float64)
        xy, size = cal.to_ground(uv), fp[:, 3] * cal.scale(uv)
        ok = np.all(np.isfinite(xy), axis=1) & np.isfinite(size)
        out.append(np.column_stack([fp[ok, 0], xy[ok], size[ok]]) if ok.sum() else None)
    return out



def walking_speeds(tracks: Sequence[Optional[GroundTrack]]) -> Optional[tuple[float, float]]:
    """(typical, fastest plausible) move in ground units / s learned from the tracklets' own median speeds
    (their median, and ``SPEED_FACTOR`` x their ``SPEED_QUANTILE``, at least ``MIN_SPEED`` box heights /
    s); None when no calibrated tracklet lasts ``MIN_SPEED_SECONDS``."""
    speeds, heights = [], []
    for g in tracks:
        if g is None or len(g) < 3 or g[-1, 0] - g[0, 0] < MIN_SPEED_SECONDS:
            continue
        step = max(1, int(np.ceil(len(g) / max((g[-1, 0] - g[0, 0]), 1e-9))))   # about 1 s apart
        s = g[::step]
        dt = np.diff(s[:, 0])
        ok = dt > 0
        if ok.sum():
            speeds.append(float(np.median(np.hypot(*np.diff(s[:, 1:3], axis=0).T)[ok] / dt[ok])))
            heights.append(float(np.median(g[:, 3])))
    if not speeds:
        return None
    fastest = max(SPEED_FACTOR * float(np.quantile(speeds, SPEED_QUANTILE)), MIN_SPEED * float(np.median(heights)))
    return float(np.median(speeds)), fastest


def transit_blocked(tracks: Sequence[Optional[GroundTrack]], cam: np.ndarray, start: np.ndarray, end: np.ndarray,
                    speed: float) -> tuple[np.ndarray, np.ndarray]:
    """(i, j) calibrated tracklets of two cameras, j starting after i ends, whose exit -> entry ground
    distance, less ``SLACK`` combined box heights, needs a move faster than ``speed``."""
    from pipeline.association.constraints import gap_pairs

    has = np.flatnonzero([g is not None for g in tracks])
    if len(has) < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    pts = np.concatenate([tracks[k][:, 1:3] for k in has])
    window = float(np.hypot(*np.ptp(pts, axis=0))) / speed                 # farther apart in time: any move fits
    i, j = gap_pairs(cam, start, end, window, same_camera=False, rows=has)
    ok = np.array([tracks[b] is not None for b in j.tolist()], bool)
    i, j = i[ok], j[ok]
    if not len(i):
        return i, j
    exit_ = np.stack([tracks[a][-1] for a in i.tolist()])                  # (P, 4)
    entry = np.stack([tracks[b][0] for b in j.tolist()])
    dist = np.hypot(exit_[:, 1] - entry[:, 1], exit_[:, 2] - entry[:, 2])
    slack = SLACK * np.hypot(exit_[:, 3], entry[:, 3])
    gap = np.maximum(entry[:, 0] - exit_[:, 0], 0.0)
    bad = dist - slack > speed * gap
    return i[bad], j[bad]


def view_pairs(ground: GroundCalibration, tracklets: Sequence[Tracklet], cam: np.ndarray, start: np.ndarray,
               end: np.ndarray, dist: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(i, j, strength, different) of tracklets of two calibrated cameras seen at once, judged like the
    run-learned overlapping views (overlap.py: median foot-point error in box heights of j's image, one-to-one
    matching on a time grid) but under the calibration's view-to-view homography (image a -> ground -> image
    b) instead of one learned from the run: ``strength`` > 0 for one person (longest matched time first),
    ``different`` for two people."""
    from pipeline.association import overlap
    from pipeline.association.covisibility import matched_share as view_share

    i, j = overlap.candidate_pairs(tracklets, cam, start, end)                 # cam[i] < cam[j]
    out = []
    for a, b in np.unique(np.column_stack([cam[i], cam[j]]), axis=0).tolist():
        sel = np.flatnonzero((cam[i] == a) & (cam[j] == b))
        na, nb = tracklets[i[sel[0]]].camera, tracklets[j[sel[0]]].camera
        if na not in ground or nb not in ground:
            continue
        h = np.linalg.inv(ground.cameras[nb].homography) @ ground.cameras[na].homography
        geo = overlap.geometry(tracklets, i[sel], j[sel])
        err = np.array([np.median(np.hypot(*(apply_homography(h, s) - d).T) / np.maximum(hb, 1.0))
                        if len(s) >= overlap.MIN_SHARED else np.inf for s, d, hb in geo])
        ok = np.isfinite(err)
        si, sj, err = i[sel][ok], j[sel][ok], err[ok]
        share, seen = view_share(tracklets, si, sj, h, dist) if len(si) else (np.zeros(0), np.zeros(0))
        agree = (err <= overlap.AGREE_LOOSE) & (share >= overlap.MATCHED) & (seen >= overlap.MIN_SHARED)
        out.append((si, sj, np.where(agree, share * seen, 0.0), err > overlap.DISAGREE))
    if not out:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), np.zeros(0, bool)
    return tuple(np.concatenate(x) for x in zip(*out))


def apply_ground(ground: GroundCalibration, tracklets: Sequence[Tracklet], cam: np.ndarray, start: np.ndarray,
                 end: np.ndarray, dist: np.ndarray, cannot: np.ndarray, stats: dict) -> tuple[np.ndarray, np.ndarray]:
    """The association hook: pairs of calibrated views that are two people, or would need a move faster
    than people walk, become cannot-link; pairs that are one person get distance 0 (``dist`` and
    ``cannot`` changed in place) and are returned (i, j), best first, to be joined before the clustering."""
    tracks = ground_tracks(tracklets, ground)
    i, j, strength, diff = view_pairs(ground, tracklets, cam, start, end, dist)
    agree = strength > 0
    order = np.argsort(-strength[agree], kind="stable")
    si, sj = i[agree][order], j[agree][order]
    cannot[i[diff], j[diff]] = cannot[j[diff], i[diff]] = True
    dist[si, sj] = dist[sj, si] = 0.0
    speeds = walking_speeds(tracks)
    ti, tj = transit_blocked(tracks, cam, start, end, speeds[1]) if speeds else (np.zeros(0, np.int64),) * 2
    newly = int((~cannot[ti, tj]).sum())
    cannot[ti, tj] = cannot[tj, ti] = True
    stats.update(ground_cameras=sorted(ground.cameras), ground_tracklets=int(sum(g is not None for g in tracks)),
                 ground_pairs=int(len(i)), ground_same=int(agree.sum()), ground_different=int(diff.sum()),
                 ground_speed=None if speeds is None else [round(v, 4) for v in speeds],
                 ground_transit_blocked=newly)
    log.info("ground plane: %d pairs of calibrated views seen at once, %d same, %d different; fastest walk %s, "
             "%d camera changes too fast", len(i), int(agree.sum()), int(diff.sum()),
             "-" if speeds is None else f"{speeds[1]:.2f}", newly)
    return si, sj


def skip_calibrated(ground: Optional[GroundCalibration], tracklets: Sequence[Tracklet], si: np.ndarray,
                    sj: np.ndarray, solid: np.ndarray, diff: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The run-learned overlap evidence (same pairs si, sj with their ``solid`` flags, different pairs) without
    the pairs whose two cameras are calibrated (the ground plane decides those); unchanged without a
    calibration."""
    if ground is None:
        return si, sj, solid, diff
    calibrated = np.array([t.camera in ground for t in tracklets], bool)
    keep = ~(calibrated[si] & calibrated[sj])
    keep_d = ~(calibrated[diff[:, 0]] & calibrated[diff[:, 1]]) if len(diff) else np.zeros(0, bool)
    return si[keep], sj[keep], solid[keep], diff[keep_d].reshape(-1, 2)

#!/usr/bin/env python
"""Cut PETS 2009 S2L1 (OpenCV's sample ``vtest.avi``) into a small two-camera benchmark.

The left and right parts of the single real view become two "cameras" with a blind strip
between them, so people leave one camera and appear in the other a little later. The MOT15
ground truth is cut the same way and written with GLOBAL ids (a person keeps the id in
every camera) in MOTChallenge layout and in the AI City multi-camera format:

  <out>/pets_left.mp4  <out>/pets_right.mp4  [<out>/pets_third.mp4]
  <out>/gt/<camera>/gt/gt.txt  <out>/gt/<camera>/seqinfo.ini  <out>/gt/mtmc.txt

``--third-view`` adds a centre view at another scale with another colour response, so
appearance differs between cameras. Works from any vtest.avi (e.g. Debian's opencv-doc:
/usr/share/doc/opencv-doc/examples/data/vtest.avi); ground truth is written only when the
MOT15 gt.txt is found (--gt). Examples:

  python samples/make_pets_multicam.py                       # shared data -> samples/
  python samples/make_pets_multicam.py --video ~/vtest.avi --gt ~/gt.txt --out /tmp/pets --third-view
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from pipeline.formats.aicity import mot_to_mtmc, write_mtmc  # noqa: E402

SHARED = Path(os.environ.get("MCMT_SHARED", REPO.parent / "shared"))
DEFAULT_VIDEO = SHARED / "data" / "pets09-s2l1" / "vtest.avi"
FPS = 7.0  # PETS 2009 / MOT15 frame rate (the avi container claims 10)


@dataclass(frozen=True)
class View:
    """A camera cut from the source frame: crop [x0, x1) x [y0, y1), resize, colour response."""
    name: str
    x0: int
    x1: int
    y0: int
    y1: int
    scale: float = 1.0
    gains: tuple[float, float, float] = (1.0, 1.0, 1.0)  # B, G, R multipliers
    gamma: float = 1.0

    @property
    def size(self) -> tuple[int, int]:
        """Output (width, height), rounded to even numbers for the video codec."""
        w = max(2, int(round((self.x1 - self.x0) * self.scale / 2)) * 2)
        h = max(2, int(round((self.y1 - self.y0) * self.scale / 2)) * 2)
        return w, h


def default_views(width: int, height: int, blind: int, scale: float, third: bool,
                  top: int = 64) -> list[View]:
    """Left and right halves with a `blind`-pixel strip between them; optional centre view."""
    left_end = (width - blind) // 2
    views = [View("pets_left", 0, left_end, top, height, scale),
             View("pets_right", left_end + blind, width, top, height, scale)]
    if third:
        q = width // 4
        views.append(View("pets_third", q, width - q, top, height, scale * 0.75,
                          gains=(0.75, 0.95, 1.2), gamma=0.8))
    return views


def colour_lut(view: View) -> np.ndarray:
    """(256, 1, 3) uint8 lookup table: per-channel gain then gamma."""
    x = np.arange(256, dtype=np.float64)[:, None] / 255.0                  # (256, 1)
    out = np.clip(x * np.asarray(view.gains)[None, :], 0, 1) ** view.gamma  # (256, 3)
    return np.round(out * 255).astype(np.uint8)[:, None, :]


def render(frame: np.ndarray, view: View, lut: np.ndarray | None) -> np.ndarray:
    """Crop, resize and colour one BGR frame for a view."""
    img = frame[view.y0:view.y1, view.x0:view.x1]
    if view.size != (img.shape[1], img.shape[0]):
        img = cv2.resize(img, view.size, interpolation=cv2.INTER_AREA)
    return cv2.LUT(img, lut) if lut is not None else np.ascontiguousarray(img)


def view_boxes(gt: np.ndarray, view: View, min_visible: float) -> np.ndarray:
    """MOT rows (N, 10) of the full frame -> rows of people visible in the view, in its pixels.

    A box is kept when at least `min_visible` of its area lies inside the crop; it is
    clipped to the crop, shifted and scaled. Frame, id and the world columns are unchanged.
    """
    x1, y1 = gt[:, 2], gt[:, 3]
    x2, y2 = x1 + gt[:, 4], y1 + gt[:, 5]
    cx1, cy1 = np.maximum(x1, view.x0), np.maximum(y1, view.y0)
    cx2, cy2 = np.minimum(x2, view.x1), np.minimum(y2, view.y1)
    area = np.clip(cx2 - cx1, 0, None) * np.clip(cy2 - cy1, 0, None)     # (N,)
    keep = area >= min_visible * gt[:, 4] * gt[:, 5]
    sx = view.size[0] / (view.x1 - view.x0)
    sy = view.size[1] / (view.y1 - view.y0)
    out = gt[keep].copy()
    out[:, 2] = (cx1[keep] - view.x0) * sx
    out[:, 3] = (cy1[keep] - view.y0) * sy
    out[:, 4] = (cx2[keep] - cx1[keep]) * sx
    out[:, 5] = (cy2[keep] - cy1[keep]) * sy
    return out


def load_gt(path: Path, start: int, n_frames: int) -> np.ndarray:
    """MOT15 gt rows in the chosen frames, renumbered from 1; ignore rows (conf 0) dropped."""
    gt = np.loadtxt(path, delimiter=",", ndmin=2)[:, :10]
    gt = gt[(gt[:, 6] != 0) & (gt[:, 0] >= start) & (gt[:, 0] < start + n_frames)].copy()
    gt[:, 0] -= start - 1
    return gt


def write_seqinfo(path: Path, name: str, n_frames: int, size: tuple[int, int], fps: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"[Sequence]\nname={name}\nimDir=img1\nframeRate={fps:g}\nseqLength={n_frames}\n"
                    f"imWidth={size[0]}\nimHeight={size[1]}\nimExt=.jpg\n")


def write_mot(path: Path, rows: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = rows[np.lexsort((rows[:, 1], rows[:, 0]))]
    tmp = path.with_name(path.name + ".tmp")
    np.savetxt(tmp, rows, fmt=["%d", "%d"] + ["%.2f"] * 4 + ["%d"] + ["%.4f"] * 3, delimiter=",")
    os.replace(tmp, path)


def write_clips(video: Path, out: Path, views: list[View], start: int, max_frames: int | None,
                fps: float) -> int:
    """Decode `video` from 1-based frame `start` and write one mp4 per view; returns frames written."""
    cap = cv2.VideoCapture(str(video))
    if not cap.isOpened():
        raise SystemExit(f"cannot open video {video}: is it a readable video file?")
    cap.set(cv2.CAP_PROP_POS_FRAMES, start - 1)
    tmps = [out / f".{v.name}.tmp.mp4" for v in views]
    writers = [cv2.VideoWriter(str(t), cv2.VideoWriter_fourcc(*"mp4v"), fps, v.size) for t, v in zip(tmps, views)]
    luts = [colour_lut(v) if (v.gains != (1.0, 1.0, 1.0) or v.gamma != 1.0) else None for v in views]
    n = 0
    try:
        while max_frames is None or n < max_frames:
            ok, frame = cap.read()
            if not ok:
                break
            for w, v, lut in zip(writers, views, luts):
                w.write(render(frame, v, lut))
            n += 1
    finally:
        cap.release()
        for w in writers:
            w.release()
    for t, v in zip(tmps, views):
        os.replace(t, out / f"{v.name}.mp4")
    return n


def make(video: Path, gt_path: Path | None, out: Path, *, start: int = 1, max_frames: int | None = None,
         scale: float = 0.75, blind: int = 80, third: bool = False, min_visible: float = 0.5,
         fps: float = FPS) -> dict:
    """Write the clips (and ground truth when `gt_path` is given); returns a summary dict."""
    cap = cv2.VideoCapture(str(video))
    width, height = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    cap.release()
    if width <= 0 or height <= 0:
        raise SystemExit(f"cannot read video {video}")
    out.mkdir(parents=True, exist_ok=True)
    views = default_views(width, height, blind, scale, third)
    n = write_clips(video, out, views, start, max_frames, fps)
    summary = {"frames": n, "cameras": {v.name: {"size": v.size} for v in views}}
    if gt_path is None:
        return summary
    gt = load_gt(gt_path, start, n)
    per_cam = {v.name: view_boxes(gt, v, min_visible) for v in views}
    for v in views:
        write_mot(out / "gt" / v.name / "gt" / "gt.txt", per_cam[v.name])
        write_seqinfo(out / "gt" / v.name / "seqinfo.ini", v.name, n, v.size, fps)
        summary["cameras"][v.name].update(boxes=len(per_cam[v.name]), ids=len(np.unique(per_cam[v.name][:, 1])))
    write_mtmc(out / "gt" / "mtmc.txt", mot_to_mtmc(per_cam, [v.name for v in views]))
    return summary


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--video", type=Path, default=DEFAULT_VIDEO, help="PETS 2009 S2L1 / OpenCV vtest.avi")
    p.add_argument("--gt", type=Path, help="MOT15 PETS09-S2L1 gt.txt (default: gt/gt.txt next to the video)")
    p.add_argument("--out", type=Path, default=REPO / "samples", help="output folder")
    p.add_argument("--start", type=int, default=1, help="first source frame (1-based)")
    p.add_argument("--max-frames", type=int, help="stop after this many frames (default: all)")
    p.add_argument("--scale", type=float, default=0.75, help="resize factor of the left/right views")
    p.add_argument("--blind", type=int, default=80, help="width in source pixels of the strip no camera sees")
    p.add_argument("--min-visible", type=float, default=0.5, help="keep a gt box if this fraction is in view")
    p.add_argument("--third-view", action="store_true", help="add a centre view, other scale and colours")
    return p.parse_args(argv)


def main(argv=None) -> int:
    a = parse_args(argv)
    if not a.video.is_file():
        raise SystemExit(f"video not found: {a.video} (give --video path/to/vtest.avi; it ships in "
                         "Debian's opencv-doc package)")
    gt = a.gt if a.gt is not None else a.video.parent / "gt" / "gt.txt"
    if not gt.is_file():
        if a.gt is not None:
            raise SystemExit(f"ground truth not found: {a.gt}")
        print(f"no ground truth at {gt}: writing the clips only (give --gt for MOT15 labels)")
        gt = None
    s = make(a.video, gt, a.out, start=a.start, max_frames=a.max_frames, scale=a.scale, blind=a.blind,
             third=a.third_view, min_visible=a.min_visible)
    for name, c in s["cameras"].items():
        extra = f", {c['boxes']} gt boxes, {c['ids']} ids" if "boxes" in c else ""
        print(f"{a.out / (name + '.mp4')}: {s['frames']} frames {c['size'][0]}x{c['size'][1]}{extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

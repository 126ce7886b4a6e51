"""Video sources: one per ``--videos`` entry (a video file or a folder of frames such as MOT ``img1/``).

A :class:`VideoSource` is opened and checked when it is built (``open_sources``), so an unreadable
or empty input stops the run with a message naming it *before* any work starts. Iterating a source
yields :class:`Frame` objects (0-based index in the camera's own video, time in seconds with the
camera offset applied, BGR image). A frame that fails to decode in the middle of a stream is skipped
with a warning and counted in ``source.corrupt``.

Frame times are ``index / fps`` (fps as the container states it), except in a video with a variable frame
rate: from the first frame whose container timestamp (``CAP_PROP_POS_MSEC``) differs from ``index / fps``
by more than half a frame interval on, frames take the container's time, with one warning naming the file. A constant-rate video
never differs that much, so its times stay exactly ``index / fps``. ``time_of`` knows the container times of
the frames this source has read; :meth:`VideoSource.retime` gives tracklets those times.
"""
from __future__ import annotations

import configparser
import copy
import dataclasses
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Sequence

import cv2
import numpy as np

from core.errors import UserError

log = logging.getLogger(__name__)

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
MAX_CONSECUTIVE_FAILURES = 25   # a video whose reads keep failing has ended (or is truncated)


@dataclass(frozen=True)
class Frame:
    index: int            # 0-based frame number in the camera's own video
    time: float           # seconds: offset + index / fps (the container's time in a variable-rate video)
    image: np.ndarray     # (H, W, 3) uint8 BGR


def _natural_key(path: Path):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name)]


def _folder_fps(folder: Path, default: float) -> float:
    """fps of a frame folder: MOTChallenge ``seqinfo.ini`` next to it (frameRate) or ``default``."""
    for ini in (folder / "seqinfo.ini", folder.parent / "seqinfo.ini"):
        if ini.is_file():
            parser = configparser.ConfigParser()
            try:
                parser.read(ini)
                return float(parser["Sequence"]["frameRate"])
            except (KeyError, ValueError, configparser.Error):
                log.warning("%s: no readable frameRate, using %.1f fps", ini, default)
    return default


def camera_name(path: str | Path) -> str:
    """Default camera name: the file stem; for a MOT ``img1/`` folder, the sequence folder name."""
    path = Path(path)
    if path.is_dir() and path.name.lower() in ("img1", "images", "frames") and path.parent.name:
        return path.parent.name
    return path.name if path.is_dir() else path.stem


def camera_names(paths: Sequence[str], names: Optional[Sequence[str]] = None) -> list[str]:
    """One unique, file-system-safe name per camera (``names`` if given, else from the paths)."""
    if names:
        if len(names) != len(paths):
            raise UserError(f"--names got {len(names)} names for {len(paths)} videos; give one per video")
        out = list(names)
    else:
        out = [camera_name(p) for p in paths]
    bad = [n for n in out if not n or not re.fullmatch(r"[A-Za-z0-9_.\-]+", n)]
    if bad:
        raise UserError(f"camera name {bad[0]!r} is not usable as a file name; "
                        "use letters, digits, '_', '-', '.' (set them with --names)")
    dupes = sorted({n for n in out if out.count(n) > 1})
    if dupes:
        raise UserError(f"two videos have the same camera name {dupes[0]!r}; "
                        "give distinct names with --names cam1 cam2 ...")
    return out


class VideoSource:
    """Frames of one camera: a video file or a folder of images, read every ``stride``-th frame."""

    def __init__(self, path: str | Path, name: str, *, offset: float = 0.0, stride: int = 1,
                 max_frames: Optional[int] = None, default_fps: float = 25.0):
        if stride < 1:
            raise UserError(f"stride must be >= 1, got {stride}")
        self.path = Path(path)
        self.name = name
        self.offset = float(offset)
        self.stride = int(stride)
        self.max_frames = max_frames
        self.start, self.stop = 0, None    # frame range [start, stop) of a time chunk (see chunk())
        self.chunk: Optional[int] = None   # chunk number, None for the whole video
        self.corrupt = 0                   # frames that failed to decode (skipped)
        self.container_times: dict[int, float] = {}   # index -> seconds, a variable-rate video's frames only
        self.is_folder = self.path.is_dir()
        self._files: list[Path] = []
        if self.is_folder:
            self._probe_folder(default_fps)
        else:
            self._probe_video(default_fps)

    def _probe_folder(self, default_fps: float) -> None:
        files = [p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_EXTS and p.is_file()]
        if not files:
            raise UserError(f"{self.path}: folder has no images ({', '.join(IMAGE_EXTS)}); "
                            "give a video file or a folder of frames")
        self._files = sorted(files, key=_natural_key)
        first = cv2.imread(str(self._files[0]))
        if first is None:
            raise UserError(f"{self._files[0]}: cannot read the first frame of camera '{self.name}'")
        self.height, self.width = first.shape[:2]
        self.fps = _folder_fps(self.path, default_fps)
        self.total_frames = len(self._files)

    def _probe_video(self, default_fps: float) -> None:
        if not self.path.is_file():
            raise UserError(f"video not found: {self.path} (check the path given to --videos)")
        if self.path.stat().st_size == 0:
            raise UserError(f"video file is empty: {self.path}")
        cap = cv2.VideoCapture(str(self.path))
        try:
            ok, first = cap.read() if cap.isOpened() else (False, None)
            if not ok or first is None:
                raise UserError(f"{self.path}: cannot read a frame (not a video, or a codec OpenCV lacks)")
            fps = cap.get(cv2.CAP_PROP_FPS)
            count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        finally:
            cap.release()
        self.height, self.width = first.shape[:2]
        self.fps = float(fps) if fps and np.isfinite(fps) and 0 < fps < 1000 else default_fps
        self.total_frames = count if count > 0 else -1   # -1: unknown until read

    def chunk_of(self, number: int, start: int, stop: Optional[int]) -> "VideoSource":
        """A copy that reads frames [start, stop) only (frame numbers stay the video's own), as time
        chunk ``number`` of this camera; ``start`` is on the stride grid."""
        if start < 0 or start % self.stride or (stop is not None and stop <= start):
            raise ValueError(f"bad chunk range [{start}, {stop}) for stride {self.stride}")
        part = copy.copy(self)
        part.start, part.stop, part.chunk = int(start), (None if stop is None else int(stop)), int(number)
        part.corrupt = 0
        return part

    def _end(self) -> int:
        """One past the last frame index this source may read (-1: unknown)."""
        if self.total_frames < 0:
            return -1 if self.stop is None else self.stop
        return self.total_frames if self.stop is None else min(self.stop, self.total_frames)

    @property
    def num_frames(self) -> int:
        """Frames this source will yield (-1 when the container does not say)."""
        end = self._end()
        if end < 0:
            return -1
        n = max(0, (end - self.start + self.stride - 1) // self.stride)
        return min(n, self.max_frames) if self.max_frames is not None else n

    def time_of(self, index: int) -> float:
        return self.offset + self.container_times.get(index, index / self.fps)

    def _frame_time(self, index: int, msec: float) -> float:
        """Time of frame ``index`` read with container timestamp ``msec`` (see the module docstring)."""
        t = msec / 1000.0
        if not (math.isfinite(t) and t >= 0):
            return self.time_of(index)
        if self.container_times or abs(t - index / self.fps) > 0.5 / self.fps:   # variable rate: from now on
            if not self.container_times:
                log.warning("camera '%s': %s has a variable frame rate (frame %d at %.3f s in the container, "
                            "%.3f s at its average %.3g frames/s): frame and tracklet times follow the "
                            "container's timestamps", self.name, self.path, index, t, index / self.fps, self.fps)
            self.container_times[index] = t
        return self.time_of(index)

    def retime(self, tracklets: list) -> list:
        """``tracklets`` of this camera with the container's start / end times where they differ from
        ``index / fps`` (variable frame rate); the same objects otherwise."""
        if not self.container_times:
            return tracklets
        return [dataclasses.replace(t, start_time=self.time_of(t.start_frame), end_time=self.time_of(t.end_frame))
                for t in tracklets]

    def __iter__(self) -> Iterator[Frame]:
        self.corrupt = 0
        return self._iter_folder() if self.is_folder else self._iter_video()

    def _iter_folder(self) -> Iterator[Frame]:
        yielded = 0
        for index in range(self.start, self._end(), self.stride):
            if self.max_frames is not None and yielded >= self.max_frames:
                return
            image = cv2.imread(str(self._files[index]))
            if image is None:
                self._skip(index, self._files[index].name)
                continue
            yielded += 1
            yield Frame(index, self.time_of(index), image)

    def _iter_video(self) -> Iterator[Frame]:
        cap = cv2.VideoCapture(str(self.path))
        failed: list[int] = []       # analysed frames that did not decode, since the last frame that did
        try:
            index, yielded = self._seek(cap), 0
            while self.max_frames is None or yielded < self.max_frames:
                if self.stop is not None and index >= self.stop:
                    return
                if index % self.stride:
                    ok = cap.grab()
                    image = None
                else:
                    ok, image = cap.read()
                if not ok or (image is None and index % self.stride == 0):
                    if self.total_frames < 0 or index >= self.total_frames:
                        return                      # normal end of stream
                    failed.append(index)
                    if len(failed) > MAX_CONSECUTIVE_FAILURES:
                        if not self.container_times:
                            log.warning("%s: stopped after %d unreadable frames at frame %d of %d",
                                        self.path, len(failed), index, self.total_frames)
                        return
                    index += 1
                    continue
                self._skip_failed(failed)
                if image is not None:
                    yielded += 1
                    yield Frame(index, self._frame_time(index, cap.get(cv2.CAP_PROP_POS_MSEC)), image)
                index += 1
        finally:
            cap.release()
            self._end_of_stream(failed)

    def _skip_failed(self, failed: list[int]) -> None:
        """Frames in ``failed`` did not decode but a later one did: skipped (warned about and counted)."""
        for index in failed:
            if index % self.stride == 0:
                self._skip(index, f"frame {index}")
        failed.clear()

    def _end_of_stream(self, failed: list[int]) -> None:
        """The stream ended after the reads of ``failed`` failed. In a variable-frame-rate video (MKV, AVI, ...)
        the container's frame count is its duration at the nominal rate, beyond the frames it holds: those
        reads are its end, not damaged frames; otherwise they are skipped frames, as in the middle."""
        if failed and self.container_times:
            log.info("%s: %d frames (the container's count, %d, is its duration at %.3g frames/s)",
                     self.path, failed[0], self.total_frames, self.fps)
            if self.stop is None and self.start == 0:
                self.total_frames = failed[0]
            failed.clear()
        self._skip_failed(failed)

    def _seek(self, cap) -> int:
        """Position ``cap`` at frame ``start``: a seek when the container lands exactly there, else
        grabbing frame by frame (exact for any codec). Returns the index of the next frame read."""
        if self.start == 0:
            return 0
        if cap.set(cv2.CAP_PROP_POS_FRAMES, self.start) and int(cap.get(cv2.CAP_PROP_POS_FRAMES)) == self.start:
            return self.start
        cap.release()
        cap.open(str(self.path))
        index = 0
        while index < self.start and cap.grab():
            index += 1
        return index

    def _skip(self, index: int, what: str) -> None:
        self.corrupt += 1
        log.warning("camera '%s': %s could not be decoded, skipped", self.name, what)

    def describe(self) -> dict:
        return {"name": self.name, "video": str(self.path), "fps": self.fps, "frames": self.total_frames,
                "width": self.width, "height": self.height, "offset": self.offset, "stride": self.stride}


def open_sources(paths: Sequence[str], names: Optional[Sequence[str]] = None, *, stride: int = 1,
                 offsets: Optional[dict] = None, max_frames: Optional[int] = None,
                 default_fps: float = 25.0) -> list[VideoSource]:
    """Open and check every input (UserError naming the first bad one) before any work starts."""
    if not paths:
        raise UserError("no videos given; pass --videos cam1.mp4 [cam2.mp4 ...]")
    for p in paths:
        if not Path(p).exists():
            raise UserError(f"video not found: {p} (check the path given to --videos)")
    cams = camera_names(paths, names)
    offsets = dict(offsets or {})
    unknown = sorted(set(offsets) - set(cams))
    if unknown:
        raise UserError(f"video.offsets names camera {unknown[0]!r}, which is not one of: {', '.join(cams)}")
    return [VideoSource(p, n, offset=offsets.get(n, 0.0), stride=stride, max_frames=max_frames,
                        default_fps=default_fps) for p, n in zip(paths, cams)]


def sample_frames(path: Path, n: int) -> list[np.ndarray]:
    """Up to ``n`` BGR frames spread evenly over a video file or a folder of images."""
    if path.is_dir():
        files = sorted((p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTS), key=_natural_key)
        picks = np.unique(np.linspace(0, len(files) - 1, n).round().astype(int)) if files else []
        return [f for f in (cv2.imread(str(files[k])) for k in picks) if f is not None]
    cap = cv2.VideoCapture(str(path))
    try:
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        out = []
        for k in np.unique(np.linspace(0, max(count - 1, 0), n).round().astype(int)):
            cap.set(cv2.CAP_PROP_POS_FRAMES, int(k))
            ok, frame = cap.read()
            if ok and frame is not None:
                out.append(frame)
        return out
    finally:
        cap.release()

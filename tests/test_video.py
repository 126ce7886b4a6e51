"""VideoSource: frame folders and video files, fps/timestamps/offsets, stride, corrupt frames, bad inputs."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import shared_path
from core.errors import UserError
from pipeline.run.video import VideoSource, camera_name, camera_names, open_sources


def _frame(value: int, h: int = 48, w: int = 64) -> np.ndarray:
    img = np.zeros((h, w, 3), np.uint8)
    img[:] = (value * 10) % 250          # the frame's number is readable back from its pixels
    return img


def _value(img: np.ndarray) -> int:
    return int(round(float(img.mean()) / 10))


def make_folder(root: Path, n: int, fps: float | None = None) -> Path:
    img1 = root / "SEQ-01" / "img1"
    img1.mkdir(parents=True)
    for i in range(n):                   # 1..n without zero padding: natural order matters
        cv2.imwrite(str(img1 / f"{i + 1}.png"), _frame(i))
    if fps is not None:
        (root / "SEQ-01" / "seqinfo.ini").write_text(f"[Sequence]\nname=SEQ-01\nframeRate={fps}\n")
    return img1


def make_video(path: Path, n: int, fps: float = 5.0) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (64, 48))
    for i in range(n):
        writer.write(_frame(i))
    writer.release()
    return path


def test_folder_natural_order_stride_fps_offset(tmp_path):
    folder = make_folder(tmp_path, 12, fps=4)
    src = VideoSource(folder, "cam", offset=10.0, stride=3)
    frames = list(src)
    assert [f.index for f in frames] == [0, 3, 6, 9]
    assert [_value(f.image) for f in frames] == [0, 3, 6, 9]          # 10.png is after 9.png
    assert [f.time for f in frames] == [10.0, 10.75, 11.5, 12.25]     # offset + index / 4 fps
    assert src.fps == 4
    assert src.num_frames == 4
    assert src.corrupt == 0
    assert camera_name(folder) == "SEQ-01"


def test_folder_corrupt_frame_is_skipped_and_counted(tmp_path, caplog):
    folder = make_folder(tmp_path, 6)
    (folder / "3.png").write_bytes(b"not an image")
    src = VideoSource(folder, "cam", default_fps=25.0)
    frames = list(src)
    assert [f.index for f in frames] == [0, 1, 3, 4, 5]
    assert src.corrupt == 1
    assert src.fps == 25.0
    assert "could not be decoded" in caplog.text


def test_video_file_stride_and_max_frames(tmp_path):
    path = make_video(tmp_path / "walk.avi", 10, fps=5.0)
    src = VideoSource(path, camera_name(path), stride=3)
    frames = list(src)
    assert src.name == "walk"
    assert src.fps == pytest.approx(5.0)
    assert src.total_frames == 10
    assert [f.index for f in frames] == [0, 3, 6, 9]
    assert [_value(f.image) for f in frames] == [0, 3, 6, 9]
    assert [f.time for f in frames] == pytest.approx([0.0, 0.6, 1.2, 1.8])
    limited = VideoSource(path, "walk", max_frames=4)
    assert [f.index for f in limited] == [0, 1, 2, 3]
    assert limited.num_frames == 4


@pytest.mark.parametrize("kind, message", [
    ("missing", "video not found"), ("empty_file", "video file is empty"),
    ("text_file", "cannot read a frame"), ("empty_folder", "folder has no images"),
])
def test_bad_inputs_name_the_file_before_any_work(tmp_path, kind, message):
    good = make_video(tmp_path / "good.avi", 3)
    bad = tmp_path / f"bad_{kind}.mp4"
    if kind == "empty_file":
        bad.write_bytes(b"")
    elif kind == "text_file":
        bad.write_text("hello, I am not a video\n" * 50)
    elif kind == "empty_folder":
        bad = tmp_path / "bad_folder"
        bad.mkdir()
    with pytest.raises(UserError, match=message) as err:
        open_sources([str(good), str(bad)])
    assert bad.name in str(err.value)


def test_camera_names_checks():
    assert camera_names(["a/cam1.mp4", "b/cam2.mp4"]) == ["cam1", "cam2"]
    assert camera_names(["x.mp4", "y.mp4"], ["left", "right"]) == ["left", "right"]
    with pytest.raises(UserError, match="same camera name 'cam'"):
        camera_names(["a/cam.mp4", "b/cam.mp4"])
    with pytest.raises(UserError, match="one per video"):
        camera_names(["a.mp4", "b.mp4"], ["only"])
    with pytest.raises(UserError, match="not usable as a file name"):
        camera_names(["a.mp4"], ["bad/name"])


def test_offsets_must_name_known_cameras(tmp_path):
    path = make_video(tmp_path / "one.avi", 2)
    with pytest.raises(UserError, match="'two'"):
        open_sources([str(path)], offsets={"two": 1.0})
    (src,) = open_sources([str(path)], offsets={"one": 2.0})
    assert next(iter(src)).time == 2.0


def test_real_pets_video_properties():
    path = shared_path("data", "pets09-s2l1", "vtest.avi")
    src = VideoSource(path, "pets", max_frames=3, stride=2)
    frames = list(src)
    assert (src.width, src.height, src.fps, src.total_frames) == (768, 576, 10.0, 795)
    assert [f.index for f in frames] == [0, 2, 4]
    assert frames[0].image.shape == (576, 768, 3)
    assert src.describe()["frames"] == 795


# ---- variable frame rate (issue 32, D11) -------------------------------------------------------------------
VFR_TIMES = [i / 10 for i in range(20)] + [2.9 + i for i in range(20)]     # 10 frames/s, then 1 frame/s


def make_vfr_video(path: Path, times=VFR_TIMES) -> Path:
    """An MP4 whose frames carry the presentation times ``times`` (seconds, multiples of 1/30), made with
    PyAV (FFmpeg's libraries from PyPI); skips when PyAV is not installed."""
    av = pytest.importorskip("av", reason="PyAV makes the variable-frame-rate video (pip install av)")
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=30)          # time base 1/30 s
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i, t in enumerate(times):
            frame = av.VideoFrame.from_ndarray(_frame(i), format="bgr24")
            frame.pts = round(t * 30)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def test_variable_frame_rate_video_uses_the_container_times(tmp_path, caplog):
    from pipeline.tracklet import Tracklet

    path = make_vfr_video(tmp_path / "vfr.mp4")
    src = VideoSource(path, "cam", offset=100.0)
    with caplog.at_level("WARNING"):
        frames = list(src)
    assert [f.index for f in frames] == list(range(40)) and [_value(f.image) for f in frames[:3]] == [0, 1, 2]
    assert src.fps < 6                                     # OpenCV's average rate: index / fps is far off
    assert abs(frames[12].time - 12 / src.fps - 100.0) > 1.0
    assert frames[12].time == pytest.approx(100.0 + 1.2, abs=1e-3)                  # 1.2 s in the container
    assert [f.time for f in frames] == pytest.approx([100.0 + t for t in VFR_TIMES], abs=1e-3)
    assert src.time_of(12) == frames[12].time
    warnings = [r.getMessage() for r in caplog.records if "variable frame rate" in r.getMessage()]
    assert len(warnings) == 1 and str(path) in warnings[0]
    t = Tracklet(camera="cam", track_id=1, start_frame=12, end_frame=30, start_time=0.0, end_time=0.0, n_boxes=5)
    (moved,) = src.retime([t])
    assert (moved.start_time, moved.end_time) == (frames[12].time, frames[30].time)


def test_constant_frame_rate_times_stay_index_over_fps(tmp_path):
    """A constant-rate video keeps index / fps exactly (existing caches and outputs do not change)."""
    src = VideoSource(make_video(tmp_path / "cfr.avi", 30, fps=7.0), "cam", offset=3.0, stride=2)
    frames = list(src)
    assert [f.time for f in frames] == [3.0 + f.index / 7.0 for f in frames] and len(frames) == 15
    assert src.container_times == {}
    tracklets = [object()]
    assert src.retime(tracklets) is tracklets

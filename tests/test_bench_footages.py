"""The multi-camera bench's footage names: groups, and variants of a base footage's second camera."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

import bench.footages as bf


def _video(path: Path, frames: int = 6, size=(96, 64)) -> str:
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, size)
    rng = np.random.default_rng(0)
    for _ in range(frames):
        out.write(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
    out.release()
    return str(path)


def test_groups_expand_to_the_named_variants():
    assert bf.expand(["all"])[:6] == ["sample", "three-views", "epfl", "epfl~jitter-a", "epfl~jitter-b", "pets09"]
    assert [n for n in bf.expand(["all"]) if n.startswith("epfl~")] == bf.expand(["epfl-jitter"])
    assert bf.expand(["epfl-strong"]) == [f"epfl~{k}-strong" for k in bf.VARIANTS]
    assert len(bf.expand(["epfl-variants"])) == 2 * len(bf.VARIANTS)
    assert bf.expand(["strong", "sample~blur-strong"]) == [f"sample~{k}-strong" for k in bf.VARIANTS]


def test_an_epfl_variant_alters_only_the_second_camera_and_keeps_its_name(tmp_path, monkeypatch):
    c0, c1 = _video(tmp_path / "terrace_c0.mp4"), _video(tmp_path / "terrace_c1.mp4")
    monkeypatch.setattr(bf, "epfl", lambda: bf.Footage("epfl", (c0, c1), str(tmp_path / "gt")))
    fp = bf.footage("epfl~blur-strong", tmp_path / "bench")
    assert fp.videos[0] == c0 and fp.gt == str(tmp_path / "gt")
    altered = Path(fp.videos[1])
    assert altered.name == "terrace_c1.mp4" and altered.parent.name == "epfl_blur-strong"
    assert fp.reuse == {"terrace_c0": "epfl"}                     # the unaltered camera's stage is shared
    a, b = cv2.VideoCapture(c1), cv2.VideoCapture(str(altered))
    ok_a, fa = a.read()
    ok_b, fb = b.read()
    assert ok_a and ok_b and fa.shape == fb.shape
    assert cv2.Laplacian(fb, cv2.CV_64F).var() < 0.2 * cv2.Laplacian(fa, cv2.CV_64F).var()   # blurred


def test_a_jitter_rendition_is_the_second_camera_at_a_slight_gamma(tmp_path, monkeypatch):
    c0, c1 = _video(tmp_path / "terrace_c0.mp4"), _video(tmp_path / "terrace_c1.mp4")
    monkeypatch.setattr(bf, "epfl", lambda: bf.Footage("epfl", (c0, c1), str(tmp_path / "gt")))
    made = []
    monkeypatch.setattr(bf, "write_altered", lambda src, dst, kind, param: made.append((src, dst.name, kind, param)))
    for name in ("epfl~jitter-a", "epfl~jitter-b"):
        fp = bf.footage(name, tmp_path / "bench")
        assert fp.videos[0] == c0 and fp.reuse == {"terrace_c0": "epfl"}
    assert made == [(Path(c1), "terrace_c1.mp4", "gamma", 0.97), (Path(c1), "terrace_c1.mp4", "gamma", 1.03)]
    grey = np.full((4, 4, 3), 128, np.uint8)                   # gamma 0.97 / 1.03: 2-3 grey levels
    assert bf.alter(grey, "gamma", 0.97)[0, 0, 0] == 130 and bf.alter(grey, "gamma", 1.03)[0, 0, 0] == 125


def test_the_check_kinds_are_a_group_of_their_own_and_alter_as_named():
    assert bf.expand(["check"]) == ["sample~noise-strong", "sample~dark-strong", "sample~motion-strong",
                                    "sample~mono-strong"]
    assert bf.expand(["epfl-check"]) == ["epfl~noise-strong", "epfl~dark-strong", "epfl~motion-strong",
                                         "epfl~mono-strong"]
    assert not set(bf.expand(["check", "epfl-check"])) & set(bf.expand(["all", "epfl-variants"]))
    rng = np.random.default_rng(1)
    frame = rng.integers(40, 200, (64, 96, 3), dtype=np.uint8)
    noisy = bf.alter(frame, "noise", 12.0)
    assert np.array_equal(noisy, bf.alter(frame, "noise", 12.0))          # the same noise on every rerun
    assert 10 < np.std(noisy.astype(float) - frame) < 14
    dark = bf.alter(frame, "dark", 0.35).astype(float)
    assert abs(dark.mean() - 0.35 * frame.mean()) < 1.0
    stripes = np.zeros((8, 36, 3), np.uint8)
    stripes[:, ::2] = 255                                                 # vertical stripes vanish, rows stay
    moved = bf.alter(stripes, "motion", 9)
    assert np.ptp(moved[4, 8:28, 0]) < 40 and bf.alter(stripes.transpose(1, 0, 2), "motion", 9).std() > 100
    mono = bf.alter(frame, "mono", 1.0)                                   # three equal channels: the frame's grey
    assert mono.shape == frame.shape and (mono == mono[..., :1]).all()
    assert np.array_equal(mono[..., 0], cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))


@pytest.mark.parametrize("name", ["epfl~fog-strong", "epfl~blur-huge", "pets09~blur-strong", "sample~jitter-a"])
def test_unknown_variants_are_refused_with_the_choices(tmp_path, name):
    with pytest.raises(ValueError, match="BASE~KIND-STRENGTH"):
        bf.footage(name, tmp_path)


def test_a_footage_at_every_kth_frame_has_that_stride_and_no_borrowed_cache():
    low = bf.expand(["low-fps"])
    assert "pets09@2" in low and "epfl@8" in low and not any("@" in n for n in bf.expand(["all"]))
    base, strided = bf.footage("pets09", Path(".")), bf.footage("pets09@2", Path("."))
    assert (strided.name, strided.stride, strided.videos, strided.gt) == ("pets09@2", 2, base.videos, base.gt)
    assert base.stride == 1 and strided.reuse == {}      # a cache made at every frame is not this footage's
    for name in ("pets09@0", "pets09@x"):
        with pytest.raises(ValueError, match="stride"):
            bf.footage(name, Path("."))


def test_pets09_renditions_alter_its_one_camera_and_nothing_else(tmp_path, monkeypatch):
    cam = _video(tmp_path / "vtest.avi")
    monkeypatch.setattr(bf, "pets09", lambda: bf.Footage("pets09", (cam,), str(tmp_path)))
    fp = bf.footage("pets09~jitter-b@2", tmp_path / "bench")
    altered = Path(fp.videos[0])
    assert len(fp.videos) == 1 and altered.name == "vtest.avi" and altered.parent.name == "pets09_jitter-b"
    assert fp.gt == str(tmp_path) and fp.stride == 2 and fp.reuse == {}
    a, b = cv2.VideoCapture(cam), cv2.VideoCapture(str(altered))
    ok_a, fa = a.read()
    ok_b, fb = b.read()
    assert ok_a and ok_b and fa.shape == fb.shape and fb.mean() < fa.mean()     # gamma 1.03: a touch darker
    with pytest.raises(ValueError, match="BASE~KIND-STRENGTH"):
        bf.footage("pets09~blur-strong", tmp_path / "bench")                  # one camera: no second to alter

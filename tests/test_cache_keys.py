"""Stage cache keys follow the model files a run used: a checkpoint or detector rewritten in place
(e.g. a new reid/weights/default.pt) must not reuse tracks computed with the old one."""
import dataclasses
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline.runfolder.cache import model_fingerprint
from pipeline.config import RunConfig
from pipeline.run.runner import stage_keys
from pipeline.run.video import VideoSource


def _rewrite(path, data: bytes):
    """Write ``data`` and move the modification time on, as a later export would."""
    path.write_bytes(data)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def test_model_fingerprint_follows_file_and_companions(tmp_path):
    xml, bin_, other = tmp_path / "m.xml", tmp_path / "m.bin", tmp_path / "other.txt"
    xml.write_text("<net/>")
    bin_.write_bytes(b"\0" * 8)
    other.write_text("unrelated")
    before = model_fingerprint(str(xml))
    assert [Path(f["path"]).name for f in before["files"]] == ["m.bin", "m.xml"]
    assert model_fingerprint(str(xml)) == before
    _rewrite(other, b"changed")
    assert model_fingerprint(str(xml)) == before                 # not a companion of m.xml
    _rewrite(bin_, b"\1" * 8)                                     # same size, new weights
    assert model_fingerprint(str(xml)) != before


def test_model_fingerprint_of_folders_names_and_default(tmp_path):
    sub = tmp_path / "model" / "FP16"
    sub.mkdir(parents=True)
    (sub / "net.xml").write_text("<net/>")
    before = model_fingerprint(str(tmp_path / "model"))
    assert len(before["files"]) == 1                              # files in subfolders count
    _rewrite(sub / "net.xml", b"<net2/>")
    assert model_fingerprint(str(tmp_path / "model")) != before
    assert model_fingerprint(str(tmp_path / "yolo11n.pt")) is None        # a name ultralytics downloads
    assert model_fingerprint("none") is None
    default = model_fingerprint("default")
    assert default is not None
    assert default["path"].endswith(os.path.join("reid", "weights", "default.pt"))


@pytest.fixture
def src(tmp_path):
    """A two-frame camera (a folder of images)."""
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(2):
        cv2.imwrite(str(frames / f"{i:04d}.png"), np.full((32, 32, 3), 40 * i, np.uint8))
    return VideoSource(frames, "cam")


def test_stage_keys_change_with_model_files(tmp_path, src):
    ckpt, det = tmp_path / "reid.pt", tmp_path / "det.tflite"
    ckpt.write_bytes(b"a" * 16)
    det.write_bytes(b"d" * 16)
    base = RunConfig()
    cfg = dataclasses.replace(base, reid=dataclasses.replace(base.reid, checkpoint=str(ckpt)),
                              detector=dataclasses.replace(base.detector, model=str(det)))
    d0, t0 = stage_keys(src, cfg, None)
    assert stage_keys(src, cfg, None) == (d0, t0)
    _rewrite(ckpt, b"b" * 16)
    d1, t1 = stage_keys(src, cfg, None)
    assert d1 == d0
    assert t1 != t0  # detections stay valid, tracks do not
    _rewrite(det, b"e" * 16)
    d2, t2 = stage_keys(src, cfg, None)
    assert d2 != d1
    assert t2 != t1


def test_released_detector_name_keeps_its_key_after_the_download(tmp_path, src, monkeypatch):
    """ultralytics downloads yolov8n.pt into the working folder on first use; a run interrupted after
    that must still find its detections (the name, not the new file, identifies the weights)."""
    monkeypatch.chdir(tmp_path)
    base = RunConfig()
    cfg = dataclasses.replace(base, detector=dataclasses.replace(base.detector, model="yolov8n.pt"))
    before = stage_keys(src, cfg, None)
    (tmp_path / "yolov8n.pt").write_bytes(b"weights")
    assert stage_keys(src, cfg, None) == before

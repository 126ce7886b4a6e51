"""The default ReID model on Intel's 0277 IR trunk: the IR's embedding reproduced, map reduction,
the shipped checkpoint, and `mcmt train-reid` on cached trunk maps (real crops, skips without ../shared)."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from conftest import shared_path
from reid import ReIDEncoder
from reid.ir_trunk import IRTrunk, reduce_map, resolve_ir_path

IR_PARTS = ("models", "openvino", "person-reidentification-retail-0277", "FP16", "person-reidentification-retail-0277.xml")


def _market_crops(n=24):
    folder = shared_path("data", "market1501-mini", "bounding_box_test")
    return [cv2.imread(str(p)) for p in sorted(folder.glob("*.jpg"))[:n]]


def test_reduce_map_halves_give_the_whole_map_pooling():
    fmap = np.random.default_rng(0).normal(size=(3, 8, 16, 8)).astype(np.float32)
    avg, mx = reduce_map(fmap, "avg"), reduce_map(fmap, "max")
    assert avg.shape == (3, 8, 2, 1)
    np.testing.assert_allclose(avg.mean(axis=(2, 3)), fmap.mean(axis=(2, 3)), atol=1e-5)
    np.testing.assert_allclose(avg[:, :, 0, 0], fmap[:, :, :8].mean(axis=(2, 3)), atol=1e-5)
    np.testing.assert_allclose(mx.max(axis=(2, 3)), fmap.max(axis=(2, 3)))
    np.testing.assert_allclose(mx[:, :, 1, 0], fmap[:, :, 8:].max(axis=(2, 3)))


def test_trunk_finds_the_last_feature_map_of_the_ir_from_a_path_or_the_checkpoint():
    ir = shared_path(*IR_PARTS)
    trunk = IRTrunk(ir, num_threads=1)
    emb, fmap = trunk(np.zeros((2, 256, 128, 3), np.uint8))
    assert emb.shape == (2, 256) and fmap.shape == (2, 512, 16, 8)
    assert resolve_ir_path(ir.name, near=ir.parent) == ir.resolve()
    from reid.checkpoint import load_checkpoint
    from reid.encoder import DEFAULT_CHECKPOINT

    files = load_checkpoint(DEFAULT_CHECKPOINT)[1]["trunk_files"]          # the shipped IR, no file needed
    batch = np.random.default_rng(0).integers(0, 255, (2, 256, 128, 3), dtype=np.uint8)
    np.testing.assert_allclose(IRTrunk(files, num_threads=1)(batch)[0], trunk(batch)[0], atol=1e-5)


def test_the_trunk_runs_in_float32_on_every_cpu():
    """OpenVINO infers in bfloat16 by default on CPUs with bfloat16 units (AMD Zen 4, recent Xeons), which moved
    the default's embedding by up to 0.05 and the bench's EPFL rendition by 5 points between two machines: the
    trunk and any external IR are compiled with float32 inference."""
    from reid.external import OpenVINOBackend

    trunk = IRTrunk(shared_path(*IR_PARTS), num_threads=1)
    assert str(trunk.compiled.get_property("INFERENCE_PRECISION_HINT")) in ("f32", "float32", "<Type: 'float32'>")
    ext = OpenVINOBackend(shared_path(*IR_PARTS), num_threads=1)
    assert str(ext.compiled.get_property("INFERENCE_PRECISION_HINT")) in ("f32", "float32", "<Type: 'float32'>")
    # and unpinned, as the detector (tests/test_detector.py): pinned, the two shared one core
    assert trunk.compiled.get_property("ENABLE_CPU_PINNING") is False
    assert ext.compiled.get_property("ENABLE_CPU_PINNING") is False


def test_default_reproduces_the_ir_embedding_on_real_crops():
    """The default's float trunk is the IR itself: its `ir` feature equals Intel 0277's own embedding; the
    int8 copy it runs by default stays close to it."""
    ref_xml = shared_path("models", "openvino", "person-reidentification-retail-0277", "FP16",
                          "person-reidentification-retail-0277.xml")
    crops = _market_crops()
    ref, _ = ReIDEncoder.from_checkpoint(ref_xml, num_threads=1).embed(crops)
    from reid.checkpoint import load_checkpoint
    from reid.encoder import DEFAULT_CHECKPOINT

    model, meta = load_checkpoint(DEFAULT_CHECKPOINT)
    enc = ReIDEncoder.from_model(model, meta, num_threads=1, embedding="ir", precision="fp32")
    got, attrs = enc.embed(crops)
    cos = (ref * got).sum(axis=1)
    assert cos.min() >= 0.999, cos.min()
    quant, _ = ReIDEncoder.from_model(model, meta, num_threads=1, embedding="ir").embed(crops)   # int8 (shipped)
    qcos = (ref * quant).sum(axis=1)
    assert qcos.mean() >= 0.99 and qcos.min() >= 0.95, (qcos.mean(), qcos.min())
    assert attrs.shape == (len(crops), len(model.attribute_names)) and 0 <= attrs.min() <= attrs.max() <= 1


def test_shipped_default_gives_its_configured_feature_and_attributes():
    enc = ReIDEncoder.from_checkpoint("default", num_threads=1)
    ext = enc.backend.model.config["external_trunk"]
    feats, attrs = enc.embed(_market_crops(4))
    assert feats.shape == (4, enc.dim) and np.allclose(np.linalg.norm(feats, axis=1), 1, atol=1e-5)
    assert enc.backend.mode == ext["embedding"] and attrs.shape[1] == 33


def _config(tmp_path, **loss) -> Path:
    cfg = {"model": {"backbone": "ir_map", "trunk": str(shared_path(*IR_PARTS)), "trunk_embedding": "concat", "feat_dim": 32,
                     "trunk_cache": str(tmp_path / "cache"), "pretrained": "none", "pooling": "avg",
                     "input_size": [256, 128]},
           "data": {"train": [{"name": "market1501", "root": "market1501-mini"}], "num_ids": 8,
                    "num_instances": 2, "workers": 0, "flip": False},
           "loss": {"attr_weighting": "frequency", **loss}, "optim": {"name": "adam", "lr": 1e-3},
           "schedule": {"epochs": 2, "decay": "none"}, "eval": {"enabled": False},
           "device": "cpu", "amp": False}
    path = tmp_path / "cfg.yaml"
    path.write_text(json.dumps(cfg))
    return path


def test_train_reid_on_cached_trunk_maps_resumes_and_keeps_ablation_switches(tmp_path):
    from pipeline.cli import main as cli_main
    from reid.checkpoint import load_checkpoint

    data = shared_path("data")
    cfg = _config(tmp_path)
    out = tmp_path / "run"
    assert cli_main(["train-reid", "--config", str(cfg), "--data-root", str(data), "--out", str(out),
                     "--no-progress", "--set", "schedule.epochs=1"]) == 0
    assert len(list((tmp_path / "cache").rglob("*.npz"))) == 1      # one chunk, one view, cached
    assert cli_main(["train-reid", "--resume", str(out / "last.pt"), "--no-progress",
                     "--set", "schedule.epochs=2"]) == 0
    model, meta = load_checkpoint(out / "last.pt")
    assert meta["extra"]["epoch"] == 2 and model.config["external_trunk"]["channels"] == 512
    enc = ReIDEncoder.from_model(model, meta, num_threads=1)
    assert enc.dim == 256 + 5 * 32
    # the exported checkpoint carries the IR: one file, loadable without the IR beside it
    assert cli_main(["export-reid", "--checkpoint", str(out / "last.pt"), "--out", str(tmp_path / "slim.pt")]) == 0
    files = load_checkpoint(tmp_path / "slim.pt")[1]["trunk_files"]
    assert files["xml"] == shared_path(*IR_PARTS).read_text() and len(files["bin"]) > 1_000_000
    crops = np.zeros((2, 256, 128, 3), np.uint8)
    np.testing.assert_allclose(ReIDEncoder.from_checkpoint(tmp_path / "slim.pt", num_threads=1).embed(list(crops))[0],
                               enc.embed(list(crops))[0], atol=1e-2)
    # the paper's ablations (woID / woAttr) on the same cache
    for switch in ("use_id_loss", "use_attr_loss"):
        abl = _config(tmp_path, **{switch: False})
        assert cli_main(["train-reid", "--config", str(abl), "--data-root", str(data), "--out",
                         str(tmp_path / switch), "--no-progress", "--set", "schedule.epochs=1"]) == 0
    hist = json.loads((tmp_path / "use_attr_loss" / "history.json").read_text())["history"]
    assert hist[0]["attr"] == 0.0 and torch.isfinite(torch.tensor(hist[0]["loss"]))

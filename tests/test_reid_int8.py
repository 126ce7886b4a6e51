"""The int8 copy of an IR trunk (reid/quantize.py, reid/ir_trunk.py): which IR runs, the checkpoint that
carries both, the int8 embedding against the float IR's on real Market-1501 crops never used for
calibration, the feature map behind a FakeQuantize, and the MVN rewrite of the AVX2 emulation (skips
without ../shared; the quantization itself needs nncf, the ``quantize`` extra)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from conftest import shared_path
from core.errors import UserError
from reid.ir_trunk import IRTrunk, decompose_mvn, emulating_avx2, pick_trunk_files

IR_PARTS = ("models", "openvino", "person-reidentification-retail-0277", "FP16", "person-reidentification-retail-0277.xml")


def _held_out_market_crops():
    """Market-1501's test identities: calibration uses MARS and Market-1501's training crops only."""
    root = shared_path("data", "market1501-mini")
    files = sorted((root / "bounding_box_test").glob("*.jpg")) + sorted((root / "query").glob("*.jpg"))
    return [cv2.imread(str(p)) for p in files]


def _batch(crops):
    return np.stack([cv2.resize(c, (128, 256), interpolation=cv2.INTER_LINEAR) for c in crops])


def _default():
    from reid.checkpoint import load_checkpoint
    from reid.encoder import DEFAULT_CHECKPOINT

    return load_checkpoint(DEFAULT_CHECKPOINT)


def test_pick_trunk_files_prefers_int8_when_carried():
    f32, i8 = {"name": "a.xml"}, {"name": "a-int8.xml"}
    assert pick_trunk_files(f32, i8, "auto") == (i8, "int8")
    assert pick_trunk_files(f32, None, "auto") == (f32, "fp32")
    assert pick_trunk_files(f32, i8, "fp32") == (f32, "fp32")
    assert pick_trunk_files(f32, i8, "int8") == (i8, "int8")
    with pytest.raises(UserError, match="no int8 trunk"):
        pick_trunk_files(f32, None, "int8")
    with pytest.raises(UserError, match="precision"):
        pick_trunk_files(f32, i8, "fp16")


def test_emulation_is_read_from_onednn_max_cpu_isa(monkeypatch):
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    assert not emulating_avx2()
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert emulating_avx2()
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "avx512_core_vnni")
    assert not emulating_avx2()


def test_checkpoint_carries_the_int8_trunk_and_the_encoder_runs_it(tmp_path):
    """Plumbing, without nncf: a slim checkpoint given ``int8_files`` keeps them (and keeps them when
    slimmed again); ``auto`` runs them, ``fp32`` the IR. Stand-in int8 files: the float IR renamed."""
    from reid import ReIDEncoder
    from reid.checkpoint import load_checkpoint, slim_checkpoint
    from reid.encoder import DEFAULT_CHECKPOINT

    _, meta = _default()
    fake = {**meta["trunk_files"], "name": "stand-in-int8.xml", "quantization": {"tool": "test"}}
    slim_checkpoint(DEFAULT_CHECKPOINT, tmp_path / "a.pt", int8_files=fake)
    slim_checkpoint(tmp_path / "a.pt", tmp_path / "b.pt")
    got = load_checkpoint(tmp_path / "b.pt")[1]["trunk_files_int8"]
    assert got["name"] == "stand-in-int8.xml" and got["bin"] == meta["trunk_files"]["bin"]
    assert got["quantization"] == {"tool": "test"}
    auto = ReIDEncoder.from_checkpoint(tmp_path / "b.pt", num_threads=1)
    f32 = ReIDEncoder.from_checkpoint(tmp_path / "b.pt", num_threads=1, precision="fp32")
    assert (auto.backend.precision, auto.backend.trunk.path.name) == ("int8", "stand-in-int8.xml")
    assert f32.backend.precision == "fp32"
    crops = _held_out_market_crops()[:3]
    np.testing.assert_allclose(auto.embed(crops)[0], f32.embed(crops)[0], atol=1e-5)   # the same IR here


def test_mvn_rewrite_computes_the_same_embedding():
    import openvino as ov

    from core.device import openvino_config

    xml = shared_path(*IR_PARTS)
    core = ov.Core()
    plain, rewritten = core.read_model(str(xml)), core.read_model(str(xml))
    assert decompose_mvn(rewritten) == 14 and decompose_mvn(rewritten) == 0
    assert not [o for o in rewritten.get_ordered_ops() if o.get_type_name() == "MVN"]
    x = np.ascontiguousarray(_batch(_held_out_market_crops()[:2]).astype(np.float32).transpose(0, 3, 1, 2))
    outs = []
    for m in (plain, rewritten):
        m.reshape([2, 3, 256, 128])
        outs.append(core.compile_model(m, "CPU", openvino_config("CPU", 1))(x)[0])
    np.testing.assert_allclose(outs[1], outs[0], atol=1e-4 * np.abs(outs[0]).max())


@pytest.fixture(scope="module")
def int8_files():
    """The shipped default's IR quantized as `mcmt export-reid --int8` does (fewer MARS frames: faster)."""
    pytest.importorskip("nncf")
    from reid.quantize import calibration_crops, quantize_ir

    _, meta = _default()
    return quantize_ir(meta["trunk_files"], calibration_crops(shared_path("data"), n_mars=100))


@pytest.mark.slow
def test_int8_trunk_reproduces_the_float_embedding_on_held_out_market_crops(int8_files):
    from reid import ReIDEncoder

    model, meta = _default()
    meta = {**meta, "trunk_files_int8": int8_files}
    crops = _held_out_market_crops()
    f32 = ReIDEncoder.from_model(model, meta, num_threads=1, precision="fp32")
    i8 = ReIDEncoder.from_model(model, meta, num_threads=1)            # auto: the int8 trunk
    assert (f32.backend.precision, i8.backend.precision) == ("fp32", "int8")
    (a, attr_a), (b, attr_b) = f32.embed(crops), i8.embed(crops)
    cos = (a * b).sum(axis=1)
    assert cos.mean() >= 0.99 and np.percentile(cos, 5) >= 0.97, (cos.mean(), np.percentile(cos, 5))
    assert np.abs(attr_a - attr_b).mean() < 0.03
    # the same nearest neighbour for most crops (16 identities, query and gallery together)
    nn_a = np.argsort(-(a @ a.T), axis=1)[:, 1]
    nn_b = np.argsort(-(b @ b.T), axis=1)[:, 1]
    assert (nn_a == nn_b).mean() >= 0.85
    q = int8_files["quantization"]
    assert "type MVN" in q["kept_float"] and q["calibration_crops"] == 132


@pytest.mark.slow
def test_int8_trunk_gives_the_float_feature_map_behind_its_fake_quantize(int8_files):
    _, meta = _default()
    assert "FakeQuantize" in int8_files["xml"]
    trunk = IRTrunk(int8_files, num_threads=1)
    batch = _batch(_held_out_market_crops()[:4])
    emb, fmap = trunk(batch)
    assert emb.shape == (4, 256) and fmap.shape == (4, 512, 16, 8)
    _, ref_map = IRTrunk(meta["trunk_files"], num_threads=1)(batch)
    rel = np.abs(fmap - ref_map).mean() / np.abs(ref_map).mean()
    assert rel < 0.2, rel

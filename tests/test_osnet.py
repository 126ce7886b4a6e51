"""OSNet written from the paper, its ONNX weight loader and its place in the multi-task network.

The reference is torchreid's OSNet x0.25 (MSMT17) exported to ONNX in ../shared, run through
onnxruntime on real Market-1501 crops; tests that need it skip when the folder is absent.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import shared_path
from core.errors import UserError
from reid.backbones import build_backbone
from reid.model import ReIDInference, ReIDTrainOutput, build_model
from reid.osnet import OSNet, osnet_x0_25, osnet_x1_0
from reid.osnet_weights import calibrate_batchnorm, calibration_images, load_onnx_weights, scope_to_module

ONNX = ("models", "osnet_x0_25_msmt17.onnx")
SIZE = (256, 128)


@pytest.fixture(scope="module")
def onnx_path():
    return shared_path(*ONNX)


@pytest.fixture(scope="module")
def crops():
    """(N,3,256,128) ImageNet-normalised RGB batch of real Market-1501 crops (several identities)."""
    x = calibration_images(shared_path("data", "market1501-mini"), SIZE, limit=24)
    assert x is not None
    assert x.shape == (24, 3, *SIZE)
    return x


def _onnx_embeddings(path, x: torch.Tensor) -> np.ndarray:
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


# ---- the architecture ----------------------------------------------------------------------------
def test_structure_and_shapes():
    net = osnet_x0_25().eval()
    assert net.conv2[0].conv2d[3].conv2.groups == 16            # stream 4: depthwise 3x3, 16 channels
    assert net.conv2[0].gate.fc1.out_channels == 1               # gate hidden size = 16 // 16
    assert isinstance(net.conv2[2][1], torch.nn.AvgPool2d)
    assert len(net.conv4) == 2  # no transition in conv4
    assert net.conv2[0].downsample is not None
    assert net.conv2[1].downsample is None
    with torch.no_grad():
        assert net.feature_maps(torch.zeros(2, 3, *SIZE)).shape == (2, 128, 16, 8)   # output stride 16
        assert net(torch.zeros(2, 3, *SIZE)).shape == (2, 512)
    assert osnet_x1_0().conv5.conv.out_channels == 512
    # the four streams share one gate: a stream's output scales by the same per-channel rule
    gate = net.conv2[0].gate
    y = torch.rand(1, 16, 8, 4)
    assert torch.allclose(gate(y), y * torch.sigmoid(gate.fc2(torch.relu(gate.fc1(y.mean((2, 3), keepdim=True))))))
    with pytest.raises(ValueError, match="valid: x1_0"):
        OSNet("x0_5")


def test_scope_names_map_to_modules():
    assert scope_to_module("/conv2/conv2.0/conv2b/conv2b.1/conv2/Conv") == "conv2.0.conv2b.1.conv2"
    assert scope_to_module("/conv3/conv3.2/conv3.2.0/conv/Conv") == "conv3.2.0.conv"
    assert scope_to_module("/conv1/conv/Conv") == "conv1.conv"


# ---- (a) the converted network reproduces the ONNX model --------------------------------------
def test_converted_osnet_matches_onnxruntime(onnx_path, crops):
    ref = _onnx_embeddings(onnx_path, crops)                      # (N, 512)
    net = load_onnx_weights(osnet_x0_25(), onnx_path).eval()
    with torch.no_grad():
        out = net(crops).numpy()
    assert out.shape == ref.shape == (len(crops), 512)
    assert np.abs(out - ref).max() < 1e-4 * np.abs(ref).max()
    assert _cosine(out, ref).min() > 0.9999
    # folded batch norms became identity plus bias
    bn = net.conv2[0].conv2a.bn
    assert torch.all(bn.weight == 1)
    assert torch.all(bn.running_mean == 0)


def test_batchnorm_calibration_keeps_eval_and_fixes_train_mode(onnx_path, crops):
    """Calibrated statistics: eval output unchanged; on the calibration batch itself, training mode
    (batch statistics) computes what eval mode does."""
    net = load_onnx_weights(osnet_x0_25(), onnx_path).eval()
    with torch.no_grad():
        before = net.feature_maps(crops)
    calibrate_batchnorm(net, crops)
    with torch.no_grad():
        after = net.feature_maps(crops)
        train_mode = net.train().feature_maps(crops)
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-4 * before.abs().max().item())
    assert not net.conv1.bn.running_var.allclose(torch.ones(16))
    cos = torch.nn.functional.cosine_similarity(train_mode.flatten(1), before.flatten(1))
    assert cos.min() > 0.999


# ---- (b) the multi-task network on OSNet -------------------------------------------------------
def test_multitask_osnet_msmt17_forward(onnx_path, crops):
    model = build_model("osnet_x0_25", num_ids=6, feat_dim=32, pretrained="msmt17", input_size=SIZE)
    x = crops[:8]
    with torch.no_grad():
        g_map, p_map = model.eval().feature_maps(x)
    assert g_map.shape == (8, 128, SIZE[0] // 32, SIZE[1] // 32)
    assert p_map.shape == (8, 128, SIZE[0] // 16, SIZE[1] // 16)   # part map taller than the global one
    # the part branch runs conv4.1 + conv5 exactly as the pretrained network does
    ref = load_onnx_weights(osnet_x0_25(), onnx_path).eval()
    with torch.no_grad():
        torch.testing.assert_close(p_map, ref.feature_maps(x), rtol=1e-4, atol=1e-4)
    params = lambda m: {p.data_ptr() for p in m.parameters()}      # noqa: E731
    assert not (params(model.global_branch) & params(model.part_branch))
    torch.testing.assert_close(model.global_branch.conv5.conv.weight, model.part_branch.conv5.conv.weight)
    out = model.train()(x)
    assert isinstance(out, ReIDTrainOutput)
    assert [tuple(f.shape) for f in out[:5]] == [(8, 32)] * 5
    assert [tuple(t.shape) for t in out.id_logits] == [(8, 6)] * 3
    out.f_vp.sum().backward()
    assert model.trunk.conv1.conv.weight.grad is not None
    with torch.no_grad():
        inf = model.eval()(x)
    assert isinstance(inf, ReIDInference)
    assert inf.embedding.shape == (8, 5 * 32)
    assert torch.isfinite(inf.embedding).all()


def test_untrained_avg_pooled_osnet_features_are_the_pretrained_ones(onnx_path, crops):
    """With average pooling and feat_dim = OSNet's 128 channels, the untrained multi-task network
    starts from the ReID network it was initialised with: identity FC features, and a global map
    whose average is the pretrained one (the branch's 2x2 pool comes after conv5)."""
    model = build_model("osnet_x0_25", num_ids=0, feat_dim=128, pretrained="msmt17", input_size=SIZE,
                        pooling="avg").eval()
    assert model.config["pooling"] == "avg"
    ref = load_onnx_weights(osnet_x0_25(), onnx_path).eval()
    x = crops[:8]
    with torch.no_grad():
        f = model.features(x)
        pooled = ref.feature_maps(x).mean((2, 3))
        upper = ref.feature_maps(x)[:, :, : SIZE[0] // 32].mean((2, 3))
    for name in ("f_ig", "f_vg", "f_vp"):
        torch.testing.assert_close(f[name], pooled, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(f["f_iu"], upper, rtol=1e-4, atol=1e-4)
    with pytest.raises(UserError, match="pooling"):
        build_model("osnet_x0_25", feat_dim=8, pretrained="none", pooling="median")
    assert "pooling" not in build_model("osnet_x0_25", feat_dim=8, pretrained="none").config   # max: unchanged


def test_multitask_osnet_random_and_torchreid_names(tmp_path):
    model = build_model("osnet_x1_0", num_ids=0, feat_dim=8, pretrained="none", input_size=SIZE)
    names = set(model.state_dict())
    assert {"trunk.conv1.conv.weight", "trunk.conv4.0.gate.fc1.weight", "global_branch.conv4.1.conv3.bn.bias",
            "part_branch.conv5.conv.weight"} <= names
    # a torchreid-style state dict (with its classifier) loads by name into the plain backbone
    net = osnet_x1_0()
    state = {**net.state_dict(), "classifier.weight": torch.zeros(10, 512), "classifier.bias": torch.zeros(10)}
    torch.save(state, tmp_path / "osnet_x1_0.pth")
    parts = build_backbone("osnet_x1_0", tmp_path / "osnet_x1_0.pth")
    torch.testing.assert_close(parts.trunk.conv1.conv.weight, net.conv1.conv.weight)
    torch.testing.assert_close(parts.branch.conv5.conv.weight, net.conv5.conv.weight)


# ---- (c) clear errors ---------------------------------------------------------------------------
def test_missing_onnx_and_bad_choices(tmp_path, monkeypatch):
    with pytest.raises(UserError, match="not found"):
        load_onnx_weights(osnet_x0_25(), tmp_path / "missing.onnx")
    with pytest.raises(UserError, match="not found"):
        build_backbone("osnet_x0_25", tmp_path / "missing.onnx")
    monkeypatch.setenv("MCMT_SHARED", str(tmp_path))
    with pytest.raises(UserError, match="MCMT_SHARED"):
        build_backbone("osnet_x0_25", "msmt17")
    with pytest.raises(UserError, match="no offline ImageNet"):
        build_backbone("osnet_x0_25", "imagenet")
    with pytest.raises(UserError, match="osnet_x0_25 only"):
        build_backbone("osnet_x1_0", "msmt17")


def test_unmatched_onnx_tensors_are_listed(onnx_path, tmp_path):
    onnx = pytest.importorskip("onnx")
    with pytest.raises(UserError, match=r"shape differences: \[.*conv1\.conv\.weight \(16, 3, 7, 7\) vs \(64"):
        load_onnx_weights(osnet_x1_0(), onnx_path)                # wrong width
    model = onnx.load(str(onnx_path))
    next(t for t in model.graph.initializer if t.name == "fc.0.bias").name = "head.bias"
    bad = tmp_path / "renamed.onnx"
    onnx.save(model, str(bad))
    with pytest.raises(UserError, match=r"unmatched ONNX tensors: \[head\.bias\].*without a value: \[fc\.0\.bias\]"):
        load_onnx_weights(osnet_x0_25(), bad)

"""ReIDEncoder: our checkpoints, external OpenVINO / ONNX models, preprocessing, real-data sanity."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from conftest import shared_path
from core.errors import UserError
from reid import ReIDEncoder
from reid.checkpoint import save_checkpoint
from reid.model import build_model
from reid.preprocess import Preprocess, normalize_numpy, resize_crops
from reid.schema import AttributeGroup, AttributeSchema

SCHEMA = AttributeSchema("toy", (AttributeGroup("female", "global"),
                                 AttributeGroup("up_color", "upper", ("white", "red", "blue"))))
SIZE = (64, 32)


def _crops(n, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (int(rng.integers(20, 120)), int(rng.integers(10, 60)), 3), dtype=np.uint8)
            for _ in range(n)]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = build_model("resnet18", num_ids=3, schema=SCHEMA, feat_dim=8, pretrained="none", input_size=SIZE)
    path = tmp_path_factory.mktemp("ckpt") / "toy.pt"
    save_checkpoint(path, model)
    return path, model


def test_preprocess_channel_order_and_normalisation():
    blue = np.zeros((10, 6, 3), np.uint8)
    blue[..., 0] = 255                                           # BGR blue
    rgb = resize_crops([blue], (8, 4), rgb=True)
    assert rgb.shape == (1, 8, 4, 3)
    assert (rgb[..., 2] == 255).all()
    assert (rgb[..., 0] == 0).all()
    assert (resize_crops([blue], (8, 4), rgb=False)[..., 0] == 255).all()
    pp = Preprocess((8, 4), True, (0.5, 0.25, 0.0), (0.5, 0.25, 1.0))
    x = normalize_numpy(rgb, pp)
    assert x.shape == (1, 3, 8, 4)
    np.testing.assert_allclose(x[0, :, 0, 0], [(0 - 0.5) / 0.5, (0 - 0.25) / 0.25, 1.0], rtol=1e-6)
    gray = np.full((5, 5), 7, np.uint8)
    assert (resize_crops([gray], (4, 4), rgb=True) == 7).all()
    with pytest.raises(ValueError, match="crop 1"):
        resize_crops([gray, np.zeros((0, 5, 3), np.uint8)], (4, 4), rgb=True)


def test_our_checkpoint_matches_manual_pipeline(checkpoint):
    path, model = checkpoint
    enc = ReIDEncoder.from_checkpoint(path)
    assert enc.dim == 40
    assert enc.attribute_names == SCHEMA.output_names
    assert enc.input_size == SIZE
    crops = _crops(5)
    feats, attrs = enc.embed(crops)
    assert feats.dtype == np.float32
    assert attrs.dtype == np.float32
    assert feats.shape == (5, 40)
    assert attrs.shape == (5, SCHEMA.num_outputs)
    np.testing.assert_allclose(np.linalg.norm(feats, axis=1), 1.0, rtol=1e-5)
    # by hand: resize (h, w) = SIZE, BGR -> RGB, ImageNet normalisation, eval forward, L2 normalise
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    x = np.stack([(cv2.resize(c, (SIZE[1], SIZE[0]), interpolation=cv2.INTER_LINEAR)[:, :, ::-1] / 255.0 - mean) / std
                  for c in crops]).transpose(0, 3, 1, 2)
    with torch.no_grad():
        ref = model.eval()(torch.from_numpy(x).float())
    emb = ref.embedding.numpy()
    np.testing.assert_allclose(feats, emb / np.linalg.norm(emb, axis=1, keepdims=True), atol=2e-5)
    np.testing.assert_allclose(attrs, ref.attributes.numpy(), atol=2e-5)
    np.testing.assert_allclose(attrs[:, 1:4].sum(1), 1.0, rtol=1e-5)   # softmax group


def test_batching_empty_and_from_model(checkpoint):
    path, model = checkpoint
    crops = _crops(7, seed=1)
    big = ReIDEncoder.from_checkpoint(path, batch_size=32).embed(crops)
    small = ReIDEncoder.from_checkpoint(path, batch_size=3).embed(crops)
    np.testing.assert_allclose(big[0], small[0], atol=1e-5)
    feats, attrs = ReIDEncoder.from_checkpoint(path).embed([])
    assert feats.shape == (0, 40)
    assert attrs.shape == (0, SCHEMA.num_outputs)
    model.train()
    enc = ReIDEncoder.from_model(model)
    np.testing.assert_allclose(enc.embed(crops)[0], big[0], atol=1e-5)
    assert model.training                                   # the borrowed model's mode is restored


def test_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        ReIDEncoder.from_checkpoint(tmp_path / "nope.pt")
    (tmp_path / "model.h5").write_bytes(b"x")
    with pytest.raises(UserError, match="unknown ReID model type"):
        ReIDEncoder.from_checkpoint(tmp_path / "model.h5")


def _market_crops(root: Path):
    files = sorted(root.glob("*/*.jpg"))
    return [cv2.imread(str(f)) for f in files], np.array([int(f.name[:4]) for f in files])


def _same_vs_different(feats, pids):
    sim = feats @ feats.T
    same = pids[:, None] == pids[None, :]
    off_diag = ~np.eye(len(pids), dtype=bool)
    return sim[same & off_diag].mean(), sim[~same].mean()


def test_openvino_0286_real_market_crops():
    root = shared_path("data", "market1501-mini")
    model = shared_path("models", "openvino", "person-reidentification-retail-0286")
    enc = ReIDEncoder.from_checkpoint(model)                 # a folder: finds the .xml
    assert enc.dim == 256
    assert enc.attribute_names == ()
    assert enc.input_size == (256, 128)
    crops, pids = _market_crops(root)
    feats, attrs = enc.embed(crops)
    assert feats.shape == (len(crops), 256)
    assert attrs.shape == (len(crops), 0)
    same, diff = _same_vs_different(feats, pids)
    assert same > diff + 0.2, (same, diff)                   # measured: 0.59 vs 0.12


def test_osnet_onnx_real_market_crops():
    root = shared_path("data", "market1501-mini")
    enc = ReIDEncoder.from_checkpoint(shared_path("models", "osnet_x0_25_msmt17.onnx"), batch_size=16)
    assert enc.dim == 512
    assert enc.attribute_names == ()
    crops, pids = _market_crops(root)
    feats, _ = enc.embed(crops)
    same, diff = _same_vs_different(feats, pids)
    assert same > diff + 0.1, (same, diff)                   # measured: 0.73 vs 0.45


def test_shipped_default_checkpoint():
    """The checkpoint shipped in reid/weights loads by name, predicts the common attribute schema,
    and (on real Market-1501 crops it never saw in full) ranks same-identity pairs as more similar."""
    from reid.data.schemas import COMMON

    enc = ReIDEncoder.from_checkpoint("default")
    assert enc.dim == 256                        # Intel 0277's embedding (reid/MODEL_CARD.md)
    assert tuple(enc.attribute_names) == tuple(COMMON.output_names)
    feats, attrs = enc.embed([np.full((100, 40, 3), 128, np.uint8)])
    assert feats.shape == (1, 256)
    assert attrs.shape == (1, COMMON.num_outputs)
    assert np.isclose(np.linalg.norm(feats[0]), 1.0, atol=1e-4)
    root = shared_path("data", "market1501-mini", "query").parent
    crops, pids = _market_crops(root)
    feats, _ = enc.embed(crops)
    same, diff = _same_vs_different(feats, pids)
    assert same > diff + 0.05, (same, diff)

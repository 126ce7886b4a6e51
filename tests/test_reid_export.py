"""ONNX export: numerical parity with PyTorch, self-describing metadata, the ``mcmt export-reid`` command."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.cli import main as cli_main
from reid import ReIDEncoder
from reid.checkpoint import save_checkpoint
from reid.export import export_onnx
from reid.model import build_model
from reid.schema import AttributeGroup, AttributeSchema

SCHEMA = AttributeSchema("toy", (AttributeGroup("female", "global"),
                                 AttributeGroup("age", "global", ("young", "adult", "old")),
                                 AttributeGroup("down_color", "lower", ("black", "blue"))))
SIZE = (64, 32)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = build_model("efficientnet_lite0", num_ids=4, schema=SCHEMA, feat_dim=16, pretrained="imagenet",
                    input_size=SIZE)
    m.train()
    with torch.no_grad():          # move BN statistics away from their defaults
        m(torch.randn(8, 3, *SIZE))
    return m


def test_onnx_parity_and_encoder(tmp_path, model):
    result = export_onnx(model, tmp_path / "m.onnx", batch=3)
    print(f"ONNX parity (efficientnet_lite0): max |diff| embedding {result['max_abs_diff_embedding']:.2e} "
          f"(values up to {result['embedding_max_abs']:.1f}), attributes {result['max_abs_diff_attributes']:.2e}")
    assert result["max_abs_diff_embedding"] <= 1e-4 * max(1.0, result["embedding_max_abs"])
    assert result["max_abs_diff_attributes"] < 1e-5
    assert model.training                                        # the caller's model is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]

    onnx_enc = ReIDEncoder.from_checkpoint(tmp_path / "m.onnx", batch_size=4)   # dynamic batch: 4 + 1
    assert onnx_enc.attribute_names == SCHEMA.output_names
    assert onnx_enc.input_size == SIZE
    assert onnx_enc.dim == model.embedding_dim
    assert onnx_enc.schema == SCHEMA
    torch_enc = ReIDEncoder.from_model(model)
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 256, (90, 40, 3), dtype=np.uint8) for _ in range(5)]
    f_onnx, a_onnx = onnx_enc.embed(crops)
    f_torch, a_torch = torch_enc.embed(crops)
    np.testing.assert_allclose(f_onnx, f_torch, atol=1e-4)
    np.testing.assert_allclose(a_onnx, a_torch, atol=1e-5)


def test_export_command(tmp_path, model, capsys):
    ckpt = save_checkpoint(tmp_path / "m.pt", model)
    assert cli_main(["export-reid", "--checkpoint", str(ckpt), "--out", str(tmp_path / "out.onnx")]) == 0
    out = capsys.readouterr().out
    assert "parity vs PyTorch" in out
    assert (tmp_path / "out.onnx").is_file()
    # the .pt encoder (BatchNorm folded into the convolutions, channels_last) agrees with the ONNX file
    rng = np.random.default_rng(1)
    crops = [rng.integers(0, 256, (70, 30, 3), dtype=np.uint8) for _ in range(3)]
    f_pt, a_pt = ReIDEncoder.from_checkpoint(ckpt).embed(crops)
    f_onnx, a_onnx = ReIDEncoder.from_checkpoint(tmp_path / "out.onnx").embed(crops)
    np.testing.assert_allclose(f_pt, f_onnx, atol=1e-4)
    np.testing.assert_allclose(a_pt, a_onnx, atol=1e-5)
    assert cli_main(["export-reid", "--checkpoint", str(ckpt), "--out", str(tmp_path / "out.txt")]) == 2
    assert "must end in .onnx" in capsys.readouterr().err
    assert cli_main(["export-reid", "--checkpoint", str(tmp_path / "none.pt"), "--out", "x.onnx"]) == 2

"""Colour evidence of the crop halves for the colour attribute heads (reid/colour.py, model.colour_features)."""
from __future__ import annotations

import json

import numpy as np
import torch

from conftest import shared_path
from reid.colour import COLOUR_DIM, HUE_BINS, colour_halves
from reid.data.schemas import SCHEMAS
from reid.model import build_model
from reid.trunk_cache import COLOUR_CACHE

IR_PARTS = ("models", "openvino", "person-reidentification-retail-0277", "FP16", "person-reidentification-retail-0277.xml")
VIVID = 2 * HUE_BINS          # first vivid-tone hue bin (red); blue (240 degrees) is bin 8


def _crop(upper_bgr, lower_bgr, h=256, w=128) -> np.ndarray:
    img = np.zeros((h, w, 3), np.uint8)
    img[: h // 2], img[h // 2:] = upper_bgr, lower_bgr
    return img


def test_colour_descriptor_names_the_colour_of_each_half():
    crops = np.stack([_crop((0, 0, 220), (200, 60, 0)), _crop((20, 20, 20), (240, 240, 240))])
    d = colour_halves(torch.from_numpy(crops))[..., 0].numpy()     # (2, K, 2)
    assert d.shape == (2, COLOUR_DIM, 2)
    np.testing.assert_allclose(d[:, :COLOUR_DIM - 2].sum(1), 1.0, atol=1e-5)   # fractions of each half
    assert d[0, VIVID + 0, 0] > 0.99                             # red top: vivid red
    assert d[0, VIVID + 8, 1] > 0.3 and d[0, VIVID + 7, 1] > 0.3  # blue bottom: vivid 210-240 degrees
    assert d[0, VIVID + 0, 1] == 0 and d[0, VIVID + 8, 0] == 0   # ... each in its own half only
    assert d[1, 36, 0] > 0.8 and d[1, 38, 1] > 0.8                # black top, white bottom (achromatic bins)
    assert d[1, :36].sum() < 1e-6                                 # no hue for grey pixels
    # the red / blue halves swap when the crop is turned upside down
    flipped = colour_halves(torch.from_numpy(crops[:, ::-1].copy()))[..., 0].numpy()
    np.testing.assert_allclose(flipped[..., ::-1], d, atol=1e-6)


def _model(colour: bool):
    schema = SCHEMAS["common"]
    ext = {"ir": "x.xml", "embedding": "ir", "channels": 16, "ir_dim": 8}
    torch.manual_seed(0)
    model = build_model("ir_map", num_ids=0, schema=schema, feat_dim=8, pretrained="none", pooling="avg",
                        external_trunk=ext, colour_features=colour)
    if colour:
        for term in model.colour.terms.values():
            torch.nn.init.normal_(term[1].weight, std=1.0)         # as if trained
    return model.eval(), schema


def test_colour_descriptor_feeds_the_colour_heads_only():
    model, schema = _model(colour=True)
    assert model.config["colour_features"] is True
    fmap = torch.randn(1, 16, 2, 1).expand(2, -1, -1, -1)        # the same trunk map for both crops
    crops = np.stack([_crop((0, 0, 220), (200, 60, 0)), _crop((200, 60, 0), (0, 0, 220))])
    out = model(torch.cat([fmap, colour_halves(torch.from_numpy(crops))], 1))
    names = schema.output_names
    colour_cols = [i for i, n in enumerate(names) if n.startswith(("upper_color", "lower_color"))]
    other = [i for i in range(len(names)) if i not in colour_cols]
    a = out.attributes
    assert (a[0, colour_cols] - a[1, colour_cols]).abs().max() > 0.05      # colour heads see the colours
    torch.testing.assert_close(a[0, other], a[1, other])                  # nothing else does
    torch.testing.assert_close(out.embedding[0], out.embedding[1])
    # without the option the same model has no colour input: both crops give the same answers
    plain, _ = _model(colour=False)
    assert "colour_features" not in plain.config and plain.colour is None
    b = plain(fmap).attributes
    torch.testing.assert_close(b[0], b[1])


def test_encoder_passes_the_crop_colours_to_the_heads():
    from reid import ReIDEncoder
    from reid.ir_trunk import reduce_map

    model, _ = _model(colour=True)
    ir = shared_path(*IR_PARTS)
    model2 = build_model(**{**model.config, "external_trunk": {**model.config["external_trunk"], "ir": str(ir),
                                                               "channels": 512}, "pretrained": "none"}).eval()
    for term in model2.colour.terms.values():
        torch.nn.init.normal_(term[1].weight, std=1.0)
    enc = ReIDEncoder.from_model(model2, None, num_threads=1)
    crops = [_crop((0, 0, 220), (200, 60, 0)), _crop((30, 160, 30), (20, 20, 20))]
    _, attrs = enc.embed(crops)
    batch = np.stack(crops)
    _, fmap = enc.backend.trunk(batch)
    x = torch.cat([torch.from_numpy(reduce_map(fmap, "avg")), colour_halves(torch.from_numpy(batch))], 1)
    with torch.inference_mode():
        expect = model2(x).attributes.numpy()
    np.testing.assert_allclose(attrs, expect, atol=1e-5)


def test_train_reid_caches_colour_descriptors_beside_the_trunk_cache(tmp_path):
    from pipeline.cli import main as cli_main
    from reid.checkpoint import load_checkpoint

    cfg = {"model": {"backbone": "ir_map", "trunk": str(shared_path(*IR_PARTS)), "trunk_embedding": "ir",
                     "feat_dim": 32, "trunk_cache": str(tmp_path / "cache"), "pretrained": "none",
                     "pooling": "avg", "input_size": [256, 128], "colour_features": True},
           "data": {"train": [{"name": "market1501", "root": "market1501-mini"}], "num_ids": 8,
                    "num_instances": 2, "workers": 0, "flip": False},
           "loss": {"attr_weighting": "frequency"}, "optim": {"name": "adam", "lr": 1e-3},
           "schedule": {"epochs": 1, "decay": "none"}, "eval": {"enabled": False}, "device": "cpu", "amp": False}
    path = tmp_path / "cfg.yaml"
    path.write_text(json.dumps(cfg))
    out = tmp_path / "run"
    assert cli_main(["train-reid", "--config", str(path), "--data-root", str(shared_path("data")),
                     "--out", str(out), "--no-progress"]) == 0
    assert len(list((tmp_path / "cache").rglob(f"{COLOUR_CACHE}/image/*.npz"))) == 1
    model, _ = load_checkpoint(out / "last.pt")
    assert model.config["colour_features"] and any(p.abs().sum() > 0 for p in model.colour.parameters())

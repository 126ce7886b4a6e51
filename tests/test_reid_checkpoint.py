"""Self-describing checkpoints: round trip, metadata, clear errors."""
from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from core.errors import UserError
from reid.checkpoint import load_checkpoint, save_checkpoint
from reid.model import build_model
from reid.schema import AttributeGroup, AttributeSchema

SCHEMA = AttributeSchema("toy", (AttributeGroup("female", "global"),
                                 AttributeGroup("up_color", "upper", ("white", "red")),
                                 AttributeGroup("downlong", "lower")))
SIZE = (64, 32)


@dataclass(frozen=True)
class ToyTrainConfig:
    lr: float = 2e-4
    epochs: int = 3


@pytest.fixture(scope="module")
def trained_model():
    torch.manual_seed(0)
    model = build_model("mobilenetv2", num_ids=5, schema=SCHEMA, feat_dim=16, pretrained="none", input_size=SIZE)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model.train()
    for _ in range(2):   # change weights and BN running statistics away from their initial values
        out = model(torch.randn(4, 3, *SIZE))
        loss = sum(lo.logsumexp(1).mean() for lo in out.id_logits)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


def test_round_trip_identical_outputs(tmp_path, trained_model):
    path = save_checkpoint(tmp_path / "sub" / "m.pt", trained_model, train_config=ToyTrainConfig(),
                           metrics={"mAP": 12.5, "rank1": torch.tensor(30.0)}, extra={"epoch": 2})
    assert trained_model.training                        # saving does not touch the caller's model
    assert sorted(p.name for p in path.parent.iterdir()) == ["m.pt"]   # no temporary file left
    model, meta = load_checkpoint(path)
    assert not model.training
    x = torch.randn(3, 3, *SIZE)
    with torch.no_grad():
        ref = trained_model.eval()(x)
        got = model(x)
    trained_model.train()
    assert torch.equal(ref.embedding, got.embedding)
    assert torch.equal(ref.attributes, got.attributes)
    assert meta["backbone"] == "mobilenetv2"
    assert meta["input_size"] == SIZE
    assert meta["num_ids"] == 5
    assert meta["feat_dim"] == 16
    assert AttributeSchema.from_dict(meta["schema"]) == SCHEMA
    assert model.schema == SCHEMA
    assert model.attribute_names == SCHEMA.output_names
    assert meta["mean"] == pytest.approx((0.485, 0.456, 0.406))
    assert meta["train_config"] == {"lr": 2e-4, "epochs": 3}
    assert meta["metrics"] == {"mAP": 12.5, "rank1": 30.0}
    assert meta["extra"] == {"epoch": 2}
    # and the loaded model keeps training: same identity classifier shapes
    assert [c.out_features for c in model.id_classifiers] == [5, 5, 5]


def test_wrong_kind_is_a_clear_error(tmp_path, trained_model):
    plain = tmp_path / "plain.pt"
    torch.save(trained_model.state_dict(), plain)
    with pytest.raises(UserError, match="not an mcmt ReID checkpoint"):
        load_checkpoint(plain)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"this is not a checkpoint")
    with pytest.raises(UserError, match="not a readable torch checkpoint"):
        load_checkpoint(junk)
    with pytest.raises(UserError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")


def test_shape_mismatch_is_a_clear_error(tmp_path, trained_model):
    path = save_checkpoint(tmp_path / "m.pt", trained_model)
    payload = torch.load(path, weights_only=True)
    payload["model_config"]["num_ids"] = 9               # config says 9 ids, weights have 5
    torch.save(payload, tmp_path / "bad.pt")
    with pytest.raises(UserError, match="shapes do not match"):
        load_checkpoint(tmp_path / "bad.pt")
    payload = torch.load(path, weights_only=True)
    del payload["state_dict"]["fc_vp.0.weight"]
    torch.save(payload, tmp_path / "missing_key.pt")
    with pytest.raises(UserError, match="missing"):
        load_checkpoint(tmp_path / "missing_key.pt")


def test_slim_checkpoint_keeps_embeddings(tmp_path):
    """The slim inference copy drops the identity classifiers and stores fp16 weights, yet gives the
    same embedding and attributes up to fp16 rounding, and is much smaller."""
    import torch

    from reid.checkpoint import load_checkpoint, save_checkpoint, slim_checkpoint
    from reid.model import build_model
    from reid.schema import AttributeGroup, AttributeSchema

    schema = AttributeSchema("toy", (AttributeGroup("female", "global"),
                                     AttributeGroup("upper_color", "upper", ("black", "white", "red"))))
    torch.manual_seed(0)
    model = build_model("resnet18", num_ids=500, schema=schema, feat_dim=32, pretrained="none",
                        input_size=(64, 32)).eval()
    full = save_checkpoint(tmp_path / "full.pt", model, metrics={"rank1": 1.0})
    slim = slim_checkpoint(full, tmp_path / "slim.pt")
    m2, meta = load_checkpoint(slim)
    assert meta["num_ids"] == 0
    assert meta["metrics"] == {"rank1": 1.0}
    assert meta["extra"]["slim"]["num_ids_trained"] == 500
    x = torch.rand(2, 3, 64, 32)
    with torch.inference_mode():
        a, b = model(x), m2(x)
    assert torch.allclose(a.embedding, b.embedding, atol=5e-2 * a.embedding.abs().max().item())
    assert torch.allclose(a.attributes, b.attributes, atol=2e-2)
    assert slim.stat().st_size < 0.6 * full.stat().st_size

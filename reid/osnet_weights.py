"""Load torchreid OSNet weights from an ONNX export into :class:`reid.osnet.OSNet`.

The ONNX file (e.g. ``osnet_x0_25_msmt17.onnx``) keeps torchreid's parameter names for the tensors
the exporter left alone (the Lite 3x3 pointwise convs, the gate FCs, ``fc.0``/``fc.1``), but every
convolution that was followed by a BatchNorm was *folded* with it and its tensors renamed
(``onnx::Conv_1047``). Those are mapped through the graph: the Conv node using the tensor is named
after the module scope (``/conv2/conv2.0/conv2a/conv2/Conv`` -> ``conv2.0.conv2a.conv2``), so the
folded weight goes to that conv and the folded bias to the BatchNorm after it (``...conv2a.bn``),
which becomes an identity plus bias: weight 1, running mean 0, running variance ``1 - eps`` (so that
``sqrt(var + eps) == 1``). In eval mode the network then computes exactly what the ONNX model does.

Every float tensor of the file must land on a module tensor and every module tensor must be set;
otherwise a :class:`~core.errors.UserError` lists the names that did not match.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn

from core.errors import UserError

log = logging.getLogger(__name__)

_SKIP = ("num_batches_tracked",)


def _load_graph(path: str | Path):
    path = Path(path)
    if not path.is_file():
        raise UserError(f"OSNet ONNX weights not found: {path} (give the path of torchreid's ONNX export, e.g. "
                        "../shared/models/osnet_x0_25_msmt17.onnx, or set MCMT_SHARED)")
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise UserError("reading OSNet weights from ONNX needs the onnx package: pip install onnx") from None
    try:
        graph = onnx.load(str(path)).graph
    except Exception as exc:
        raise UserError(f"{path}: not a readable ONNX model ({exc})") from None
    tensors = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    return graph, {k: v for k, v in tensors.items() if np.issubdtype(v.dtype, np.floating)}


def scope_to_module(node_name: str) -> str:
    """ONNX node name -> module path: ``/conv2/conv2.2/conv2.2.0/conv/Conv`` -> ``conv2.2.0.conv``.

    The exporter names each scope by its module's name, children of containers as
    ``<parent>.<index>``; the last component is the operator."""
    parts = [p for p in node_name.split("/") if p][:-1]
    return ".".join(p.rsplit(".", 1)[-1] for p in parts)


def _folded_convs(graph, tensors: dict) -> dict[str, tuple[str, str]]:
    """Renamed tensors used by Conv nodes: tensor name -> (conv module path, "weight" | "bias")."""
    out = {}
    for node in graph.node:
        if node.op_type != "Conv":
            continue
        for role, name in zip(("weight", "bias"), list(node.input)[1:3]):
            if name in tensors and name.startswith("onnx::"):
                out[name] = (scope_to_module(node.name), role)
    return out


def _identity_bn(bn: nn.BatchNorm2d, prefix: str, bias: np.ndarray) -> dict[str, torch.Tensor]:
    n = bn.num_features
    return {f"{prefix}.weight": torch.ones(n), f"{prefix}.bias": torch.from_numpy(bias.copy()),
            f"{prefix}.running_mean": torch.zeros(n), f"{prefix}.running_var": torch.full((n,), 1.0 - bn.eps)}


def _folded_state(module: nn.Module, graph, tensors: dict) -> tuple[dict, set]:
    """State entries for the folded conv+BN pairs, and the ONNX tensor names they used."""
    mods = dict(module.named_modules())
    folded = _folded_convs(graph, tensors)
    by_conv: dict[str, dict[str, str]] = {}
    for name, (conv, role) in folded.items():
        by_conv.setdefault(conv, {})[role] = name
    state, used = {}, set()
    for conv, roles in by_conv.items():
        parent = conv.rsplit(".", 1)[0] if "." in conv else ""
        bn_path = f"{parent}.bn" if parent else "bn"
        bn = mods.get(bn_path)
        if conv not in mods or not isinstance(bn, nn.BatchNorm2d) or "weight" not in roles:
            continue        # left unmatched: reported by the caller
        state[f"{conv}.weight"] = torch.from_numpy(tensors[roles["weight"]].copy())
        bias = tensors[roles["bias"]] if "bias" in roles else np.zeros(bn.num_features, np.float32)
        state.update(_identity_bn(bn, bn_path, bias))
        used.update(roles.values())
    return state, used


def onnx_state_dict(module: nn.Module, path: str | Path) -> dict[str, torch.Tensor]:
    """A complete state dict for ``module`` (an :class:`~reid.osnet.OSNet`) from the ONNX file.

    Raises :class:`UserError` listing the unmatched names when a tensor of the file has no place in
    the module, a module tensor gets no value, or a shape differs (e.g. the wrong width)."""
    graph, tensors = _load_graph(path)
    own = {k: v for k, v in module.state_dict().items() if not k.endswith(_SKIP)}
    state, used = _folded_state(module, graph, tensors)
    for name, value in tensors.items():
        if name in own and name not in used:
            state[name] = torch.from_numpy(value.copy())
            used.add(name)
    unused = sorted(set(tensors) - used)
    missing = sorted(set(own) - set(state))
    shapes = sorted(f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}"
                    for k, v in state.items() if k in own and tuple(v.shape) != tuple(own[k].shape))
    if unused or missing or shapes:
        show = lambda xs: ", ".join(xs[:8]) + (f" ... ({len(xs)} in all)" if len(xs) > 8 else "")  # noqa: E731
        problems = [f"{what}: [{show(xs)}]" for what, xs in (("unmatched ONNX tensors", unused),
                    ("module tensors without a value", missing), ("shape differences", shapes)) if xs]
        raise UserError(f"{path}: the ONNX weights do not match this OSNet ({getattr(module, 'width', '?')}); "
                        + "; ".join(problems) + " (is it torchreid's OSNet of the same width, exported with "
                        "its parameter names?)")
    return {k: v.to(own[k].dtype) for k, v in state.items()}


def load_onnx_weights(module: nn.Module, path: str | Path) -> nn.Module:
    """Load the ONNX file's weights into ``module`` in place (see the module docstring); returns it."""
    state = onnx_state_dict(module, path)
    module.load_state_dict(state, strict=False)
    log.info("loaded OSNet weights from %s (%d tensors, batch norms folded)", path, len(state))
    return module


# ---- batch-norm statistics -------------------------------------------------------------------
@torch.no_grad()
def calibrate_batchnorm(module: nn.Module, images: torch.Tensor) -> nn.Module:
    """Give every BatchNorm2d the statistics of its input on ``images`` without changing what the
    module computes in eval mode.

    After :func:`load_onnx_weights` the folded batch norms have mean 0 and variance 1, so in
    *training* mode (batch statistics) they would rescale every channel to unit variance and the
    pretrained features would be lost at the first step of fine-tuning. Here each BN, whose eval
    map is ``x -> a x + c``, gets ``running_mean = mu``, ``running_var = var`` (of its input on
    ``images``, (N,3,H,W) normalised), ``weight = a sqrt(var + eps)`` and ``bias = c + a mu``: the
    same eval map, and in training mode nearly the pretrained network.
    """
    stats: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    bns = {n: m for n, m in module.named_modules() if isinstance(m, nn.BatchNorm2d)}

    def hook(name):
        def record(_mod, inputs, _out):
            var, mean = torch.var_mean(inputs[0], dim=(0, 2, 3), unbiased=False)   # (C,) each
            stats[name] = (mean.double(), var.double())
        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in bns.items()]
    was_training = module.training
    try:
        module.eval()
        module(images)
    finally:
        for h in handles:
            h.remove()
        module.train(was_training)
    for name, (mu, var) in stats.items():
        bn = bns[name]
        a = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
        c = bn.bias.double() - bn.running_mean.double() * a
        bn.running_mean.copy_(mu)
        bn.running_var.copy_(var)
        bn.weight.copy_(a * torch.sqrt(var + bn.eps))
        bn.bias.copy_(c + a * mu)
    return module


def calibration_images(folder: str | Path, size: tuple[int, int] = (256, 128), limit: int = 48,
                       mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)) -> torch.Tensor | None:
    """Up to ``limit`` person crops under ``folder`` (sorted, every k-th) as a normalised RGB batch
    (N,3,H,W), or None when there are none."""
    import cv2

    files = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not files:
        return None
    files = files[::max(1, len(files) // limit)][:limit]
    h, w = size
    imgs = [cv2.imread(str(p), cv2.IMREAD_COLOR) for p in files]
    imgs = [cv2.resize(im, (w, h))[:, :, ::-1] for im in imgs if im is not None]
    if not imgs:
        return None
    batch = np.stack(imgs)
    x = (batch.astype(np.float32) / 255.0 - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))

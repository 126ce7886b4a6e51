"""An OpenVINO IR as a PyTorch module: the same graph, its weights as torch parameters.

:class:`IRGraph` reads an IR (Intel's person-reidentification-retail models; the op set they use is
listed in ``_OPS``) and runs it op by op in torch, so that its weights can be trained (all of it, or
the part after a given node: ``start``) and it runs wherever torch runs (CUDA included). It
reproduces the IR's own output (tests/test_reid_ir_torch.py: cosine >= 0.999 on real crops).

``start`` / ``stop``: run only the part of the graph between two nodes (friendly names): the graph
then takes ``start``'s output as its input and returns ``stop``'s output (default: the IR's result).
This is how a tail is trained on cached intermediate features (reid/tail_tune.py).
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.errors import UserError


def read_ir(xml: str | Path | Mapping):
    """An ``ov.Model`` from a path or from files' contents ``{"name", "xml", "bin"}`` (reid/ir_trunk.py)."""
    import openvino as ov

    core = ov.Core()
    if isinstance(xml, Mapping):
        return core.read_model(model=xml["xml"], weights=ov.Tensor(np.frombuffer(xml["bin"], np.uint8)))
    return core.read_model(str(xml))


def _source(inp) -> tuple[str, int]:
    out = inp.get_source_output()
    return out.get_node().get_friendly_name(), out.get_index()


def _pad(x: torch.Tensor, attrs: dict, value: float = 0.0) -> tuple[torch.Tensor, list[int]]:
    """Explicit padding: symmetric pads go to the torch op, asymmetric ones are applied here."""
    if str(attrs.get("auto_pad", "explicit")).lower() not in ("explicit", "notset"):
        raise UserError(f"IR conversion: auto_pad {attrs['auto_pad']!r} is not supported")
    begin, end = list(attrs["pads_begin"]), list(attrs["pads_end"])
    if begin == end:
        return x, begin
    pads = [p for b, e in zip(reversed(begin), reversed(end)) for p in (b, e)]
    return F.pad(x, pads, value=value), [0] * len(begin)


def _conv(x, w, attrs, groups=1):
    x, pad = _pad(x, attrs)
    return F.conv2d(x, w, None, list(attrs["strides"]), pad, list(attrs["dilations"]), groups)


def _group_conv(x, w, attrs):
    g = w.shape[0]
    return _conv(x, w.reshape(g * w.shape[1], *w.shape[2:]), attrs, groups=g)


def _pool(x, attrs, kind):
    ceil = str(attrs.get("rounding_type", "floor")).lower() == "ceil"
    if kind == "max":
        x, pad = _pad(x, attrs, value=float("-inf"))
        return F.max_pool2d(x, list(attrs["kernel"]), list(attrs["strides"]), pad, list(attrs["dilations"]),
                            ceil_mode=ceil)
    x, pad = _pad(x, attrs)
    return F.avg_pool2d(x, list(attrs["kernel"]), list(attrs["strides"]), pad, ceil_mode=ceil,
                        count_include_pad=not attrs.get("exclude-pad", False))


def _mvn(x, axes, attrs):
    dims = [int(a) for a in axes.flatten().tolist()]
    d = x - x.mean(dim=dims, keepdim=True)
    if not attrs["normalize_variance"]:
        return d
    var = (d * d).mean(dim=dims, keepdim=True)
    eps = float(attrs["eps"])
    if str(attrs["eps_mode"]).upper() == "INSIDE_SQRT":
        return d / torch.sqrt(var + eps)
    return d / (torch.sqrt(var) + eps)


def _reshape(x, shape, attrs):
    dims = [int(s) for s in shape.flatten().tolist()]
    if attrs.get("special_zero"):
        dims = [x.shape[i] if s == 0 else s for i, s in enumerate(dims)]
    if -1 not in dims and int(np.prod(dims)) != x.numel():
        dims[0] = -1                           # a batch of 1 written into the IR's constant
    return x.reshape(dims)


def _prelu(x, slope):
    if slope.numel() == 1:
        return torch.where(x >= 0, x, x * slope.reshape(()))
    shape = [1] * x.dim()
    shape[1] = slope.numel()
    return torch.where(x >= 0, x, x * slope.reshape(shape))


def _matmul(a, b, attrs):
    if attrs.get("transpose_a"):
        a = a.transpose(-1, -2)
    if attrs.get("transpose_b"):
        b = b.transpose(-1, -2)
    return a @ b


def _reduce(fn):
    return lambda x, axes, attrs: fn(x, dim=[int(a) for a in axes.flatten().tolist()],
                                     keepdim=bool(attrs.get("keep_dims")))


def _gather(x, idx, axis, attrs):
    if int(attrs.get("batch_dims", 0)):
        raise UserError("IR conversion: Gather with batch_dims is not supported")
    a = int(axis.flatten()[0]) % x.dim()
    out = torch.index_select(x, a, idx.flatten().long().to(x.device))
    return out.reshape(*x.shape[:a], *idx.shape, *x.shape[a + 1:])


_OPS = {
    "Convolution": lambda x, w, a: _conv(x, w, a),
    "GroupConvolution": _group_conv,
    "Add": lambda x, y, a: x + y,
    "Subtract": lambda x, y, a: x - y,
    "Multiply": lambda x, y, a: x * y,
    "Divide": lambda x, y, a: x / y,
    "Relu": lambda x, a: F.relu(x),
    "Sigmoid": lambda x, a: torch.sigmoid(x),
    "PRelu": lambda x, s, a: _prelu(x, s),
    "MVN": _mvn,
    "ReduceMean": _reduce(torch.mean),
    "ReduceSum": _reduce(torch.sum),
    "Reshape": _reshape,
    "ShapeOf": lambda x, a: torch.tensor(x.shape, dtype=torch.int64),
    "Gather": _gather,
    "Concat": lambda *xs: torch.cat(xs[:-1], dim=int(xs[-1]["axis"])),
    "MaxPool": lambda x, a: _pool(x, a, "max"),
    "AvgPool": lambda x, a: _pool(x, a, "avg"),
    "MatMul": _matmul,
}


class IRGraph(nn.Module):
    """The IR's graph in torch. ``start``: a node whose output becomes the input (default: the IR's
    input); ``stop``: the node whose output is returned (default: the IR's result)."""

    def __init__(self, xml, start: str | None = None, stop: str | None = None):
        super().__init__()
        model = xml if hasattr(xml, "get_ordered_ops") else read_ir(xml)
        ops = list(model.get_ordered_ops())
        by_name = {op.get_friendly_name(): op for op in ops}
        for name in (start, stop):
            if name is not None and name not in by_name:
                raise UserError(f"IR conversion: no node named {name!r} in {getattr(xml, 'name', 'the IR')}")
        self.params = nn.ParameterDict()
        self.consts: dict[str, torch.Tensor] = {}      # integer constants (axes, shapes)
        self.plan: list[tuple[str, str, list[tuple[str, int]], dict]] = []
        known = set()
        if start is None:
            params = [op for op in ops if op.get_type_name() == "Parameter"]
            if len(params) != 1:
                raise UserError(f"IR conversion: the IR has {len(params)} inputs, expected 1")
            start = params[0].get_friendly_name()
        self.start = start
        known.add(start)
        results = [op for op in ops if op.get_type_name() == "Result"]
        self.stop = stop or _source(results[0].input(0))[0]
        self._keys: dict[str, str] = {}
        for op in ops:
            name, kind = op.get_friendly_name(), op.get_type_name()
            if name == start or kind in ("Result", "Parameter"):
                continue
            srcs = [_source(i) for i in op.inputs()]
            if kind == "Constant":
                self._constant(name, op)
                continue
            if kind == "Convert" and srcs[0][0] in self._keys:
                self._constant(name, op, source=by_name[srcs[0][0]])
                continue
            computed = [s for s, _ in srcs if s not in self._keys]
            if not any(s in known for s in computed):
                continue                                          # before ``start``: not part of this graph
            if not all(s in known for s in computed):
                missing = next(s for s in computed if s not in known)
                raise UserError(f"IR conversion: {name} ({kind}) needs {missing}, computed before {start!r}: "
                                "choose a start node that the rest of the graph does not bypass")
            if kind not in _OPS:
                raise UserError(f"IR conversion: operation {kind} ({name}) is not supported")
            self.plan.append((name, kind, srcs, op.get_attributes()))
            known.add(name)
            if name == self.stop:
                break
        if self.stop not in known:
            raise UserError(f"IR conversion: {self.stop!r} does not follow from {start!r}")

    def _constant(self, name: str, op, source=None) -> None:
        data = np.asarray((source or op).get_data())
        if np.issubdtype(data.dtype, np.floating):
            key = f"p{len(self.params)}"
            self.params[key] = nn.Parameter(torch.from_numpy(data.astype(np.float32)), requires_grad=False)
        else:
            key = f"c{len(self.consts)}"
            self.consts[key] = torch.from_numpy(data.astype(np.int64))
        self._keys[name] = key

    def _value(self, values, src: tuple[str, int]):
        name, index = src
        if name in values:
            v = values[name]
            return v[index] if isinstance(v, tuple) else v
        key = self._keys[name]
        return self.params[key] if key.startswith("p") else self.consts[key]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.run(x, [self.stop])[0]

    def run(self, x: torch.Tensor, names: Sequence[str]) -> list[torch.Tensor]:
        """The outputs of the nodes ``names`` (ops of this graph) for input ``x``."""
        values = {self.start: x}
        for name, kind, srcs, attrs in self.plan:
            args = [self._value(values, s) for s in srcs]
            values[name] = _OPS[kind](*args, attrs)
        missing = [n for n in names if n not in values]
        if missing:
            raise UserError(f"IR conversion: {missing[0]!r} is not computed by this graph")
        return [values[n] for n in names]

    def train_from(self, node: str) -> list[nn.Parameter]:
        """Make trainable the weights of every op from ``node`` on (in the graph's order); returns them."""
        names = [name for name, *_ in self.plan]
        if node not in names:
            raise UserError(f"IR conversion: {node!r} is not an op of this graph")
        chosen = []
        for name, kind, srcs, _ in self.plan[names.index(node):]:
            for s, _ in srcs:
                key = self._keys.get(s)
                if key and key.startswith("p") and not self.params[key].requires_grad:
                    self.params[key].requires_grad_(True)
                    chosen.append(self.params[key])
        return chosen

    def named_ops(self) -> Sequence[tuple[str, str]]:
        """(friendly name, type) of the ops this graph runs, in order."""
        return [(name, kind) for name, kind, *_ in self.plan]

    def write_into(self, model) -> int:
        """Put this graph's weights into ``model`` (the ``ov.Model`` it was read from, or a copy read from
        the same files): every constant whose value differs is replaced, in its own element type.
        Returns how many were replaced; save the model with ``openvino.save_model``."""
        import openvino.opset13 as ops

        by_name = {op.get_friendly_name(): op for op in model.get_ordered_ops()}
        n = 0
        for name, key in self._keys.items():
            if not key.startswith("p"):
                continue
            node = by_name[name]
            const = node if node.get_type_name() == "Constant" else node.input(0).get_source_output().get_node()
            old = np.asarray(const.get_data())
            new = self.params[key].detach().cpu().numpy().astype(old.dtype).reshape(old.shape)
            if np.array_equal(old, new):
                continue
            const.output(0).replace(ops.constant(new).output(0))
            n += 1
        if n:
            model.validate_nodes_and_infer_types()
        return n


class TorchIRTrunk:
    """:class:`reid.ir_trunk.IRTrunk`'s interface run by torch on any device (an NVIDIA GPU: OpenVINO
    runs on CPUs and Intel GPUs only): ``(N, h, w, 3)`` BGR uint8 crops -> (IR embedding (N, D), last
    feature map (N, C, h', w')), both float32 numpy. Float IRs only (an int8 IR's FakeQuantize ops are
    not converted)."""

    def __init__(self, xml, device: str = "cuda"):
        from reid.ir_trunk import find_feature_map
        from reid.preprocess import OMZ_BGR_255, Preprocess

        model = read_ir(xml)
        self.path = Path(xml["name"]) if isinstance(xml, Mapping) else Path(xml)
        fmap = find_feature_map(model)
        self.map_name = fmap.get_node().get_friendly_name()
        shape = model.inputs[0].get_partial_shape()
        self.preprocess = Preprocess((shape[2].get_length(), shape[3].get_length()), **OMZ_BGR_255)
        self.channels = int(fmap.get_partial_shape()[1].get_length())
        self.graph = IRGraph(model).to(device).eval()
        self.device = torch.device(device)
        self.dim = int(model.outputs[0].get_partial_shape()[1].get_length())

    def __call__(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from reid.ir_trunk import normalize_numpy

        x = torch.from_numpy(normalize_numpy(batch, self.preprocess)).to(self.device)
        with torch.inference_mode():
            emb, fmap = self.graph.run(x, [self.graph.stop, self.map_name])
        return (emb.float().cpu().numpy().reshape(len(batch), -1), fmap.float().cpu().numpy())

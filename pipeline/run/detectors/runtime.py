"""Running a detector network file (ONNX or OpenVINO IR) with an explicit CPU thread count.

On the CPU the first installed runtime wins: OpenVINO (a dependency of mcmt), onnxruntime
(``pip install mcmt[models]``), then OpenCV's dnn module (ONNX only; needs the ``onnx`` package to read
the input size). On ``cuda`` devices an ONNX file runs on onnxruntime's CUDA execution provider when
that is installed; otherwise on the CPU (logged, never an error).

OpenVINO runs in float32 (``core.device.openvino_config``): CPUs with bfloat16 units would otherwise
round differently and give other boxes than CPUs without.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Optional

import numpy as np

from core.device import openvino_config
from core.errors import UserError

log = logging.getLogger(__name__)

BACKENDS = ("auto", "openvino", "onnxruntime", "opencv")


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:   # not Linux
        return max(1, os.cpu_count() or 1)


def cpu_threads(threads: int) -> int:
    """``threads`` inference threads; 0 means all cores."""
    return int(threads) if threads and threads > 0 else available_cores()


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def io_shapes(path: str | Path) -> tuple[list, list[list]]:
    """(input shape, output shapes) of a model file without compiling it; unknown dims are -1."""
    path = Path(path)
    if _installed("openvino"):
        import openvino as ov

        model = ov.Core().read_model(str(path))
        dims = lambda ps: [d.get_length() if d.is_static else -1 for d in ps]   # noqa: E731
        return dims(model.inputs[0].get_partial_shape()), [dims(o.get_partial_shape()) for o in model.outputs]
    if path.suffix.lower() != ".onnx":
        raise UserError(f"{path}: an OpenVINO IR model needs OpenVINO (pip install openvino, or mcmt[models])")
    if _installed("onnx"):
        import onnx

        graph = onnx.load(str(path), load_external_data=False).graph
        init = {t.name for t in graph.initializer}
        dims = lambda v: [d.dim_value if d.HasField("dim_value") else -1      # noqa: E731
                          for d in v.type.tensor_type.shape.dim]
        inputs = [v for v in graph.input if v.name not in init]
        return dims(inputs[0]), [dims(o) for o in graph.output]
    engine = Engine(path, threads=1)
    return [engine.max_batch] + list(engine.input_chw), [list(s) for s in engine.output_shapes]


class Engine:
    """One model file, first input in, first output out: ``engine(x)`` with x (B, C, H, W) float32
    (``all_outputs``: every output, a list in the model's order).

    ``max_batch`` is how many images one call may hold (1 when the runtime cannot change the model's
    batch dimension); ``input_chw`` the network's input size; ``name`` the runtime and device used.
    ``input_chw`` given to the constructor is the known input size, needed by OpenCV only;
    ``batch_first``: the output's first dimension is the batch (SSD rows are not: [1, 1, B x N, 7]).
    A model that turns out not to batch that way (an export with the batch size fixed inside, e.g.
    a Reshape to [1, ...]) is then run one image per call.
    """

    def __init__(self, path: str | Path, *, threads: int = 0, device: str = "cpu", backend: str = "auto",
                 max_batch: int = 8, input_chw: Optional[tuple] = None, batch_first: bool = True,
                 all_outputs: bool = False):
        self.path = Path(path)
        self.batch_first = batch_first
        self.all_outputs = all_outputs
        self._input_hint = input_chw     # known input size (OpenCV cannot tell it)
        if not self.path.is_file():
            raise UserError(f"detector model not found: {self.path}")
        if backend not in BACKENDS:
            raise UserError(f"unknown detector runtime {backend!r}; valid: {', '.join(BACKENDS)}")
        self.threads = cpu_threads(threads)
        self.max_batch = max(1, int(max_batch))
        self._run = None
        self.output_shapes: list[tuple] = []
        if str(device).startswith("cuda") and backend in ("auto", "onnxruntime"):
            if self._try_onnxruntime_cuda(device):
                return
            log.info("detector %s: no onnxruntime CUDA provider here; it runs on the CPU", self.path.name)
        order = [backend] if backend != "auto" else ["openvino", "onnxruntime", "opencv"]
        for name in order:
            if self._start(name):
                return
        if self.path.suffix.lower() != ".onnx" or backend == "openvino":
            needs = "OpenVINO (pip install openvino)"
        else:
            which = "onnxruntime" if backend == "onnxruntime" else "OpenVINO or onnxruntime"
            needs = f"{which} (pip install mcmt[models])"
        raise UserError(f"cannot run {self.path.name} ({backend} runtime): it needs {needs}")

    def _start(self, name: str) -> bool:
        suffix = self.path.suffix.lower()
        if name == "openvino" and _installed("openvino"):
            self._start_openvino()
        elif name == "onnxruntime" and suffix == ".onnx" and _installed("onnxruntime"):
            self._start_onnxruntime(["CPUExecutionProvider"])
        elif name == "opencv" and suffix == ".onnx":
            self._start_opencv()
        else:
            return False
        log.info("detector %s on %s, %d threads, batch up to %d", self.path.name, self.name, self.threads,
                 self.max_batch)
        return True

    def run_frames(self, frames, prepare):
        """Frames in batches of ``max_batch``: yields (chunk, prepared, output) per batch, where
        ``prepare(frame)`` returns (HWC network-size image, *meta) and output is ``self`` of the stack."""
        step = self.max_batch
        for start in range(0, len(frames), step):
            chunk = frames[start:start + step]
            prepared = [prepare(f) for f in chunk]
            yield chunk, prepared, self(np.stack([p[0] for p in prepared]).transpose(0, 3, 1, 2))

    def __call__(self, x: np.ndarray):
        """(B, C, H, W) float32 with B <= max_batch -> the first output (batch first, see above), or the
        list of all outputs with ``all_outputs`` (no batch check: such models run one image per call)."""
        x = np.ascontiguousarray(x, np.float32)
        out = self._run(x)
        if self.all_outputs:
            return out
        if self.batch_first and x.shape[0] > 1 and out.shape[0] != x.shape[0]:
            log.info("%s does not batch (output %s for %d images); one image per call from now on",
                     self.path.name, out.shape, x.shape[0])
            self.max_batch = 1
            out = np.concatenate([self._run(x[i:i + 1]) for i in range(x.shape[0])])
        return out

    def runtime_threads(self) -> int:
        """The inference thread count as the runtime reports it (to check that ``threads`` arrived)."""
        if self.name.startswith("OpenVINO"):
            compiled = self._compile(1)
            return int(compiled.get_property("INFERENCE_NUM_THREADS"))
        if self.name.startswith("onnxruntime"):
            return int(self._session.get_session_options().intra_op_num_threads)
        import cv2

        return int(cv2.getNumThreads())

    # ---- OpenVINO -------------------------------------------------------------------------------
    def _start_openvino(self) -> None:
        import openvino as ov

        self._core = ov.Core()
        self._model = self._core.read_model(str(self.path))
        self._config = {**openvino_config("CPU", self.threads), "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1}
        self._compiled: dict[tuple, object] = {}   # (batch, input chw) -> compiled model, made on first use
        self._requests: dict[tuple, object] = {}
        shape = self._model.inputs[0].get_partial_shape()
        self.input_chw = tuple(d.get_length() for d in list(shape)[1:])
        self.output_shapes = [tuple(d.get_length() if d.is_static else -1 for d in o.get_partial_shape())
                              for o in self._model.outputs]
        if self.max_batch > 1:
            try:                   # compiled per batch size on first use; here only whether it can change
                self._model.clone().reshape({0: [2, *self.input_chw]})
            except Exception as exc:  # a model whose batch dimension cannot change: one image per call
                log.debug("%s: batch reshape failed (%s); one image per call", self.path.name, exc)
                self.max_batch = 1
        self.name = "OpenVINO CPU"
        self._run = self._run_openvino

    def _compile(self, batch: int):
        key = (batch, tuple(self.input_chw))
        if key not in self._compiled:
            model = self._model.clone()
            model.reshape({model.inputs[0]: [batch, *self.input_chw]})
            self._compiled[key] = self._core.compile_model(model, "CPU", self._config)
        return self._compiled[key]

    def _request(self, batch: int):
        key = (batch, tuple(self.input_chw))
        if key not in self._requests:
            self._requests[key] = self._compile(batch).create_infer_request()
        return self._requests[key]

    def _run_openvino(self, x: np.ndarray):
        request = self._request(x.shape[0])
        request.infer({0: x})
        if self.all_outputs:
            return [request.get_output_tensor(i).data.copy() for i in range(len(self.output_shapes))]
        return request.get_output_tensor(0).data.copy()

    def reshape_input(self, height: int, width: int) -> None:
        """Run the network at input size (height, width) from the next call on (OpenVINO only; models
        whose layers allow it, e.g. the OMZ detectors). Each size is compiled once, on first use."""
        if tuple(self.input_chw[1:]) == (height, width):
            return
        if not self.name.startswith("OpenVINO"):
            raise UserError(f"{self.path.name}: changing the input size needs the OpenVINO runtime")
        self.input_chw = (self.input_chw[0], int(height), int(width))

    # ---- onnxruntime ----------------------------------------------------------------------------
    def _try_onnxruntime_cuda(self, device: str) -> bool:
        if self.path.suffix.lower() != ".onnx" or not _installed("onnxruntime"):
            return False
        import onnxruntime as ort

        if "CUDAExecutionProvider" not in ort.get_available_providers():
            return False
        index = int(device.split(":")[1]) if ":" in device else 0
        self._start_onnxruntime([("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"])
        log.info("detector %s on %s", self.path.name, self.name)
        return True

    def _start_onnxruntime(self, providers: list) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self._session = ort.InferenceSession(str(self.path), opts, providers=providers)
        inp = self._session.get_inputs()[0]
        self._input_name = inp.name
        self.input_chw = tuple(int(d) for d in inp.shape[1:])
        self.output_shapes = [tuple(o.shape) for o in self._session.get_outputs()]
        if isinstance(inp.shape[0], int):          # a fixed batch dimension: one image per call
            self.max_batch = 1
        used = self._session.get_providers()[0]
        self.name = "onnxruntime " + ("CUDA" if used.startswith("CUDA") else "CPU")
        self._run = lambda x: (self._session.run(None, {self._input_name: x}) if self.all_outputs
                               else self._session.run(None, {self._input_name: x})[0])

    # ---- OpenCV dnn -----------------------------------------------------------------------------
    def _start_opencv(self) -> None:
        import cv2

        if self._input_hint is None:
            if not _installed("onnx"):
                raise UserError(f"{self.path.name}: OpenCV's runtime needs the onnx package (pip install onnx)")
            self._input_hint = tuple(io_shapes(self.path)[0][1:])
        self._net = cv2.dnn.readNetFromONNX(str(self.path))
        self.input_chw = tuple(self._input_hint)
        self.max_batch = 1
        cv2.setNumThreads(self.threads)        # OpenCV's one thread pool: also used by resize etc.
        self.name = "OpenCV dnn CPU"
        self._run = self._run_opencv

    def _run_opencv(self, x: np.ndarray):
        self._net.setInput(x)
        if self.all_outputs:
            return [o.copy() for o in self._net.forward(self._net.getUnconnectedOutLayersNames())]
        return self._net.forward().copy()



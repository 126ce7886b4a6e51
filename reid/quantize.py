"""Int8 copy of an OpenVINO IR ReID trunk: NNCF post-training quantization on real person crops.

Export time only (``mcmt export-reid --int8``; needs ``pip install -e ".[quantize]"``, i.e. nncf); the
checkpoint then carries the quantized IR beside the original (``trunk_files_int8``) and runtime needs
only openvino (reid/ir_trunk.py picks it).

Calibration crops come from training data only: MARS (``mars-mini/bbox_train``) and Market-1501
(``market1501-mini/bounding_box_train``) under ``data_root``, never the footage we evaluate on
(PETS09, EPFL terrace, VIPeR, the samples). The check crops (:func:`check_crops`) are other MARS frames
and Market-1501's test identities, none of them used for calibration.

Settings (measured on the 0277 trunk, reid/MODEL_CARD.md): preset PERFORMANCE (symmetric
activations); kept in float: the first convolution, the tail (the global depthwise pooling and the
fully connected layer of the embedding), every MVN (instance normalisation) and, for 0277, the nine
operations :data:`KEEP_FLOAT_0277` names. Those were found by NNCF's accuracy control
(``nncf.quantize_with_accuracy_control``, max drop 0.005 of the mean embedding cosine to the float IR
on 150 other MARS frames, 20 minutes on two cores): it reverted them and the 14 MVNs to float, which lifted
the cosine on held-out crops from 0.987 to 0.995. Naming them here makes the export repeatable in a minute.
"""
from __future__ import annotations

import logging
import random
import tempfile
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from core.errors import UserError
from reid.preprocess import OMZ_BGR_255, Preprocess, normalize_numpy, resize_crops

log = logging.getLogger(__name__)

MARS = ("mars-mini", "bbox_train")
MARKET_TRAIN = ("market1501-mini", "bounding_box_train")
MARKET_HELD_OUT = (("market1501-mini", "bounding_box_test"), ("market1501-mini", "query"))
# operations of Intel 0277's IR (friendly names) that NNCF's accuracy control put back to float (see above):
# three 1x1 convolutions of the last stage, two attention gates (ReduceMean / Multiply by the Sigmoid),
# the input's mean subtraction and the embedding's scale
KEEP_FLOAT_0277 = ("1041", "1053", "1057", "716", "729", "804", "809", "Subtract_5279", "Multiply_18575")


def _mars_files(data_root: Path) -> list[Path]:
    files = sorted((data_root.joinpath(*MARS)).glob("*/*.jpg"))
    random.Random(0).shuffle(files)     # spread over identities, tracklets and cameras
    return files


def _read(files: Sequence[Path]) -> list[np.ndarray]:
    import cv2

    crops = [cv2.imread(str(f)) for f in files]
    return [c for c in crops if c is not None and c.size]


def calibration_crops(data_root: str | Path, n_mars: int = 300) -> list[np.ndarray]:
    """``n_mars`` MARS frames (seeded shuffle) and all Market-1501 training crops under ``data_root``."""
    root = Path(data_root)
    files = _mars_files(root)[:n_mars] + sorted(root.joinpath(*MARKET_TRAIN).glob("*.jpg"))
    if len(files) < 32:
        raise UserError(f"too few calibration crops under {root} ({len(files)}): expected "
                        f"{'/'.join(MARS)} and {'/'.join(MARKET_TRAIN)} (the shared data folder)")
    return _read(files)


def check_crops(data_root: str | Path, n_mars: int = 200, skip_mars: int = 300) -> list[np.ndarray]:
    """Crops never used for calibration: MARS frames after the first ``skip_mars`` of the same shuffle
    and Market-1501's test identities (query and gallery)."""
    root = Path(data_root)
    files = _mars_files(root)[skip_mars:skip_mars + n_mars]
    for parts in MARKET_HELD_OUT:
        files += sorted(root.joinpath(*parts).glob("*.jpg"))
    return _read(files)


def _read_model(core, files: Mapping | str | Path):
    import openvino as ov

    if isinstance(files, Mapping):
        return core.read_model(model=files["xml"], weights=ov.Tensor(np.frombuffer(files["bin"], np.uint8)))
    return core.read_model(str(files))


def _inputs(model, crops: Sequence[np.ndarray]) -> np.ndarray:
    shape = model.inputs[0].get_partial_shape()
    pp = Preprocess((shape[2].get_length(), shape[3].get_length()), **OMZ_BGR_255)
    return normalize_numpy(resize_crops(crops, pp.input_size, pp.rgb), pp)


def quantize_ir(files: Mapping | str | Path, crops: Sequence[np.ndarray], *, keep_float: bool = True) -> dict:
    """The int8 IR of ``files`` (an IR's .xml path, or ``{"name", "xml", "bin"}`` as a checkpoint carries
    it) calibrated on ``crops`` (BGR uint8) -> ``{"name", "xml", "bin", "quantization": {...}}``.
    ``keep_float``: the first convolution and the embedding tail stay in float (see the module doc)."""
    try:
        import nncf
        import openvino as ov
    except ImportError:
        raise UserError('int8 export needs nncf: pip install -e ".[quantize]" (or pip install nncf)') from None
    core = ov.Core()
    model = _read_model(core, files)
    x = _inputs(model, crops)
    ignored = []
    if keep_float:
        from reid.ir_trunk import find_feature_map

        ops = model.get_ordered_ops()
        first = next(o for o in ops if o.get_type_name() == "Convolution")
        fmap_consumers = [t.get_node() for t in find_feature_map(model).get_target_inputs()]
        pool = next(o for o in fmap_consumers if o.get_type_name() == "GroupConvolution")
        tail = [o for o in ops if o.get_type_name() == "MatMul"]
        names = {o.get_friendly_name() for o in ops}
        ignored = [first.get_friendly_name(), pool.get_friendly_name(), *(o.get_friendly_name() for o in tail),
                   *(n for n in KEEP_FLOAT_0277 if n in names)]
    scope = nncf.IgnoredScope(names=ignored, types=["MVN"] if keep_float else [], validate=False)
    quantized = nncf.quantize(model, nncf.Dataset([x[i:i + 1] for i in range(len(x))]),
                              preset=nncf.QuantizationPreset.PERFORMANCE, subset_size=len(x), ignored_scope=scope)
    name = Path(files["name"] if isinstance(files, Mapping) else files).stem + "-int8.xml"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / name
        ov.save_model(quantized, str(out), compress_to_fp16=False)
        result = {"name": name, "xml": out.read_text(), "bin": out.with_suffix(".bin").read_bytes()}
    result["quantization"] = {"tool": f"nncf {nncf.__version__}", "preset": "performance",
                              "calibration_crops": len(x), "kept_float": ignored + (["type MVN"] if keep_float else [])}
    return result


def embedding_cosine(reference: Mapping | str | Path, candidate: Mapping | str | Path,
                     crops: Sequence[np.ndarray], num_threads: int = 0) -> np.ndarray:
    """Cosine between the two IRs' embeddings of ``crops``, per crop (N,)."""
    from reid.ir_trunk import IRTrunk

    batch = resize_crops(crops, IRTrunk(reference, num_threads).preprocess.input_size, False)
    out = []
    for files in (reference, candidate):
        emb, _ = IRTrunk(files, num_threads)(batch)
        out.append(emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12))
    return (out[0] * out[1]).sum(axis=1)

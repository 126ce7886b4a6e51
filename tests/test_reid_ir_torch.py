"""Intel 0277's IR as a torch module (reid/ir_torch.py): the IR's own embedding reproduced on real crops,
a graph cut at a node, tuned weights written back into an IR that OpenVINO runs (skips without ../shared)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from conftest import shared_path
from core.errors import UserError
from reid.ir_torch import IRGraph, read_ir
from reid.ir_trunk import IRTrunk, normalize_numpy
from reid.trunk_tune import last_block_input

IR_PARTS = ("models", "openvino", "person-reidentification-retail-0277", "FP16", "person-reidentification-retail-0277.xml")


def _crops(n=12):
    folder = shared_path("data", "market1501-mini", "bounding_box_test")
    return np.stack([cv2.resize(cv2.imread(str(p)), (128, 256)) for p in sorted(folder.glob("*.jpg"))[:n]])


def _cos(a, b):
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.mark.parametrize("name", ["0277", "0286", "0288"])
def test_the_torch_graph_reproduces_the_ir_embedding_on_real_crops(name):
    model = f"person-reidentification-retail-{name}"
    xml, crops = shared_path("models", "openvino", model, "FP16", f"{model}.xml"), _crops()
    trunk = IRTrunk(xml, num_threads=1)
    ref, _ = trunk(crops)
    graph = IRGraph(xml).eval()
    with torch.no_grad():
        out = graph(torch.from_numpy(normalize_numpy(crops, trunk.preprocess))).numpy()
    assert out.shape == ref.shape == (len(crops), 256)
    assert _cos(out, ref).min() >= 0.999
    assert not any(p.requires_grad for p in graph.parameters())          # frozen unless asked


def test_a_graph_cut_at_the_last_block_continues_from_openvino_features():
    xml, crops = shared_path(*IR_PARTS), _crops(6)
    cut = last_block_input(read_ir(xml))
    emb, feats = IRTrunk(xml, num_threads=1, map_node=cut)(crops)
    assert feats.shape == (6, 512, 16, 8)
    tail = IRGraph(xml, start=cut).eval()
    with torch.no_grad():
        out = tail(torch.from_numpy(feats.astype(np.float32))).numpy()
    assert _cos(out, emb).min() >= 0.999
    params = tail.train_from(tail.named_ops()[0][0])
    assert 0 < sum(p.numel() for p in params) < 1_000_000                  # the last block, conv, FC: not the trunk
    with pytest.raises(UserError, match="no node named"):
        IRGraph(xml, start="no-such-node")
    with pytest.raises(UserError, match="bypass|computed before"):
        IRGraph(xml, start="1119")                                          # inside the block: its shortcut skips it


def test_tuned_weights_written_back_run_in_openvino(tmp_path):
    import openvino as ov

    xml, crops = shared_path(*IR_PARTS), _crops(6)
    graph = IRGraph(xml)
    params = graph.train_from(graph.named_ops()[-12][0])
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in params:
            p.add_(0.05 * (p.abs().mean() + 0.01) * torch.randn(p.shape, generator=gen))
    model = read_ir(xml)
    assert graph.write_into(model) == len(params)
    out_xml = tmp_path / "tuned.xml"
    ov.save_model(model, str(out_xml), compress_to_fp16=False)
    trunk = IRTrunk(out_xml, num_threads=1)
    new, _ = trunk(crops)
    with torch.no_grad():
        ref = graph.eval()(torch.from_numpy(normalize_numpy(crops, trunk.preprocess))).numpy()
    assert _cos(new, ref).min() >= 0.999                                    # the saved IR is the torch graph
    old, _ = IRTrunk(xml, num_threads=1)(crops)
    assert _cos(new, old).min() < 0.999                                     # ... and not the original


def test_the_torch_trunk_gives_the_openvino_trunks_embedding_and_map():
    from reid.ir_torch import TorchIRTrunk

    xml, crops = shared_path(*IR_PARTS), _crops(6)
    ref_emb, ref_map = IRTrunk(xml, num_threads=1)(crops)
    emb, fmap = TorchIRTrunk(xml, device="cpu")(crops)
    assert emb.shape == ref_emb.shape and fmap.shape == ref_map.shape == (6, 512, 16, 8)
    assert _cos(emb, ref_emb).min() >= 0.999
    np.testing.assert_allclose(fmap, ref_map, atol=2e-3 * float(np.abs(ref_map).max()))


def test_a_cuda_device_runs_the_trunk_in_torch_and_the_cpu_in_openvino():
    from reid.trunk_backend import trunk_engine

    assert trunk_engine("cpu") == "openvino"
    assert trunk_engine("cuda") == ("torch" if torch.cuda.is_available() else "openvino")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_the_default_on_a_gpu_gives_the_cpus_float_features():
    from reid import ReIDEncoder

    crops = list(_crops(8))
    cpu, cpu_attrs = ReIDEncoder.from_checkpoint("default", precision="fp32", num_threads=1).embed(crops)
    gpu_enc = ReIDEncoder.from_checkpoint("default", device="cuda")
    gpu, gpu_attrs = gpu_enc.embed(crops)
    assert gpu_enc.backend.engine == "torch" and gpu_enc.backend.precision == "fp32"
    assert _cos(gpu, cpu).min() >= 0.999 and np.abs(gpu_attrs - cpu_attrs).max() < 0.02

"""Every YAML file shipped in configs/ loads into its typed config class without errors."""
from __future__ import annotations

from pathlib import Path

import pytest

from core.config import load_config, read_yaml
from pipeline.config import RunConfig
from reid.train_config import TrainConfig
from trackers import TRACKERS
from trackers.config import TrackerConfig

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize("path", sorted((CONFIGS / "reid").glob("*.yaml")), ids=lambda p: p.name)
def test_reid_training_configs_load(path):
    cfg = load_config(TrainConfig, path)
    assert cfg.loss.margin == 1.2  # the paper's triplet margin in every recipe
    if path.name.startswith("paper_"):
        assert cfg.model.backbone == "resnet50"
        assert tuple(cfg.model.input_size) == (384, 128)
        assert cfg.optim.name == "sgd"
        assert cfg.optim.lr == 2e-4
        assert cfg.schedule.epochs == 320
        assert cfg.data.num_instances == 4
        # paper fidelity: six FC features, global attribute head on all attributes, eq. 6 sum
        assert cfg.model.part_whole_feature is True
        assert cfg.model.global_attributes == "all"
        assert cfg.loss.attr_reduction == "sum"
    if path.name.startswith("paper_") or path.name in ("default_cpu.yaml", "osnet_cpu.yaml"):
        assert cfg.loss.attr_weighting == "frequency"


@pytest.mark.parametrize("path", sorted((CONFIGS / "trackers").glob("*.yaml")), ids=lambda p: p.name)
def test_tracker_configs_load_and_build(path):
    cfg = load_config(TrackerConfig, path)
    assert cfg.name in TRACKERS
    from pipeline.run.runner import build_tracker_for
    import numpy as np

    tracker = build_tracker_for(RunConfig(tracker=cfg))
    assert tracker.update(np.zeros((0, 6), np.float32), None).shape == (0, 8)


def test_run_config_loads_and_accepts_tracker_file_as_section():
    cfg = load_config(RunConfig, CONFIGS / "run.yaml")
    section = read_yaml(CONFIGS / "trackers" / "botsort.yaml")
    cfg2 = load_config(RunConfig, None, base={"tracker": section})
    assert cfg2.tracker.name == "botsort"
    assert cfg.tracker.name in TRACKERS


def test_topology_example_loads():
    from pipeline.association.topology import load_topology

    topo = load_topology(CONFIGS / "topology_example.yaml")
    assert topo.cameras == ("entrance", "hall", "corridor", "stairs")
    assert topo.offset("corridor") == 2.5
    assert topo.views_overlap("entrance", "hall")
    assert topo.transitions[("entrance", "hall")] == (0.0, 30.0)
    assert topo.transitions[("hall", "entrance")] == (0.0, 30.0)  # bidirectional


def test_trunk_tuning_config_loads():
    from reid.trunk_tune import TuneConfig

    cfg = load_config(TuneConfig, CONFIGS / "reid" / "tune" / "trunk_robust.yaml")
    assert cfg.epochs >= 1 and cfg.data[0].name == "combined"
    sources = cfg.data[0].options["sources"]
    assert {"VIPeR"} <= set(next(s for s in sources if s["name"] == "peta")["exclude"])   # never VIPeR
    assert not any(s["name"] in ("viper", "epfl", "pets09") for s in sources)


def test_a_run_below_the_motion_models_frame_rate_without_the_motion_buffer_is_told_so(caplog):
    import dataclasses

    from pipeline.run import runner

    assert TrackerConfig().motion_buffer == 2.0
    plain = dataclasses.replace(RunConfig(), tracker=TrackerConfig(motion_buffer=0.0))
    runner._SLOW_RATES_TOLD.clear()
    with caplog.at_level("WARNING", logger="pipeline.run.runner"):
        runner.build_tracker_for(plain, fps=7.0)                         # the tracker holds: nothing said
        assert runner.build_tracker_for(RunConfig(), fps=3.5).iou_buffer > 0   # the default widens: nothing said
        assert not caplog.records
        for _ in range(2):                                               # two cameras: said once
            assert runner.build_tracker_for(plain, fps=3.5).iou_buffer == 0.0
    assert len(caplog.records) == 1 and "tracker.motion_buffer 2" in caplog.text

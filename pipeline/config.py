"""Settings of ``mcmt run`` / ``mcmt associate``: :class:`RunConfig` (defaults mirror configs/run.yaml) and its
loader. The per-camera stage's sections are in :mod:`pipeline.run.config`, the association's in
:mod:`pipeline.association.config`; this module joins them, so that ``pipeline.run`` needs nothing of the
association."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

from core.config import load_config
from pipeline.association.config import AssociationConfig
from pipeline.run.config import DetectorConfig, OutputConfig, ReIDRunConfig, ScaleConfig, VideoConfig
from trackers.config import TrackerConfig


@dataclass(frozen=True)
class RunConfig:
    video: VideoConfig = field(default_factory=VideoConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    reid: ReIDRunConfig = field(default_factory=ReIDRunConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    association: AssociationConfig = field(default_factory=AssociationConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    scale: ScaleConfig = field(default_factory=ScaleConfig)
    calibration: Optional[str] = None  # camera calibration YAML: image -> ground homographies per camera
    #                                    (pipeline/formats/calibration.py); null: no ground plane


def load_run_config(path: str | Path | None = None, overrides: Sequence[str] = (),
                    base: Optional[dict] = None) -> RunConfig:
    """A RunConfig from ``base`` (e.g. a run's run.json settings), a YAML file and ``a.b=value`` overrides."""
    return load_config(RunConfig, path, overrides, base=base)

"""Sections of the per-camera stage's settings (defaults mirror configs/run.yaml); :class:`RunConfig`, which
joins them with the tracker's and the association's, is in :mod:`pipeline.config`."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Union



@dataclass(frozen=True)
class VideoConfig:
    stride: int = 1                    # analyse every k-th frame
    offsets: dict[str, float] = field(default_factory=dict)  # camera -> time offset (s)
    max_frames: Optional[int] = None   # stop each camera after this many analysed frames
    default_fps: float = 25.0          # frame folders without a seqinfo.ini (frameRate), broken containers
    sharpen: Union[str, float, bool] = "auto"  # auto: unsharp-mask blurred cameras by their blur index | off |
    #                                    an amount for every camera (pipeline/run/sharpness.py)
    sharpen_from: float = 0.4          # auto: the blur index (0 sharp .. 1 blurred) above which a camera is sharpened

    def __post_init__(self):
        if self.sharpen is False:                 # YAML reads a bare off as false
            object.__setattr__(self, "sharpen", "off")
        amount = _is_number(self.sharpen) and float(self.sharpen) >= 0
        if self.sharpen is True or not (self.sharpen in ("auto", "off") or amount):
            raise ValueError(f"video.sharpen must be auto, off or an amount >= 0, got {self.sharpen!r}")
        if not 0 <= self.sharpen_from < 1:
            raise ValueError(f"video.sharpen_from must be in [0, 1), got {self.sharpen_from}")
        if self.stride < 1:
            raise ValueError(f"video.stride must be >= 1, got {self.stride}")
        if self.max_frames is not None and self.max_frames < 1:
            raise ValueError(f"video.max_frames must be >= 1 or null, got {self.max_frames}")
        if self.default_fps <= 0:
            raise ValueError(f"video.default_fps must be > 0, got {self.default_fps}")


@dataclass(frozen=True)
class DetectorConfig:
    model: str = "default"             # embedded (offline) | YOLOX / SSD .onnx/.xml | anything ultralytics loads
    conf: float = 0.1                  # keep low-score boxes for ByteTrack's second stage
    iou: float = 0.7
    imgsz: int = 640                   # ultralytics models; YOLOX / SSD use their network input size
    device: str = "auto"               # auto | cpu | cuda | cuda:N
    batch: int = 8                     # frames per predict call (all cameras' frames of a step go together)
    threads: int = 0                   # CPU inference threads; 0: auto (cores left by a CPU ReID, >= 1)
    score_scale: Optional[float] = None  # --detections: divide file scores by this (null: by the max if > 1)

    def __post_init__(self):
        if self.threads < 0:
            raise ValueError(f"detector.threads must be >= 0 (0: auto), got {self.threads}")
        _check_ranges("detector", self, unit=("conf", "iou"), positive=("imgsz", "batch"))
        if self.score_scale is not None and not self.score_scale > 0:
            raise ValueError(f"detector.score_scale must be > 0 or null, got {self.score_scale}")


@dataclass(frozen=True)
class ReIDRunConfig:
    checkpoint: str = "default"        # our .pt, "default", an .onnx or OpenVINO .xml; "none": no ReID
    device: str = "auto"
    batch_size: int = 32
    threads: int = 0                   # CPU threads of the ReID network; 0: auto (half the cores, at least 1)
    every_k_frames: int = 3            # embed a track at most every k analysed frames
    min_hits: int = 2                  # a track is embedded once it has this many boxes (confirmed)
    min_box_height: int = 40
    min_score: float = 0.5
    max_overlap: float = 0.1           # skip crops overlapped by another box more than this (IoA)
    few_features: int = 3              # a track with fewer features than this so far is embedded from ...
    few_score: float = 0.45            # ... this score up (cameras that score people low; 0 features: off)
    every_track: bool = True           # a confirmed track none of whose crops passed the three above is
    #                                    embedded once, on its best crop, when it ends
    gallery_size: int = 10             # best features kept per tracklet
    thumbnails: int = 4                # thumbnails kept per tracklet (and per identity and camera)
    colour_constancy: bool = False     # divide each camera's crops by its colour response (pipeline/run/colour.py)

    def __post_init__(self):
        if self.threads < 0:
            raise ValueError(f"reid.threads must be >= 0 (0: auto), got {self.threads}")
        _check_ranges("reid", self, unit=("min_score", "max_overlap", "few_score"),
                      positive=("batch_size", "every_k_frames", "gallery_size"),
                      non_negative=("min_hits", "min_box_height", "thumbnails", "few_features"))
        if self.few_features > self.gallery_size:
            raise ValueError(f"reid.few_features ({self.few_features}) must be at most reid.gallery_size "
                             f"({self.gallery_size}): a track's features are counted in its gallery")


@dataclass(frozen=True)
class OutputConfig:
    save_video: bool = False           # videos/<camera>.mp4 with global ids drawn
    report: bool = True                # report.html
    interpolate: bool = True           # boxes of the frames between two boxes of one identity in a camera,
    #                                    interpolated: the frames video.stride skipped, and gaps of at most
    interpolate_seconds: float = 2.0   # this long (pipeline/outputs/interpolate.py; 0: the stride's only)

    def __post_init__(self):
        if self.interpolate_seconds < 0:
            raise ValueError(f"output.interpolate_seconds must be >= 0, got {self.interpolate_seconds}")


@dataclass(frozen=True)
class ScaleConfig:
    """How the per-camera stage is spread out (pipeline/run/backend.py)."""
    backend: str = "local"             # local: this process | ray: Ray tasks (pip install -e ".[ray]")
    ray_address: Optional[str] = None  # null: a local Ray on this machine; "auto" / host:port: a cluster
    workers: int = 0                   # local Ray only: CPU slots (0: all cores)
    cpus_per_task: float = 1.0         # Ray resources of one task (its CPU threads: rounded up)
    gpus_per_task: float = 0.0         # fractional GPUs per task (e.g. 0.25): tasks land on GPU workers
    chunk_minutes: float = 0.0         # cut each video into chunks of this length (0: one task per camera)
    overlap_seconds: float = 2.0       # chunks overlap by this much; tracks are stitched in the overlap
    max_retries: int = 3               # Ray retries of a failed or killed task (it resumes from the cache)

    def __post_init__(self):
        if self.backend not in BACKENDS:
            raise ValueError(f"scale.backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.workers < 0 or self.cpus_per_task <= 0 or self.gpus_per_task < 0 or self.max_retries < 0:
            raise ValueError("scale: workers >= 0, cpus_per_task > 0, gpus_per_task >= 0 and max_retries >= 0")
        if self.chunk_minutes < 0 or self.overlap_seconds < 0:
            raise ValueError("scale.chunk_minutes and scale.overlap_seconds must be >= 0")


BACKENDS = ("local", "ray")


def _check_ranges(section: str, cfg, unit: tuple = (), positive: tuple = (), non_negative: tuple = ()) -> None:
    """ValueError naming the first field of ``cfg`` out of its range: ``unit`` in [0, 1], ``positive``
    >= 1 (counts), ``non_negative`` >= 0 (NaN is out of every range)."""
    for names, ok, rule in ((unit, lambda v: 0 <= v <= 1, "in [0, 1]"), (positive, lambda v: v >= 1, ">= 1"),
                            (non_negative, lambda v: v >= 0, ">= 0")):
        for name in names:
            if not ok(getattr(cfg, name)):
                raise ValueError(f"{section}.{name} must be {rule}, got {getattr(cfg, name)}")


def _is_number(value) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return not isinstance(value, bool)

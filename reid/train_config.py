"""Configuration of ``mcmt train-reid`` (frozen dataclasses; YAML via ``core.config``).

Sections: ``model``, ``data``, ``loss``, ``optim``, ``schedule``, ``eval``, ``distill`` (optional,
:mod:`reid.distill`) plus a few run-level keys.
Unknown keys and wrong types are errors (``core.config.from_dict``). The defaults are the
paper's Market-1501 settings (``configs/reid/paper_market1501.yaml`` spells them out).

Learning-rate schedule (``schedule.decay``):
- ``exp`` (the paper: "decayed at the 160th epoch according to the exp decay rule of PyTorch";
  the rate is not printed, we follow Hermans et al.'s schedule for the batch-hard triplet loss):
  constant ``optim.lr`` up to and including 0-based epoch ``decay_start``, then multiplied by
  ``gamma = decay_final ** (1 / (epochs - decay_start))`` every epoch (PyTorch's ExponentialLR), so
  that it would reach ``lr * decay_final`` at the end of training.
- ``step``: multiplied by ``gamma`` at every epoch in ``milestones``.
- ``none``: constant.
An optional linear warm-up over ``warmup_epochs`` comes first in every mode.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Optional


@dataclass(frozen=True)
class ModelSection:
    backbone: str = "resnet50"             # see reid.backbones.BACKBONES
    feat_dim: int = 256                    # size of each FC feature
    pretrained: str = "imagenet"           # imagenet | none | path to a state dict
    input_size: tuple[int, int] = (384, 128)  # (height, width)
    # paper fidelity (reid/model.py); the defaults keep the original five-feature network
    part_whole_feature: bool = False       # f_I^P: part branch whole-map identity/attribute feature
    global_attributes: Literal["global", "all"] = "global"  # what the global attribute head predicts
    pooling: Literal["max", "avg"] = "max"  # region pooling: the paper's max; avg for OSNet's pretraining
    # backbone "ir_map": a frozen OpenVINO IR trunk (reid/ir_trunk.py); the heads train on its cached maps
    trunk: str = ""                        # the IR .xml (relative: cwd, then reid/weights/); "" = none
    trunk_embedding: Literal["ir", "heads", "concat"] = "concat"  # appearance feature at inference
    trunk_cache: str = "runs/reid/trunk-cache"  # cached trunk features of the training images
    colour_features: bool = False          # ir_map: crop halves' colour descriptors for the colour heads (reid/colour.py)

    def __post_init__(self):
        if self.feat_dim < 1 or min(self.input_size) < 16:
            raise ValueError(f"model: feat_dim must be >= 1 and input_size >= 16 px, got "
                             f"{self.feat_dim}, {self.input_size}")


@dataclass(frozen=True)
class DatasetSpec:
    name: str                              # see reid.data.DATASETS
    root: str = ""                         # data folder; empty -> --data-root; relative -> under --data-root
    options: dict[str, Any] = field(default_factory=dict)  # extra build_dataset(...) keyword arguments


@dataclass(frozen=True)
class DataSection:
    train: tuple[DatasetSpec, ...] = (DatasetSpec("market1501"),)  # several -> combined (common schema)
    num_ids: int = 32                      # P identities per batch
    num_instances: int = 4                 # K images per identity
    workers: int = 2                       # DataLoader worker processes (0 = in the main process)
    flip: bool = True                      # random horizontal flip
    random_erasing: float = 0.0            # probability of random erasing (0 = off)
    low_resolution: float = 0.0            # probability of shrinking an image first (reid.data.transforms)
    low_heights: tuple[int, int] = (40, 96)  # ... to a random height in this range (pixels)
    attributes: bool = True                # train the attribute heads when the data has a schema

    def __post_init__(self):
        if not self.train:
            raise ValueError("data.train: give at least one data set, e.g. [{name: market1501}]")
        if self.num_ids < 2 or self.num_instances < 1:
            raise ValueError(f"data: need num_ids >= 2 and num_instances >= 1 for P x K batches, got "
                             f"{self.num_ids} x {self.num_instances}")
        if not 0.0 <= self.random_erasing <= 1.0:
            raise ValueError(f"data.random_erasing must be a probability in [0, 1], got {self.random_erasing}")
        if not 0.0 <= self.low_resolution <= 1.0:
            raise ValueError(f"data.low_resolution must be a probability in [0, 1], got {self.low_resolution}")
        if len(self.low_heights) != 2 or not 8 <= self.low_heights[0] <= self.low_heights[1]:
            raise ValueError(f"data.low_heights must be [low, high] pixels with 8 <= low <= high, "
                             f"got {list(self.low_heights)}")


@dataclass(frozen=True)
class LossSection:
    lambda_attr: float = 1.0               # λ1
    lambda_trip: float = 1.0               # λ2
    margin: float = 1.2                    # triplet margin
    label_smoothing: float = 0.0
    use_id_loss: bool = True               # ablation switches (paper Table 8)
    use_attr_loss: bool = True
    identification: bool = True
    verification: bool = True
    attr_reduction: Literal["mean", "sum"] = "mean"  # sum: eq. 6's sum over attributes (reid/losses.py)
    attr_weighting: Literal["none", "frequency", "balanced"] = "none"  # label-imbalance weights (reid/losses.py)
    # per-group weighting instead of attr_weighting, e.g. {age: balanced} (reid.losses.group_label_weights)
    attr_weighting_groups: dict[str, Literal["none", "frequency", "balanced"]] = field(default_factory=dict)


@dataclass(frozen=True)
class OptimSection:
    name: Literal["sgd", "adam", "adamw"] = "sgd"
    lr: float = 2e-4
    momentum: float = 0.9                  # sgd only
    nesterov: bool = False                 # sgd only
    weight_decay: float = 5e-4
    betas: tuple[float, float] = (0.9, 0.999)  # adam / adamw
    # learning-rate factor of the pretrained part (trunk + both branches); the heads take optim.lr.
    # 0 freezes it, batch-norm statistics included (fine-tuning a ReID backbone on little data)
    backbone_lr_mult: float = 1.0
    # "frozen": the pretrained part's batch norms keep their statistics (eval mode) while its weights
    # learn. Batch statistics of small PK batches with random erasing drift far from test images:
    # after one epoch they cost the OSNet recipe 7 VIPeR rank-1 points (35.4 against 42.1, split 0)
    backbone_bn: Literal["train", "frozen"] = "train"

    def __post_init__(self):
        if self.lr <= 0:
            raise ValueError(f"optim.lr must be > 0, got {self.lr}")
        if self.backbone_lr_mult < 0:
            raise ValueError(f"optim.backbone_lr_mult must be >= 0, got {self.backbone_lr_mult}")


@dataclass(frozen=True)
class ScheduleSection:
    epochs: int = 320
    decay: Literal["exp", "step", "none"] = "exp"
    decay_start: int = 160                 # exp: first epoch (0-based) with a decayed lr
    decay_final: float = 1e-3              # exp: lr factor reached at the last epoch
    milestones: tuple[int, ...] = ()       # step
    gamma: float = 0.1                     # step
    warmup_epochs: int = 0
    iters_per_epoch: int = 0               # > 0: at most this many batches per epoch (quick runs)

    def __post_init__(self):
        if self.epochs < 1:
            raise ValueError(f"schedule.epochs must be >= 1, got {self.epochs}")
        if not 0.0 < self.decay_final <= 1.0:
            raise ValueError(f"schedule.decay_final must be in (0, 1], got {self.decay_final}")


@dataclass(frozen=True)
class EvalSection:
    every: int = 20                        # evaluate every N epochs and after the last (0 = only at the end)
    dataset: Optional[DatasetSpec] = None  # None -> query/gallery of the first training data set
    batch_size: int = 64
    rerank: bool = False
    enabled: bool = True


@dataclass(frozen=True)
class DistillSection:
    teacher: str = ""                      # frozen teacher model (.onnx / .xml / .pt); empty = off
    weight_feat: float = 1.0               # 1 - cos(projected student, teacher)
    weight_rel: float = 10.0               # batch cosine-similarity matrices (see reid.distill)

    def __post_init__(self):
        if self.weight_feat < 0 or self.weight_rel < 0:
            raise ValueError(f"distill weights must be >= 0, got {self.weight_feat}, {self.weight_rel}")


@dataclass(frozen=True)
class TrainConfig:
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    loss: LossSection = field(default_factory=LossSection)
    optim: OptimSection = field(default_factory=OptimSection)
    schedule: ScheduleSection = field(default_factory=ScheduleSection)
    eval: EvalSection = field(default_factory=EvalSection)
    distill: DistillSection = field(default_factory=DistillSection)
    seed: int = 0
    device: str = "auto"                   # auto | cpu | cuda | cuda:N
    amp: bool = True                       # mixed precision on CUDA (ignored on CPU)
    out: str = "runs/reid"                 # output folder (checkpoints, log); --out overrides
    log_every: int = 10                    # progress-bar / log refresh in iterations
    deterministic: bool = False            # torch.use_deterministic_algorithms (slower on GPU)

"""Training loop of the multi-task ReID network (``mcmt train-reid``).

One readable loop: P x K batches (:class:`reid.data.sampler.PKSampler`), the paper's transforms,
``L = L_id + λ1 L_attr + λ2 L_trip`` (:class:`reid.losses.MultiTaskLoss`), SGD/Adam/AdamW with the
paper's exponential decay, AMP on CUDA, a progress bar with running losses, periodic evaluation
(CMC / mAP / attributes through :mod:`reid.evaluate`) and a checkpoint after every epoch.

Reproducibility: every epoch re-seeds python/numpy/torch and the sampler from ``(seed, epoch)``;
the optimizer, scheduler, sampler, AMP and RNG states are saved with each checkpoint
(:mod:`reid.train_state`), so ``resume`` continues bit for bit where training stopped.

Multi-GPU: start with ``torchrun --nproc_per_node N -m pipeline.cli train-reid ...``; every process
trains on its share of each epoch's batches under DistributedDataParallel (nccl on GPUs, gloo on
CPUs); rank 0 evaluates and writes checkpoints.
"""
from __future__ import annotations

import itertools
import logging
import math
import os
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from core.config import to_dict
from core.atomic import atomic_write_json
from core.errors import UserError
from reid import train_state as ts
from reid.train_config import TrainConfig
from reid.trunk_cache import cached_dataset, open_trunk, trunk_spec

log = logging.getLogger(__name__)


class Trainer:
    """Holds the model, data and optimisation state of one training run (see the module docstring)."""

    def __init__(self, cfg: TrainConfig, *, data_root: str | None = None, out_dir: str | None = None,
                 progress: bool = True):
        from reid.data.image_dataset import ImageDataset, check_train_set
        from reid.data.sampler import PKSampler
        from reid.data.transforms import TrainTransform
        from reid.model import build_model

        self.cfg = cfg
        self.data_root = data_root
        self.dist = ts.init_distributed(cfg.device)
        self.device = ts.resolve_device(cfg.device, self.dist)
        self.amp = bool(cfg.amp and self.device.type == "cuda")
        self.out = Path(out_dir or cfg.out)
        self.progress = progress and self.dist.is_main
        self.data = ts.load_train_data(cfg.data, data_root)
        schema = self.data.schema if cfg.data.attributes else None
        check_train_set(self.data.train, schema, f"training set of {self.data.name}")
        ts.check_identities(self.data.train)
        self.eval_data = self._eval_data(data_root)
        torch.manual_seed(cfg.seed)
        trunk = open_trunk(cfg.model) if cfg.model.trunk else None     # OpenVINO IR trunk (reid/ir_trunk.py)
        self.model = build_model(cfg.model.backbone, num_ids=len({s.pid for s in self.data.train}),
                                 schema=schema, feat_dim=cfg.model.feat_dim, pretrained=cfg.model.pretrained,
                                 input_size=cfg.model.input_size, part_whole_feature=cfg.model.part_whole_feature,
                                 global_attributes=cfg.model.global_attributes, pooling=cfg.model.pooling,
                                 external_trunk=trunk_spec(cfg.model, trunk) if trunk else None,
                                 colour_features=cfg.model.colour_features).to(self.device)
        mcfg = self.model.config
        transform = TrainTransform(tuple(mcfg["input_size"]), tuple(mcfg["mean"]), tuple(mcfg["std"]),
                                   flip=0.5 if cfg.data.flip else 0.0, random_erasing=cfg.data.random_erasing,
                                   low_resolution=cfg.data.low_resolution, low_heights=cfg.data.low_heights)
        self.distill, teacher = self._distillation(cfg, self.model)
        self.dataset = ImageDataset(self.data.train, transform, schema.num_groups if schema else 0,
                                    targets=teacher)
        if trunk is not None:   # the heads train on the trunk's cached maps instead of images
            self.dataset = cached_dataset(self.dataset, trunk, cfg, self.progress)
        self.sampler = PKSampler(self.dataset.labels, cfg.data.num_ids, cfg.data.num_instances, seed=cfg.seed,
                                 rank=self.dist.rank, world_size=self.dist.world_size)
        self.loader_gen = torch.Generator()
        self.loader = DataLoader(self.dataset, batch_size=self.sampler.batch_size, sampler=self.sampler,
                                 drop_last=True, num_workers=cfg.data.workers, generator=self.loader_gen,
                                 pin_memory=self.device.type == "cuda",
                                 persistent_workers=False)
        self.loss_fn = self._loss(cfg, schema)
        self.optimizer = ts.build_optimizer(self._param_groups(cfg), cfg.optim)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda e: ts.lr_factor(e, cfg.schedule))
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.net = self._wrap_ddp()
        self.epoch = 0
        self.history: list[dict] = []
        self.best: dict | None = None

    def _param_groups(self, cfg: TrainConfig) -> list[dict]:
        """Heads (and distillation projections) at ``optim.lr``, the pretrained part at
        ``lr * optim.backbone_lr_mult``; a factor of 0 freezes that part (see ``_frozen``)."""
        backbone = {id(p) for m in self.model.backbone_modules() for p in m.parameters()}
        heads = [p for p in self.model.parameters() if id(p) not in backbone]
        heads += list(self.distill.parameters()) if self.distill else []
        mult = cfg.optim.backbone_lr_mult
        if mult == 0:
            for m in self.model.backbone_modules():
                m.requires_grad_(False)
            return [{"params": heads}]
        if mult == 1:                                # one group, in the order older checkpoints saved
            return [{"params": list(self.model.parameters()) + (list(self.distill.parameters()) if self.distill else [])}]
        return [{"params": heads},
                {"params": [p for p in self.model.parameters() if id(p) in backbone], "lr": cfg.optim.lr * mult}]

    def _set_train_mode(self) -> None:
        self.net.train()
        if self.cfg.optim.backbone_lr_mult == 0:    # frozen: its batch norms keep their statistics
            for m in self.model.backbone_modules():
                m.eval()
        elif self.cfg.optim.backbone_bn == "frozen":
            for part in self.model.backbone_modules():
                for m in part.modules():
                    if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                        m.eval()

    @property
    def batches_per_epoch(self) -> int:
        """The sampler's batches, or ``schedule.iters_per_epoch`` of them when that is set (> 0)."""
        n = self.sampler.num_batches
        return min(n, self.cfg.schedule.iters_per_epoch) if self.cfg.schedule.iters_per_epoch > 0 else n

    # ---- setup helpers -------------------------------------------------------------------------
    def _eval_data(self, data_root):
        if not self.cfg.eval.enabled or not self.dist.is_main:
            return None
        if self.cfg.eval.dataset is not None:
            return ts.load_dataset(self.cfg.eval.dataset, data_root)
        if self.data.query and self.data.gallery:
            return self.data
        log.warning("%s has no query/gallery split: no evaluation during training (set eval.dataset)",
                    self.data.name)
        return None

    def _loss(self, cfg: TrainConfig, schema):
        """The multi-task loss; with ``loss.attr_weighting`` (or ``attr_weighting_groups``) its label weights
        come from the training samples' attribute frequencies (saved with the training state, see ``save``)."""
        import numpy as np

        from reid.losses import MultiTaskLoss, attribute_frequencies

        L = cfg.loss
        freq = None
        if {L.attr_weighting, *L.attr_weighting_groups.values()} != {"none"} and schema is not None:
            missing = np.full(schema.num_groups, -1, np.int64)
            freq = attribute_frequencies(np.stack([missing if s.attrs is None else np.asarray(s.attrs)
                                                   for s in self.data.train]), schema)
        return MultiTaskLoss(schema, L.lambda_attr, L.lambda_trip, L.margin, L.label_smoothing,
                             L.use_id_loss, L.use_attr_loss, L.identification, L.verification,
                             attr_reduction=L.attr_reduction, attr_weighting=L.attr_weighting, attr_freq=freq,
                             attr_weighting_groups=L.attr_weighting_groups)

    def _distillation(self, cfg: TrainConfig, model):
        """(DistillLoss, teacher features (N, D)) when ``distill.teacher`` is set, else (None, None)."""
        if not cfg.distill.teacher:
            return None, None
        from reid.distill import DistillLoss, centred, teacher_features

        feats = centred(teacher_features([s.path for s in self.data.train], cfg.distill.teacher, self.out))
        loss = DistillLoss(model.embedding_dim, feats.shape[1], cfg.distill.weight_feat, cfg.distill.weight_rel)
        return loss.to(self.device), feats

    def _wrap_ddp(self):
        if not self.dist.enabled:
            return self.model
        from torch.nn.parallel import DistributedDataParallel as DDP

        L = self.cfg.loss
        partial = not (L.use_id_loss and L.use_attr_loss and L.identification and L.verification)
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DDP(self.model, device_ids=ids, find_unused_parameters=partial or self.model.schema is None)

    # ---- resume --------------------------------------------------------------------------------
    def resume(self, path: str | os.PathLike) -> None:
        """Load model, optimizer, scheduler, sampler, scaler and RNG states of a checkpoint."""
        from reid.checkpoint import load_checkpoint

        path = Path(path)
        model, meta = load_checkpoint(path, map_location="cpu")
        state = ts.read_train_state(path, meta)
        if model.config != self.model.config:
            raise UserError(f"cannot resume from {path}: its model ({model.config['backbone']}, "
                            f"{model.config['num_ids']} ids) differs from this configuration's")
        if (self.distill is not None) != ("distill" in state):
            raise UserError(f"cannot resume from {path}: it was trained with{'out' if self.distill else ''} "
                            "distillation; resume with the configuration it was trained with")
        self.model.load_state_dict(model.state_dict())
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.sampler.load_state_dict(state["sampler"])
        self.scaler.load_state_dict(state["scaler"])
        if self.distill is not None:
            self.distill.load_state_dict(state["distill"])
        if "attr_freq" in state and self.loss_fn.attr_freq is not None:
            self.loss_fn.set_frequencies(state["attr_freq"])   # the label weights the run started with
        ts.set_rng_states(state["rng"])
        self.epoch = int(state["epoch"])
        self.history = list((meta.get("extra") or {}).get("history") or [])
        self.best = (meta.get("extra") or {}).get("best")
        log.info("resumed from %s at epoch %d", path, self.epoch)

    # ---- the loop ------------------------------------------------------------------------------
    def fit(self, until: int | None = None) -> dict:
        """Train until ``schedule.epochs`` (or stop after epoch ``until``, as an interruption would);
        returns the last record of the history."""
        cfg = self.cfg
        stop = cfg.schedule.epochs if until is None else min(until, cfg.schedule.epochs)
        if self.dist.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            log.info("%s\ntraining %s on %s: %d ids, %d batches/epoch of %d x %d, %s%s",
                     self.data.summary(), cfg.model.backbone, self.device, self.dataset.num_ids,
                     self.batches_per_epoch, cfg.data.num_ids, cfg.data.num_instances,
                     cfg.optim.name, " (AMP)" if self.amp else "")
        if self.epoch >= cfg.schedule.epochs:
            log.info("nothing to do: already trained %d of %d epochs", self.epoch, cfg.schedule.epochs)
        while self.epoch < stop:
            record = self.train_epoch()
            if self._eval_due():
                record["eval"] = self.evaluate(epochs_done=self.epoch + 1)
            self.history.append(record)
            self.epoch += 1
            self.scheduler.step()
            if self.dist.is_main:
                self.save()
            self._barrier()
        return self.history[-1] if self.history else {}

    def _eval_due(self) -> bool:
        every, last = self.cfg.eval.every, self.epoch + 1 == self.cfg.schedule.epochs
        return self.eval_data is not None and (last or (every > 0 and (self.epoch + 1) % every == 0))

    def train_epoch(self) -> dict:
        """One pass over the sampler's batches; returns mean losses, lr and time."""
        seed = ts.seed_epoch(self.cfg.seed, self.epoch, self.dist.rank)
        self.loader_gen.manual_seed(seed)
        self.sampler.set_epoch(self.epoch)
        self._set_train_mode()
        sums = {"loss": 0.0, "id": 0.0, "attr": 0.0, "trip": 0.0}
        if self.distill is not None:
            sums.update(feat=0.0, rel=0.0)
        n, t0 = 0, time.time()
        lr = self.optimizer.param_groups[0]["lr"]
        total = self.batches_per_epoch
        bar = _progress(itertools.islice(self.loader, total), f"epoch {self.epoch + 1}/{self.cfg.schedule.epochs}",
                        self.progress, total)
        for imgs, labels, _cams, attrs, *teacher in bar:
            loss, parts = self.step(imgs, labels, attrs, teacher[0] if teacher else None)
            n += 1
            for k, v in (("loss", loss), *parts.items()):
                sums[k] += v
            if self.progress and (n % max(1, self.cfg.log_every) == 0 or n == total):
                bar.set_postfix({k: f"{v / n:.3f}" for k, v in sums.items()}, refresh=False)
        means = {k: v / max(n, 1) for k, v in sums.items()}
        record = {"epoch": self.epoch + 1, "lr": lr, "batches": n, "time_s": round(time.time() - t0, 2), **means}
        if self.dist.is_main:
            log.info("epoch %d/%d  loss %.4f (%s)  lr %.2e  %.1fs", self.epoch + 1, self.cfg.schedule.epochs,
                     means["loss"], " ".join(f"{k} {v:.4f}" for k, v in means.items() if k != "loss"), lr,
                     record["time_s"])
        return record

    def step(self, imgs, labels, attrs, teacher=None) -> tuple[float, dict]:
        """One optimisation step on a batch; returns the total loss and its parts as floats.
        ``teacher``: (N, D) teacher embeddings of the batch (distillation only)."""
        dev = self.device
        imgs, labels, attrs = imgs.to(dev, non_blocking=True), labels.to(dev), attrs.to(dev)
        with torch.autocast(dev.type, dtype=torch.float16, enabled=self.amp):
            out = self.net(imgs)
            loss, parts = self.loss_fn(out, labels, attrs)
            if self.distill is not None and teacher is not None:
                from reid.model import train_embedding

                student = train_embedding(out)
                kd, kd_parts = self.distill(student.float(), teacher.to(dev))
                loss = loss + kd
                parts = {**parts, **kd_parts}
        value = float(loss.detach())
        if not math.isfinite(value):
            raise RuntimeError(f"the loss became {value} at epoch {self.epoch + 1}: lower optim.lr "
                               "(or disable amp) and resume from the last checkpoint")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return value, parts

    def evaluate(self, epochs_done: int | None = None) -> dict:
        """CMC / mAP / attribute accuracy of the current model on the evaluation data (rank 0)."""
        done = self.epoch if epochs_done is None else epochs_done
        from reid.encoder import ReIDEncoder
        from reid.evaluate import RerankParams, evaluate_split

        enc = ReIDEncoder.from_model(self.model, None, device=str(self.device),
                                     batch_size=self.cfg.eval.batch_size)
        scores, _ = evaluate_split(enc, self.eval_data, rerank=RerankParams(self.cfg.eval.rerank),
                                   batch_size=self.cfg.eval.batch_size)
        self._set_train_mode()
        out = {k: round(scores[k], 3) for k in ("rank1", "rank5", "rank10", "mAP")}
        if scores.get("attributes"):
            out["attr_mean"] = round(scores["attributes"]["mean"], 3)
        log.info("eval on %s after %d epoch(s): rank-1 %.2f  rank-5 %.2f  mAP %.2f%s", self.eval_data.name,
                 done, out["rank1"], out["rank5"], out["mAP"],
                 f"  attributes {out['attr_mean']:.2f}" if "attr_mean" in out else "")
        if self.best is None or out["rank1"] > self.best["rank1"]:
            self.best = {**out, "epoch": done}
        return out

    # ---- checkpoints ---------------------------------------------------------------------------
    def save(self) -> Path:
        """Write the training state, then ``last.pt`` (model + pointer to the state), then clean up."""
        from reid.checkpoint import save_checkpoint

        self.out.mkdir(parents=True, exist_ok=True)
        name = ts.state_file_name(self.epoch)
        ts.atomic_torch_save({"epoch": self.epoch, "optimizer": self.optimizer.state_dict(),
                              "scheduler": self.scheduler.state_dict(), "sampler": self.sampler.state_dict(),
                              "scaler": self.scaler.state_dict(), "rng": ts.rng_states(),
                              **({"distill": self.distill.state_dict()} if self.distill else {}),
                              **({"attr_freq": self.loss_fn.attr_freq} if self.loss_fn.attr_freq is not None else {})},
                             self.out / name)
        metrics = next((h["eval"] for h in reversed(self.history) if "eval" in h), None)
        extra = {"epoch": self.epoch, "train_state": name, "history": self.history, "best": self.best,
                 "data": self.data.describe(), "world_size": self.dist.world_size,
                 "data_root": str(Path(self.data_root).resolve()) if self.data_root else None}
        path = save_checkpoint(self.out / "last.pt", self.model, train_config=to_dict(self.cfg),
                               metrics=metrics, extra=extra)
        for old in self.out.glob("last.state-*.pt"):
            if old.name != name:
                old.unlink(missing_ok=True)
        _write_json(self.out / "history.json", {"history": self.history, "best": self.best})
        return path

    def _barrier(self) -> None:
        if self.dist.enabled:
            import torch.distributed as dist

            dist.barrier()

    def close(self) -> None:
        if self.dist.enabled:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()


def _progress(iterable, desc: str, enabled: bool, total: int):
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, total=total, disable=not enabled, leave=False, dynamic_ncols=True,
                unit="batch")


def _write_json(path: Path, obj) -> None:
    atomic_write_json(path, obj)


def train(cfg: TrainConfig, *, data_root: str | None = None, out_dir: str | None = None,
          resume: str | None = None, progress: bool = True) -> dict:
    """Train (or continue) a model; returns the last history record. Checkpoints: ``<out>/last.pt``."""
    trainer = Trainer(cfg, data_root=data_root, out_dir=out_dir, progress=progress)
    try:
        if resume:
            trainer.resume(resume)
        return trainer.fit()
    finally:
        trainer.close()

"""The supernet training loop: one step = the sampler's tasks on one batch.

Labelled tasks learn with cross-entropy (label smoothing 0.1); KD tasks
learn from the largest subnet's detached soft output (in-place
distillation), which is computed first in every step that has KD tasks.
Semi-supervised (``labeled_fraction < 1``): the labels of all but a
stratified fraction of the training split are hidden; unlabelled images
enter only the KD term (every sampled subnet matches the largest subnet's
prediction on them), labelled ones both terms.

Deterministic for a seed: data order is seeded by (seed, epoch), subnets by
(seed, step). A checkpoint is written after every epoch — weights and
optimizer state as safetensors, the rest as JSON; no pickle — and
``resume=True`` continues from it exactly.
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..data import Dataset
from ..graph import subnet_cost
from ..poolfile import atomic_write_bytes
from ..space import SearchSpace
from .samplers import Sampler, make_sampler
from .supernet import Supernet

__all__ = ["TrainConfig", "Trainer", "CHECKPOINT", "STATE"]

CHECKPOINT = "checkpoint.safetensors"
OPTIMIZER = "optimizer.safetensors"
STATE = "state.json"


@dataclass
class TrainConfig:
    space: str = "mbv3-tiny28"
    dataset: str = "mnist5k"
    sampler: str = "sandwich"
    epochs: int = 10
    batch_size: int = 64
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 4e-5
    label_smoothing: float = 0.1
    labeled_fraction: float = 1.0
    seed: int = 0
    sampler_args: dict = field(default_factory=dict)
    metric: str = "mflops"          # resource metric of PSS buckets and build-pool: mflops | latency

    def validate(self) -> None:
        if not (0.0 < self.labeled_fraction <= 1.0):
            raise ValueError(f"labeled fraction {self.labeled_fraction} must be in (0, 1]")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch size must be at least 1")
        if not (self.lr > 0):
            raise ValueError("learning rate must be positive")
        if self.metric not in METRICS:
            raise ValueError(f"unknown metric {self.metric!r}; use {' or '.join(METRICS)}")


METRICS = ("mflops", "latency")
LATENCY_TABLE = "latency_table.json"


def _save_tensors(path: str, tensors: dict[str, torch.Tensor]) -> None:
    from safetensors.torch import save
    atomic_write_bytes(path, save({k: v.detach().contiguous().cpu() for k, v in tensors.items()}))


def _load_tensors(path: str) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file
    return load_file(path)


class Trainer:
    """Owns the supernet, optimizer, sampler and data of one run directory."""

    def __init__(self, cfg: TrainConfig, data: Dataset, space: SearchSpace, out_dir: str):
        cfg.validate()
        self.cfg, self.data, self.space, self.out_dir = cfg, data, space, out_dir
        if tuple(data.image_shape[2:]) != (space.in_channels,):
            raise ValueError(f"dataset has {data.image_shape[2]} channels, space {space.name} expects {space.in_channels}")
        if data.num_classes > space.num_classes:
            raise ValueError(f"dataset has {data.num_classes} classes, space {space.name} has {space.num_classes} outputs")
        torch.manual_seed(cfg.seed)
        self.net = Supernet(space, seed=cfg.seed)
        decay, no_decay = [], []
        for n, p in self.net.params.items():
            (no_decay if n.endswith(("bias", "bn__weight")) or "__dw__t" in n else decay).append(p)
        self.opt = torch.optim.SGD([{"params": decay, "weight_decay": cfg.weight_decay},
                                    {"params": no_decay, "weight_decay": 0.0}],
                                   lr=cfg.lr, momentum=cfg.momentum, nesterov=True)
        args = dict(cfg.sampler_args)
        if cfg.sampler == "rss":
            args.setdefault("switch_every", self.steps_per_epoch)
        self._latency = None
        if cfg.sampler == "pss":
            args.setdefault("metric", self.metric)
        self.sampler: Sampler = make_sampler(cfg.sampler, space, seed=cfg.seed, **args)
        self.x = torch.from_numpy(data.x_train)
        self.y = torch.from_numpy(data.y_train)
        self.labeled = self._labeled_mask()
        self.epoch = 0
        self.step = 0
        self.history: list[dict] = []

    def latency_table(self, progress: Callable[[str], None] | None = None):
        """This device's latency table of the space: the run's own
        (``latency_table.json`` in the run folder), measured and saved there
        the first time it is needed, so a resumed run and build-pool use the
        same one."""
        if self._latency is None:
            from ..latency import LatencyTable
            path = os.path.join(self.out_dir, LATENCY_TABLE)
            if os.path.isfile(path):
                self._latency = LatencyTable.load(path, self.space)
            else:
                self._latency = LatencyTable.measure(self.space, progress=progress)
                os.makedirs(self.out_dir, exist_ok=True)
                self._latency.save(path)
        return self._latency

    def metric(self, config) -> float:
        """The run's resource metric of a subnet: MFLOPs, or predicted ms on this device."""
        if self.cfg.metric == "latency":
            return self.latency_table().predict(config)
        return subnet_cost(self.space, config).mflops

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.data.y_train) / self.cfg.batch_size)

    @property
    def total_steps(self) -> int:
        return self.steps_per_epoch * self.cfg.epochs

    def _labeled_mask(self) -> torch.Tensor:
        f = self.cfg.labeled_fraction
        y = self.data.y_train
        mask = np.zeros(len(y), bool)
        rng = np.random.default_rng(self.cfg.seed + 7)
        for c in np.unique(y):
            idx = rng.permutation(np.flatnonzero(y == c))
            mask[idx[:max(1, int(round(len(idx) * f)))]] = True
        return torch.from_numpy(mask)

    def lr_at(self, step: int) -> float:
        warm = self.steps_per_epoch   # one epoch of linear warm-up, then cosine
        if step < warm:
            return self.cfg.lr * (step + 1) / warm
        t = (step - warm) / max(1, self.total_steps - warm)
        return 0.5 * self.cfg.lr * (1 + math.cos(math.pi * t))

    # ------------------------------------------------------------------ steps
    def train_step(self, xb: torch.Tensor, yb: torch.Tensor, lab: torch.Tensor) -> dict:
        progress = self.step / self.total_steps
        prev = (self.step - 1) / self.total_steps if self.step > 0 else -1.0
        if self.sampler.sort_channels_now(prev, progress):
            self.net.sort_channels()
            self.opt.state.clear()      # momentum buffers no longer match the permuted channels
        tasks = self.sampler.tasks(self.step, progress)
        for g in self.opt.param_groups:
            g["lr"] = self.lr_at(self.step)
        self.net.train()
        self.opt.zero_grad(set_to_none=True)
        teacher = None
        out = {"loss": 0.0, "subnets": []}
        need_teacher = any(t.kd for t in tasks) or not bool(lab.all())
        ordered = sorted(tasks, key=lambda t: t.config != self.sampler.max_config)
        if need_teacher and ordered[0].config != self.sampler.max_config:
            # the step does not train the largest subnet (uniform, rss): it still teaches
            with torch.no_grad():
                teacher = F.softmax(self.net(xb, self.sampler.max_config)[:, : self.data.num_classes], dim=1)
        for t in ordered:
            logits = self.net(xb, t.config)[:, : self.data.num_classes]
            is_max = t.config == self.sampler.max_config
            if is_max and need_teacher and teacher is None:
                teacher = F.softmax(logits.detach(), dim=1)
            loss = torch.zeros(())
            if t.kd:
                loss = F.kl_div(F.log_softmax(logits, dim=1), teacher, reduction="batchmean")
            else:
                if lab.any():
                    loss = F.cross_entropy(logits[lab], yb[lab], label_smoothing=self.cfg.label_smoothing)
                if not bool(lab.all()) and teacher is not None and not is_max:
                    loss = loss + F.kl_div(F.log_softmax(logits[~lab], dim=1), teacher[~lab], reduction="batchmean")
            loss.backward()
            self.sampler.observe(t.config, float(loss.detach()), self.step, progress)
            out["loss"] += float(loss.detach())
            out["subnets"].append(t.config.id)
        self.opt.step()
        self.step += 1
        return out

    def train_epoch(self, on_step: Callable[[dict], None] | None = None) -> dict:
        n = len(self.y)
        g = torch.Generator().manual_seed(self.cfg.seed * 7919 + self.epoch)
        order = torch.randperm(n, generator=g)
        t0 = time.perf_counter()
        losses = []
        for i in range(0, n, self.cfg.batch_size):
            idx = order[i:i + self.cfg.batch_size]
            r = self.train_step(self.x[idx], self.y[idx], self.labeled[idx])
            losses.append(r["loss"])
            if on_step:
                r["images_per_s"] = (i + len(idx)) / max(1e-9, time.perf_counter() - t0)
                on_step(r)
        self.epoch += 1
        rec = {"epoch": self.epoch, "loss": float(np.mean(losses)), "seconds": time.perf_counter() - t0}
        self.history.append(rec)
        return rec

    # ------------------------------------------------------------------ eval
    @torch.no_grad()
    def evaluate(self, config, split: str = "val", calib_batches: int = 8, batch: int = 256) -> float:
        """Top-1 accuracy of a subnet on a split, BN recalibrated on training batches."""
        x, y = self.data.split(split)
        stats = self.net.recalibrate_bn(config, self.calibration_batches(calib_batches))
        bn = {k: torch.from_numpy(v) for k, v in stats.items()}
        self.net.eval()
        correct = 0
        for i in range(0, len(y), batch):
            logits = self.net(torch.from_numpy(x[i:i + batch]), config, bn_stats=bn)[:, : self.data.num_classes]
            correct += int((logits.argmax(1).numpy() == y[i:i + batch]).sum())
        return correct / len(y)

    def calibration_batches(self, n: int, batch: int = 128) -> list[torch.Tensor]:
        g = torch.Generator().manual_seed(self.cfg.seed + 12345)
        order = torch.randperm(len(self.y), generator=g)
        return [self.x[order[i * batch:(i + 1) * batch]] for i in range(min(n, math.ceil(len(self.y) / batch)))]

    # ------------------------------------------------------------------ checkpoints
    def save(self) -> None:
        os.makedirs(self.out_dir, exist_ok=True)
        tensors = {f"p.{k}": v for k, v in self.net.params.items()}
        tensors.update({f"b.{k}": v for k, v in self.net.named_buffers()})
        _save_tensors(os.path.join(self.out_dir, CHECKPOINT), tensors)
        opt = {}
        names = {id(p): k for k, p in self.net.params.items()}
        for p, st in self.opt.state.items():
            if "momentum_buffer" in st and st["momentum_buffer"] is not None:
                opt[names[id(p)]] = st["momentum_buffer"]
        _save_tensors(os.path.join(self.out_dir, OPTIMIZER), opt)
        state = {"config": asdict(self.cfg), "epoch": self.epoch, "step": self.step, "history": self.history,
                 "sampler": self.sampler.state_dict(), "space": self.space.to_dict(), "format": 1}
        atomic_write_bytes(os.path.join(self.out_dir, STATE), json.dumps(state, indent=1).encode())

    def load(self) -> None:
        path = os.path.join(self.out_dir, STATE)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no checkpoint in {self.out_dir} ({STATE} missing)")
        with open(path) as f:
            state = json.load(f)
        tensors = _load_tensors(os.path.join(self.out_dir, CHECKPOINT))
        with torch.no_grad():
            for k, p in self.net.params.items():
                p.copy_(tensors[f"p.{k}"])
            for k, b in self.net.named_buffers():
                b.copy_(tensors[f"b.{k}"])
        opt = _load_tensors(os.path.join(self.out_dir, OPTIMIZER))
        for k, p in self.net.params.items():
            if k in opt:
                self.opt.state[p]["momentum_buffer"] = opt[k].clone()
        self.epoch, self.step, self.history = state["epoch"], state["step"], state["history"]
        self.sampler.load_state_dict(state["sampler"])

"""The supernet training loop: one step = the sampler's tasks on one batch.

Labelled tasks learn with cross-entropy (label smoothing 0.1); KD tasks
learn from the largest subnet's detached soft output (in-place
distillation), which is computed first in every step that has KD tasks.
Semi-supervised (``labeled_fraction < 1``): the labels of all but a
stratified fraction of the training split are hidden, and every step draws
``labelled_share`` of its batch from the labelled images and the rest from
the unlabelled ones — two streams, so every step has labels. FixMatch
(``semi="fixmatch"``): labelled images are seen weakly augmented
(``augment.py``), unlabelled ones strongly; a teacher — an exponential
moving average of the supernet's weights, never trained itself — labels the
weak view of each unlabelled image with its largest subnet, and every
sampled subnet learns those pseudo-labels whose confidence reaches
``threshold`` on the strong view (cross-entropy, summed over the
unlabelled images and divided by their count; its weight ramped from 0 to 1
over the first 30% of training). ``semi="labelled-only"``:
the baseline — every step's batch from the labelled images alone, weakly
augmented, the same steps.

Deterministic for a seed: data order is seeded by (seed, epoch), subnets by
(seed, step). A checkpoint is written after every epoch — weights and
optimizer state as safetensors, the rest as JSON; no pickle — and
``resume=True`` continues from it exactly. The JSON state is the commit
point: it names the tensor files of its epoch, and is replaced (atomically)
only after they are complete, so a crash mid-save leaves the previous epoch.

Distributed (``dist`` of world N, see ``distributed.py``): ``batch_size`` is
the *global* batch; every step each rank takes every N-th image of the same
global batch, the supernet runs under DistributedDataParallel, BN
statistics are synchronised over all ranks (``bn="sync"``, the default
when distributed), and losses are normalised by global counts — so N
processes train the same model as one process with the same batch, seed and
``bn="sync"`` (up to floating-point summation order), whatever N is.
``bn="sync"`` writes training BN out (``Supernet._batch_bn``); torch's fused
CPU kernel (``bn="local"``, the single-process default) is faster, but
less exact on channels-last activations (tests/test_train.py). Every rank
samples the same subnets (seed, step); PSS scores come from all-reduced
losses; rank 0 alone writes checkpoints, and on resume reads them and
broadcasts the state to the others.
"""
from __future__ import annotations

import math
import os
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..io.data import Dataset
from ..model.graph import subnet_cost
from ..model.space import SearchSpace
from . import distributed as distmod
from .distributed import Dist
from .samplers import Sampler, make_sampler
from .checkpoint import read_checkpoint, write_checkpoint
from .supernet import Supernet

__all__ = ["TrainConfig", "Trainer"]


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
    init: str = ""                  # where the weights started (train --init): a run, a pool, an OFA checkpoint
    semi: str = "fixmatch"          # labeled_fraction < 1: fixmatch | labelled-only (the baseline)
    labelled_share: float = 0.5     # semi: share of each step's batch from the labelled images
    threshold: float = 0.9          # fixmatch: teacher confidence a pseudo-label needs
    ema: float = 0.99               # fixmatch: decay of the teacher's weight average
    bn: str = "auto"                # BN batch statistics: sync (over the global batch, exact two-pass) |
                                    # local (per process, torch's fused kernel) | auto (sync when distributed)

    def validate(self) -> None:
        if not (0.0 < self.labeled_fraction <= 1.0):
            raise ValueError(f"labeled fraction {self.labeled_fraction} must be in (0, 1]")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch size must be at least 1")
        if not (self.lr > 0):
            raise ValueError("learning rate must be positive")
        if self.metric not in METRICS:
            raise ValueError(f"unknown metric {self.metric!r}; use {' or '.join(METRICS)}")
        if self.bn not in ("auto", "sync", "local"):
            raise ValueError(f"unknown BN mode {self.bn!r}; use auto, sync or local")
        if self.semi not in ("fixmatch", "labelled-only"):
            raise ValueError(f"unknown semi-supervised mode {self.semi!r}; use fixmatch or labelled-only")
        if not (0.0 < self.labelled_share <= 1.0 and 0.0 <= self.threshold <= 1.0 and 0.0 <= self.ema < 1.0):
            raise ValueError("labelled share must be in (0, 1], threshold in [0, 1] and EMA decay in [0, 1)")


METRICS = ("mflops", "latency")
LATENCY_TABLE = "latency_table.json"


class Trainer:
    """Owns the supernet, optimizer, sampler and data of one run directory
    (``dist``: this process's place in a distributed run; default: alone.
    ``wrap=False``: no DDP and no synchronised BN, for evaluation only)."""

    def __init__(self, cfg: TrainConfig, data: Dataset, space: SearchSpace, out_dir: str, dist: Dist | None = None,
                 wrap: bool = True):
        cfg.validate()
        self.cfg, self.data, self.space, self.out_dir = cfg, data, space, out_dir
        self.dist = dist = dist or Dist()
        if cfg.batch_size < dist.world:
            raise ValueError(f"batch size {cfg.batch_size} (the global batch) is smaller than the "
                             f"{dist.world} processes it is split over")
        if cfg.labeled_fraction < 1.0 and cfg.semi == "fixmatch" and cfg.batch_size < 2 * dist.world:
            raise ValueError(f"semi-supervised, batch size {cfg.batch_size} must be at least twice the "
                             f"{dist.world} processes: each needs labelled and unlabelled images every step")
        if tuple(data.image_shape[2:]) != (space.in_channels,):
            raise ValueError(f"dataset has {data.image_shape[2]} channels, space {space.name} expects {space.in_channels}")
        if data.num_classes > space.num_classes:
            raise ValueError(f"dataset has {data.num_classes} classes, space {space.name} has {space.num_classes} outputs")
        torch.manual_seed(cfg.seed)
        self.device = dist.device
        self.net = Supernet(space, seed=cfg.seed).to(self.device)
        self.bn_mode = "sync" if cfg.bn == "sync" or (cfg.bn == "auto" and dist.enabled) else "local"
        self.net.exact_bn = self.bn_mode == "sync"
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
        self.semi = cfg.labeled_fraction < 1.0
        self.teacher: Supernet | None = None       # FixMatch's EMA teacher
        if self.semi and cfg.semi == "fixmatch":
            self.teacher = Supernet(space, seed=cfg.seed).to(self.device)
            self.teacher.requires_grad_(False)
            self.teacher.exact_bn = self.net.exact_bn
            self.reset_teacher()
        self.epoch = 0
        self.step = 0
        self.history: list[dict] = []
        self.model: torch.nn.Module = self.net      # what the training forward calls: DDP when distributed
        if dist.enabled and wrap:
            import torch.distributed as tdist
            from torch.nn.parallel import DistributedDataParallel
            if self.bn_mode == "sync":
                self.net.bn_group = tdist.new_group(backend=dist.backend)
                if self.teacher is not None:
                    self.teacher.bn_group = self.net.bn_group
            # find_unused_parameters: a subnet leaves the rest of the supernet without gradients;
            # DDP then marks those parameters ready itself (every rank trains the same subnets, so
            # "unused" agrees across ranks). A step's earlier subnets run under no_sync(): their
            # gradients accumulate locally and the last backward all-reduces everything once.
            # Buffers (BN running statistics) are identical on every rank under sync BN; with
            # per-rank BN, rank 0's are broadcast before each forward.
            import inspect
            sync_buffers = self.bn_mode == "local"
            kw = ({"forward_sync_buffers": sync_buffers}
                  if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters
                  else {"broadcast_buffers": sync_buffers})        # its older name
            self.model = DistributedDataParallel(
                self.net, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=True, **kw)

    @torch.no_grad()
    def reset_teacher(self) -> None:
        """The EMA teacher := the supernet now (at the start, after --init, after channel sorting)."""
        if self.teacher is not None:
            for tp, p in zip(self.teacher.params.values(), self.net.params.values()):
                tp.copy_(p.detach())

    @torch.no_grad()
    def _pseudo_labels(self, xw: torch.Tensor, nc: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(labels, confident mask) of the teacher's largest subnet on weak views
        (BN on those views' batch statistics, synced like the supernet's)."""
        self.teacher.train()      # BN on the batch's own statistics, as FixMatch labels its weak batch
        p = F.softmax(self.teacher(xw, self.sampler.max_config)[:, :nc], dim=1)
        conf, label = p.max(dim=1)
        return label, conf >= self.cfg.threshold

    @torch.no_grad()
    def init_weights(self, params: dict, buffers: dict | None = None) -> list[str]:
        """Start from pretrained weights (``transfer.load_init``): every
        parameter and BN running statistic of the same name and shape is
        copied (on every rank: each loads the same source); returns the
        parameters left at their fresh initialisation (e.g. a new classifier)."""
        fresh = []
        for k, p in self.net.params.items():
            v = params.get(k)
            if v is not None and tuple(v.shape) == tuple(p.shape):
                p.copy_(v.to(p.device, p.dtype))
            else:
                fresh.append(k.replace("__", "."))
        for k, b in self.net.named_buffers():
            v = (buffers or {}).get(k)
            if v is not None and tuple(v.shape) == tuple(b.shape):
                b.copy_(v.to(b.device, b.dtype))
        self.reset_teacher()
        return fresh

    def use_latency_table(self, table) -> None:
        """Predict latency with ``table`` (e.g. one made on the target device) instead of the run's own."""
        if table.space.to_dict() != self.space.to_dict():
            raise ValueError("the latency table is for another search space")
        self._latency = table

    def latency_table(self, progress: Callable[[str], None] | None = None,
                      expect: Callable[[int], None] | None = None):
        """This device's latency table of the space: the run's own
        (``latency_table.json`` in the run folder), measured and saved there
        the first time it is needed, so a resumed run and build-pool use the
        same one."""
        if self._latency is None:
            from ..serve.latency import LatencyTable
            table = None
            if self.dist.main:      # rank 0 measures (or reads) it; every rank then uses the same table
                path = os.path.join(self.out_dir, LATENCY_TABLE)
                if os.path.isfile(path):
                    table = LatencyTable.load(path, self.space)
                else:
                    table = LatencyTable.measure(self.space, progress=progress, expect=expect)
                    os.makedirs(self.out_dir, exist_ok=True)
                    table.save(path)
            d = distmod.broadcast_json(table.to_dict() if table is not None else None, self.dist)
            self._latency = table if table is not None else LatencyTable.from_dict(d, self.space)
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
    def train_step(self, xb: torch.Tensor, yb: torch.Tensor, lab: torch.Tensor,
                   views: tuple[torch.Tensor, torch.Tensor] | None = None) -> dict:
        """One step on this rank's share of the global batch (all of it when
        alone). Semi-supervised, ``views`` are the (weak, strong) augmented
        images (``train_epoch`` makes them for the global batch, so a share is
        what one process would see); without them they are made here."""
        d, nc = self.dist, self.data.num_classes
        progress = self.step / self.total_steps
        prev = (self.step - 1) / self.total_steps if self.step > 0 else -1.0
        if self.sampler.sort_channels_now(prev, progress):
            self.net.sort_channels()
            self.opt.state.clear()      # momentum buffers no longer match the permuted channels
            self.reset_teacher()        # nor does the teacher's average
        tasks = self.sampler.tasks(self.step, progress)
        for g in self.opt.param_groups:
            g["lr"] = self.lr_at(self.step)
        if self.semi and views is None:
            views = self.augment(xb)
        xb, yb, lab = xb.to(self.device), yb.to(self.device), lab.to(self.device)
        # global image counts: losses are sums over this rank's images divided by them, times the world
        # size that DDP's gradient averaging divides by again — the global mean, even for unequal shares
        counts = distmod.all_reduce_sum(torch.tensor([len(yb), int(lab.sum())], device=self.device), d)
        n_all, n_lab = (int(v) for v in counts.tolist())
        n_unlab = n_all - n_lab
        pseudo = confident = None
        if views is not None:
            xw, xs = (v.to(self.device) for v in views)
            if self.teacher is not None and n_unlab:   # every rank (its BN may sync over them)
                pseudo, confident = self._pseudo_labels(xw[~lab], nc)
            xb = torch.where(lab.view(-1, 1, 1, 1), xw, xs)    # labelled: weak view; unlabelled: strong view
        w = float(d.world)
        self.net.train()
        self.opt.zero_grad(set_to_none=True)
        teacher = None
        need_teacher = any(t.kd for t in tasks)
        ordered = sorted(tasks, key=lambda t: t.config != self.sampler.max_config)
        if need_teacher and ordered[0].config != self.sampler.max_config:
            # the step does not train the largest subnet (uniform, rss): it still teaches
            with torch.no_grad():
                teacher = F.softmax(self.net(xb, self.sampler.max_config)[:, :nc], dim=1)
        losses = []
        for i, t in enumerate(ordered):
            sync = not d.enabled or i == len(ordered) - 1
            with nullcontext() if sync else self.model.no_sync():
                logits = self.model(xb, t.config)[:, :nc]
                is_max = t.config == self.sampler.max_config
                if is_max and need_teacher and teacher is None:
                    teacher = F.softmax(logits.detach(), dim=1)
                loss = logits.new_zeros(())
                if t.kd:
                    loss = F.kl_div(F.log_softmax(logits, dim=1), teacher, reduction="sum") * (w / n_all)
                elif n_lab:
                    loss = F.cross_entropy(logits[lab], yb[lab], label_smoothing=self.cfg.label_smoothing,
                                           reduction="sum") * (w / n_lab)
                if pseudo is not None:   # FixMatch: every sampled subnet, confident pseudo-labels only
                    ce = F.cross_entropy(logits[~lab], pseudo, reduction="none")
                    loss = loss + (ce * confident).sum() * (w * self.unlabelled_weight(progress) / n_unlab)
                # a batch without one label (or confident pseudo-label) may leave a subnet nothing to
                # learn: no term, no backward (the same on every rank: the counts are global)
                if loss.requires_grad:
                    loss.backward()
            losses.append(loss.detach())
        # each task's global loss (identical on every rank) drives PSS
        glob = (distmod.all_reduce_sum(torch.stack(losses), d) / w).tolist()
        for t, lv in zip(ordered, glob):
            self.sampler.observe(t.config, lv, self.step, progress)
        self.opt.step()
        if self.teacher is not None:
            with torch.no_grad():
                for tp, p in zip(self.teacher.params.values(), self.net.params.values()):
                    tp.mul_(self.cfg.ema).add_(p.detach(), alpha=1.0 - self.cfg.ema)
        self.step += 1
        out = {"loss": float(sum(glob)), "subnets": [t.config.id for t in ordered]}
        if confident is not None:
            out["confident"] = float(confident.float().mean())
        return out

    @staticmethod
    def unlabelled_weight(progress: float) -> float:
        """The pseudo-label term's weight: 0 -> 1 over the first 30% of training
        (a young teacher's confident guesses are often wrong, and learning them
        early locks them in)."""
        return min(1.0, progress / 0.3)

    def augment(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(weak, strong) views of a batch, seeded by (seed, step)."""
        from .augment import strong, weak
        g = torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + self.step)
        return weak(x, g), strong(x, g)

    def _batches(self, g: torch.Generator) -> list[torch.Tensor]:
        """The epoch's global batches (indices into the training split):
        supervised, a permutation cut in batches; semi-supervised, two streams
        (labelled, unlabelled: each a chain of permutations) in the configured
        share, ``steps_per_epoch`` batches of ``batch_size``."""
        n, bs = len(self.y), self.cfg.batch_size
        if not self.semi:
            order = torch.randperm(n, generator=g)
            return [order[i:i + bs] for i in range(0, n, bs)]
        steps = self.steps_per_epoch
        w = self.dist.world      # at least one image of each stream per rank (the teacher's BN may sync)
        b_l = bs if self.cfg.semi == "labelled-only" else min(max(w, bs - w), max(w, round(bs * self.cfg.labelled_share)))
        b_u = bs - b_l

        def stream(pool: torch.Tensor, count: int) -> torch.Tensor:
            if count == 0 or len(pool) == 0:
                return pool[:0]
            parts, have = [], 0
            while have < count:
                parts.append(pool[torch.randperm(len(pool), generator=g)])
                have += len(pool)
            return torch.cat(parts)[:count]
        lab = stream(torch.nonzero(self.labeled).flatten(), steps * b_l)
        unl = stream(torch.nonzero(~self.labeled).flatten(), steps * b_u)
        b_u = len(unl) // steps if steps else 0     # no unlabelled images: labelled ones alone
        return [torch.cat([lab[s * b_l:(s + 1) * b_l], unl[s * b_u:(s + 1) * b_u]]) for s in range(steps)]

    def train_epoch(self, on_step: Callable[[dict], None] | None = None) -> dict:
        g = torch.Generator().manual_seed(self.cfg.seed * 7919 + self.epoch)
        t0 = time.perf_counter()
        losses = []
        d = self.dist
        seen = 0
        for glob in self._batches(g):
            # this rank's share of the global batch: every world-th image (sizes differ by at most one;
            # the union over ranks is exactly the single-process batch, for any dataset size)
            views = None
            if self.semi:   # augmented for the global batch, then shared out: as one process would see it
                views = tuple(v[d.rank::d.world] for v in self.augment(self.x[glob]))
            idx = glob[d.rank::d.world]
            r = self.train_step(self.x[idx], self.y[idx], self.labeled[idx], views)
            losses.append(r["loss"])
            seen += len(glob)
            if on_step:
                r["images_per_s"] = seen / max(1e-9, time.perf_counter() - t0)
                on_step(r)
        self.epoch += 1
        rec = {"epoch": self.epoch, "loss": float(np.mean(losses)), "seconds": time.perf_counter() - t0}
        self.history.append(rec)
        self.check_replicas()
        return rec

    def _state_tensors(self, with_running_stats: bool = True) -> list[tuple[str, torch.Tensor]]:
        out = [(f"p.{k}", v) for k, v in self.net.params.items()]
        if with_running_stats:
            out += [(f"b.{k}", v) for k, v in self.net.named_buffers()]
        names = {id(p): k for k, p in self.net.params.items()}
        out += sorted((f"m.{names[id(p)]}", st["momentum_buffer"]) for p, st in self.opt.state.items()
                      if st.get("momentum_buffer") is not None)
        if self.teacher is not None:
            out += [(f"t.{k}", v) for k, v in self.teacher.params.items()]
        return out

    def check_replicas(self) -> None:
        """Distributed: raise ReplicaMismatch unless every rank holds exactly
        rank 0's parameters, momentum, sampler state (PSS pools) and step —
        and, under sync BN, BN running statistics (per-rank BN keeps its own)."""
        if self.dist.enabled:
            dig = distmod.digest(self._state_tensors(self.bn_mode == "sync"),
                                 [self.step, self.epoch, self.sampler.state_dict()])
            distmod.check_replicas(dig, self.dist, f"model state after epoch {self.epoch}")

    # ------------------------------------------------------------------ eval
    @torch.no_grad()
    def evaluate(self, config, split: str = "val", calib_batches: int = 8, batch: int = 256) -> float:
        """Top-1 accuracy of a subnet on a split, BN recalibrated on training batches."""
        stats = self.net.recalibrate_bn(config, self.calibration_batches(calib_batches))
        return self.accuracy(config, stats, split, batch)

    @torch.no_grad()
    def accuracy(self, config, stats: dict[str, np.ndarray], split: str = "test", batch: int = 256) -> float:
        """Top-1 accuracy of a subnet with the given BN statistics (as recalibrate_bn returns them)."""
        x, y = self.data.split(split)
        bn = {k: torch.from_numpy(v).to(self.device) for k, v in stats.items()}
        self.net.eval()
        correct = 0
        for i in range(0, len(y), batch):
            xb = torch.from_numpy(x[i:i + batch]).to(self.device)
            logits = self.net(xb, config, bn_stats=bn)[:, : self.data.num_classes]
            correct += int((logits.argmax(1).cpu().numpy() == y[i:i + batch]).sum())
        return correct / len(y)

    def calibration_batches(self, n: int, batch: int = 128) -> list[torch.Tensor]:
        g = torch.Generator().manual_seed(self.cfg.seed + 12345)
        order = torch.randperm(len(self.y), generator=g)
        return [self.x[order[i * batch:(i + 1) * batch]].to(self.device)
                for i in range(min(n, math.ceil(len(self.y) / batch)))]

    # ------------------------------------------------------------------ checkpoints
    def save(self) -> None:
        """Rank 0 writes the epoch's checkpoint (see ``checkpoint.py``)."""
        if not self.dist.main:
            return
        tensors = self._state_tensors()
        state = {"config": asdict(self.cfg), "epoch": self.epoch, "step": self.step, "history": self.history,
                 "sampler": self.sampler.state_dict(), "space": self.space.to_dict(), "format": 2,
                 "world_size": self.dist.world}
        write_checkpoint(self.out_dir, self.epoch, {k: v for k, v in tensors if not k.startswith("m.")},
                         {k[2:]: v for k, v in tensors if k.startswith("m.")}, state)

    def load(self) -> None:
        """Resume from the run directory: rank 0 reads and validates the
        checkpoint; in a distributed run it then broadcasts everything (the
        other ranks need not see the files)."""
        d = self.dist
        state = opt = None
        err = None
        if d.main:
            try:
                state, tensors, opt = read_checkpoint(self.out_dir, {k: p.shape for k, p in self.net.params.items()},
                                                      {k: b.shape for k, b in self.net.named_buffers()})
                with torch.no_grad():
                    for k, p in self.net.params.items():
                        p.copy_(tensors[f"p.{k}"])
                    for k, b in self.net.named_buffers():
                        b.copy_(tensors[f"b.{k}"])
                    if self.teacher is not None:     # a checkpoint of before the teacher: it starts from here
                        for k, p in self.teacher.params.items():
                            p.copy_(tensors.get(f"t.{k}", self.net.params[k].detach()))
            except (OSError, ValueError, KeyError, RuntimeError) as e:
                err = f"{type(e).__name__}: {e}" if isinstance(e, KeyError) else str(e)
        head = distmod.broadcast_json({"error": err} if err else
                                      {"state": state, "momentum": sorted(opt) if opt is not None else []}, d)
        if head.get("error"):
            if d.main and err:
                raise ValueError(f"cannot load the checkpoint in {self.out_dir}: {err}")
            raise ValueError(f"cannot resume: rank 0 failed to read the checkpoint: {head['error']}")
        state = head["state"]
        distmod.broadcast_tensors(list(self.net.params.values()) + list(self.net.buffers())
                                  + (list(self.teacher.params.values()) if self.teacher is not None else []), d)
        for k in head["momentum"]:
            p = self.net.params[k]
            buf = opt[k].clone().to(self.device) if d.main else torch.empty_like(p.detach())
            distmod.broadcast_tensors([buf], d)
            self.opt.state[p]["momentum_buffer"] = buf
        self.epoch, self.step, self.history = state["epoch"], state["step"], state["history"]
        self.sampler.load_state_dict(state["sampler"])
        self.check_replicas()

"""Building the pool table from a trained run: the best subnet per resource
bucket, BN recalibrated per entry, test accuracy measured, written as a pool
file.

Candidates per bucket come from the PSS pools when the run used PSS (their
best-scored configs, topped up by random configs that fill each bucket),
otherwise from an NSGA-II search (pymoo) over validation accuracy vs MFLOPs
(``search="random"`` fills buckets by rejection sampling instead). Every
candidate is scored on the validation split with recalibrated BN; the
winner of each bucket is then recalibrated on more batches and measured on
the test split.
"""
from __future__ import annotations

import json
import os
import random
from typing import Callable

from ..data import load_dataset
from ..graph import subnet_cost
from ..poolfile import PoolFile, make_entry, write_pool
from ..space import SearchSpace, SubnetConfig
from .loop import STATE, TrainConfig, Trainer
from .samplers import PSS

__all__ = ["load_run", "build_pool", "bucket_edges"]


def load_run(run_dir: str) -> Trainer:
    path = os.path.join(run_dir, STATE)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{run_dir}: not a training run ({STATE} missing)")
    with open(path) as f:
        state = json.load(f)
    cfg = TrainConfig(**state["config"])
    space = SearchSpace.from_dict(state["space"])
    data = load_dataset(cfg.dataset, seed=cfg.seed)
    tr = Trainer(cfg, data, space, run_dir)
    tr.load()
    return tr


def bucket_edges(space: SearchSpace, k: int, metric: Callable[[SubnetConfig], float]) -> list[float]:
    lo, hi = metric(space.min_config()), metric(space.max_config())
    return [lo + (hi - lo) * i / k for i in range(k + 1)]


def _bucket(edges: list[float], v: float) -> int:
    for i in range(len(edges) - 1):
        if v < edges[i + 1]:
            return i
    return len(edges) - 2


def _candidates(tr: Trainer, k: int, per_bucket: int, metric, seed: int) -> list[list[SubnetConfig]]:
    space = tr.space
    edges = bucket_edges(space, k, metric)
    out: list[list[SubnetConfig]] = [[] for _ in range(k)]
    out[0].append(space.min_config())
    out[-1].append(space.max_config())
    if isinstance(tr.sampler, PSS):
        for pool in tr.sampler.pools:
            for cid in sorted(pool, key=pool.get, reverse=True)[:per_bucket]:
                c = SubnetConfig.from_id(cid)
                out[_bucket(edges, metric(c))].append(c)
    r = random.Random(seed)
    tries = 0
    while any(len(b) < per_bucket for b in out) and tries < 200 * k * per_bucket:
        tries += 1
        c = space.sample(r)
        b = out[_bucket(edges, metric(c))]
        if len(b) < per_bucket and c not in b:
            b.append(c)
    return out


def build_pool(run_dir: str, out: str, buckets: int = 6, per_bucket: int = 8, metric: str | None = None,
               calib_batches: int = 16, progress: Callable[[str], None] | None = None, seed: int = 0,
               search: str = "auto") -> PoolFile:
    """The best subnet per bucket of ``metric`` (default: the run's own —
    ``mflops``, or ``latency``: ms predicted by this device's latency table,
    which is then also stored as each entry's ``latency_ms``)."""
    tr = load_run(run_dir)
    space = tr.space
    metric = metric or tr.cfg.metric
    if search not in ("auto", "nsga2", "random"):
        raise ValueError(f"search {search!r} must be auto, nsga2 or random")
    if metric == "latency":
        fn = tr.latency_table(progress).predict
    elif metric == "mflops":
        fn = lambda c: subnet_cost(space, c).mflops  # noqa: E731
    else:
        raise ValueError(f"unknown metric {metric!r}; use mflops or latency")
    edges = bucket_edges(space, buckets, fn)
    scored: list[list[tuple[float, float, SubnetConfig]]] = [[] for _ in range(buckets)]
    if search == "nsga2" or (search == "auto" and not isinstance(tr.sampler, PSS)):
        from .search import nsga2_search
        found = nsga2_search(space, lambda c: tr.evaluate(c, "val"), fn, pop_size=max(8, 2 * per_bucket),
                             generations=max(2, buckets), seed=seed, progress=progress)
        for c, acc, cost in found:
            scored[_bucket(edges, cost)].append((acc, -cost, c))
    else:
        for b, cs in enumerate(_candidates(tr, buckets, per_bucket, fn, seed)):
            for c in cs:
                scored[b].append((tr.evaluate(c, "val"), -fn(c), c))
                if progress:
                    progress(f"bucket {b + 1}/{buckets}: {c.id} val {scored[b][-1][0]:.4f}")
    chosen: list[SubnetConfig] = []
    for b in range(buckets):
        if scored[b]:
            best = max(scored[b], key=lambda t: (t[0], t[1]))[2]
            if best not in chosen:
                chosen.append(best)
    chosen.sort(key=fn)
    tensors = {k: v for k, v in tr.net.pack().items() if not k.endswith((".bn.mean", ".bn.var"))}
    entries = []
    import torch
    calib = tr.calibration_batches(calib_batches)
    x_test, y_test = tr.data.split("test")
    for i, c in enumerate(chosen):
        prefix = f"bn.e{i}."
        stats = tr.net.recalibrate_bn(c, calib, prefix)
        tensors.update(stats)
        bn = {k[len(prefix):]: torch.from_numpy(v) for k, v in stats.items()}
        tr.net.eval()
        with torch.no_grad():
            correct = 0
            for j in range(0, len(y_test), 256):
                logits = tr.net(torch.from_numpy(x_test[j:j + 256]), c, bn_stats=bn)[:, : tr.data.num_classes]
                correct += int((logits.argmax(1).numpy() == y_test[j:j + 256]).sum())
        acc = correct / len(y_test)
        entries.append(make_entry(space, c, f"e{i}", prefix, accuracy=acc, dataset=tr.data.name, split="test",
                                  latency_ms=fn(c) if metric == "latency" else None))
        if progress:
            progress(f"entry e{i}: {fn(c):.3f} {'ms' if metric == 'latency' else 'MFLOPs'}, test accuracy {acc:.4f}")
    meta = {"adaptive_rt.train": json.dumps({"sampler": tr.cfg.sampler, "epochs": tr.epoch, "metric": metric,
                                              "dataset": tr.cfg.dataset, "seed": tr.cfg.seed})}
    return write_pool(out, space, entries, tensors, meta)

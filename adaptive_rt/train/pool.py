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

Under torchrun (``dist`` of world N) the work is spread by subnet, not by
batch: every rank runs the same deterministic search, scores every N-th
candidate (BN recalibration and the validation pass, each wholly on one
rank, so a score does not depend on N) and the scores are summed over
ranks; the final entries are recalibrated and tested the same way and their
statistics broadcast from the rank that made them. Rank 0 writes the file.
"""
from __future__ import annotations

import json
import os
import random
from typing import Callable

import numpy as np

from ..io.data import load_dataset
from ..model.pareto import pareto_front
from ..model.graph import subnet_cost
from ..io.poolfile import PoolFile, make_entry, write_pool
from ..io.jsonio import read_json_file
from ..model.space import SearchSpace, SubnetConfig
from .distributed import Dist, all_reduce_sum, broadcast_json, broadcast_tensors
from .checkpoint import STATE
from .loop import TrainConfig, Trainer
from .samplers import PSS

__all__ = ["load_run", "build_pool", "bucket_edges"]


def load_run(run_dir: str, dist: Dist | None = None) -> Trainer:
    """The trained run in ``run_dir`` (distributed: rank 0 reads it and
    broadcasts; the dataset it names must load on every rank)."""
    d = dist or Dist()
    head: dict = {}
    if d.main:
        path = os.path.join(run_dir, STATE)
        if not os.path.isfile(path):
            head = {"error": f"{run_dir}: not a training run ({STATE} missing)"}
        else:
            try:
                state = read_json_file(path, "training state", ValueError)
                head = {"config": state["config"], "space": state["space"]}
            except (ValueError, KeyError, TypeError) as e:
                head = {"error": f"{path}: not a training state ({e})"}
    head = broadcast_json(head, d)
    if "error" in head:
        raise FileNotFoundError(head["error"])
    cfg = TrainConfig(**head["config"])
    space = SearchSpace.from_dict(head["space"])
    data = load_dataset(cfg.dataset, seed=cfg.seed)
    tr = Trainer(cfg, data, space, run_dir, dist=d, wrap=False)    # evaluation only: no DDP, per-rank BN
    tr.load()
    return tr


def spread_map(fn: Callable, items: list, d: Dist) -> list[float]:
    """``[fn(x) for x in items]`` with rank r computing items r, r+N, ...;
    every rank gets every value (float64, summed over ranks)."""
    import torch
    vals = torch.zeros(len(items), dtype=torch.float64, device=d.device)
    for i in range(d.rank, len(items), d.world):
        vals[i] = float(fn(items[i]))
    return all_reduce_sum(vals, d).tolist()


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
               search: str = "auto", dist: Dist | None = None,
               expect: Callable[[int], None] | None = None, latency_table: str | None = None,
               min_gain: float = 0.0) -> PoolFile | None:
    """The best subnet per bucket of ``metric`` (default: the run's own —
    ``mflops``, or ``latency``: ms predicted by a device's latency table —
    the file ``latency_table`` (made on the target device with
    ``adaptive-rt latency-table``), else the run's —, which is then also
    stored as each entry's ``latency_ms``). Distributed,
    every rank must call it; rank 0 writes ``out`` and returns the pool, the
    others return None. ``progress(msg)`` is called as each unit of work
    finishes (a candidate scored, an entry made), ``expect(n)`` as ``n`` more
    units are known to come, so a caller can show a bar with a total.
    ``min_gain`` (accuracy, 0-1): a bucket winner is kept only when it beats
    every cheaper entry by more than this on the validation split."""
    import torch
    d = dist or Dist()
    if search not in ("auto", "nsga2", "random"):
        raise ValueError(f"search {search!r} must be auto, nsga2 or random")
    if not 0.0 <= min_gain < 1.0:
        raise ValueError(f"min_gain {min_gain} must be in [0, 1)")
    if metric not in (None, "mflops", "latency"):
        raise ValueError(f"unknown metric {metric!r}; use mflops or latency")
    tr = load_run(run_dir, d)
    space = tr.space
    metric = metric or ("latency" if latency_table else tr.cfg.metric)
    if latency_table is not None:
        if metric != "latency":
            raise ValueError("a latency table is for metric latency, not mflops")
        from ..serve.latency import LatencyTable
        tr.use_latency_table(LatencyTable.load(latency_table, space))
    if metric == "latency":
        fn = tr.latency_table(progress, expect).predict
    else:
        fn = lambda c: subnet_cost(space, c).mflops  # noqa: E731
    edges = bucket_edges(space, buckets, fn)

    def val_scores(configs: list[SubnetConfig]) -> list[float]:
        """Validation accuracy of each config, spread over the processes;
        progress as each finishes here, then for those the others scored."""
        here = set()

        def one(c: SubnetConfig) -> float:
            acc = tr.evaluate(c, "val")
            here.add(c)
            if progress:
                progress(f"{c.id} val {acc:.4f}")
            return acc
        if expect:
            expect(len(configs))
        accs = spread_map(one, configs, d)
        for c, acc in zip(configs, accs):
            if progress and c not in here:
                progress(f"{c.id} val {acc:.4f}")
        return accs

    scored: list[list[tuple[float, float, SubnetConfig]]] = [[] for _ in range(buckets)]
    if search == "nsga2" or (search == "auto" and not isinstance(tr.sampler, PSS)):
        from .search import nsga2_search
        found = nsga2_search(space, val_scores, fn, pop_size=max(8, 2 * per_bucket),
                             generations=max(2, buckets), seed=seed)
        for c, acc, cost in found:
            scored[_bucket(edges, cost)].append((acc, -cost, c))
    else:
        flat = [(b, c) for b, cs in enumerate(_candidates(tr, buckets, per_bucket, fn, seed)) for c in cs]
        for (b, c), acc in zip(flat, val_scores([c for _, c in flat])):
            scored[b].append((acc, -fn(c), c))
    best_of: list[tuple[float, float, SubnetConfig]] = []
    for b in range(buckets):
        if scored[b]:
            acc, neg_cost, c = max(scored[b], key=lambda t: (t[0], t[1]))
            if all(c != x for _, _, x in best_of):
                best_of.append((-neg_cost, acc, c))
    # Pareto-clean on the validation split: a bucket's best that a cheaper entry matches or beats in
    # accuracy could never be served (the policy picks the most accurate entry that fits); with a margin,
    # one that beats the cheaper entries by no more than min_gain is dropped too
    kept, dropped = pareto_front(best_of, min_gain)
    chosen = [c for _, _, c in kept]
    calib = tr.calibration_batches(calib_batches)
    hw = tuple(calib[0].shape[1:3])
    tensors = {k: v for k, v in tr.net.pack().items() if not k.endswith((".bn.mean", ".bn.var"))}
    entries = []
    if expect:
        expect(len(chosen))
    for i, c in enumerate(chosen):
        prefix, owner = f"bn.e{i}.", i % d.world
        names = tr.net.bn_stat_names(c, hw, prefix)
        flat = torch.zeros(1 + sum(n for _, _, n in names), dtype=torch.float32, device=d.device)
        if d.rank == owner:
            stats = tr.net.recalibrate_bn(c, calib, prefix)
            flat[0] = tr.accuracy(c, {k[len(prefix):]: v for k, v in stats.items()}, "test")
            flat[1:] = torch.from_numpy(np.concatenate([stats[name] for name, _, _ in names])).to(d.device)
        broadcast_tensors([flat], d, src=owner)
        vals, off = flat.cpu().numpy(), 1
        for name, _, n in names:
            tensors[name] = vals[off:off + n].copy()
            off += n
        acc = float(vals[0])
        entries.append(make_entry(space, c, f"e{i}", prefix, accuracy=acc, dataset=tr.data.name, split="test",
                                  latency_ms=fn(c) if metric == "latency" else None))
        if progress:
            progress(f"entry e{i}: {fn(c):.3f} {'ms' if metric == 'latency' else 'MFLOPs'}, test accuracy {acc:.4f}")
    if not d.main:
        return None
    meta = {"adaptive_rt.train": json.dumps({"sampler": tr.cfg.sampler, "epochs": tr.epoch, "metric": metric,
                                              "dataset": tr.cfg.dataset, "seed": tr.cfg.seed}),
            # bucket winners left out: a cheaper one is at least as accurate on the validation split
            "adaptive_rt.build": json.dumps({"selected_on": "val", "min_gain": min_gain, "dropped_dominated": [
                {"config": c.id, metric: round(cost, 4), "val_accuracy": round(acc, 4)} for cost, acc, c in dropped]})}
    return write_pool(out, space, entries, tensors, meta)

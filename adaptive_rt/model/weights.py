"""Supernet weights in the native layout: random initialisation and per-entry
BN statistics.

Training (``adaptive_rt.train``) produces real weights; this module gives the
same dict-of-arrays form without torch, for tests, benchmarks and examples,
and slices the per-entry BN statistics a pool entry carries.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from .graph import Graph, subnet_cost
from .layout import bn_stat_specs, running_stat_specs, tensor_specs
from .space import SearchSpace

__all__ = ["random_weights", "entry_bn_stats", "spread_configs"]


def random_weights(space: SearchSpace, seed: int = 0) -> dict[str, np.ndarray]:
    """He-initialised float32 weights for every tensor of ``space``, with
    plausible BN parameters and full-width running statistics."""
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for name, shape in tensor_specs(space).items():
        if name.endswith(".bn.weight"):
            a = rng.uniform(0.5, 1.5, shape)
        elif name.endswith(".bias"):
            a = rng.normal(0.0, 0.1, shape)
        elif len(shape) == 3:                       # depthwise [k, k, C]
            a = rng.normal(0.0, np.sqrt(2.0 / (shape[0] * shape[1])), shape)
        else:                                       # [fan_in, fan_out]
            a = rng.normal(0.0, np.sqrt(2.0 / shape[0]), shape)
        out[name] = a.astype(np.float32)
    for name, shape in running_stat_specs(space).items():
        a = rng.normal(0.0, 0.2, shape) if name.endswith(".mean") else rng.uniform(0.5, 2.0, shape)
        out[name] = a.astype(np.float32)
    return out


def entry_bn_stats(graph: Graph, weights: Mapping[str, np.ndarray], prefix: str,
                   source_prefix: str = "") -> dict[str, np.ndarray]:
    """Per-entry statistics for ``graph`` under ``prefix``, taken as the first
    ``C`` channels of the statistics under ``source_prefix`` (by default the
    supernet's own running statistics)."""
    out = {}
    for name, (c,) in bn_stat_specs(graph, prefix).items():
        src = source_prefix + name[len(prefix):]
        out[name] = np.array(weights[src][:c], dtype=np.float32)
    return out


def spread_configs(space: SearchSpace, k: int, seed: int = 0, samples: int = 2000, metric=None) -> list:
    """``k`` distinct configs spread over MFLOPs (or over ``metric(config)``,
    e.g. a device latency table's prediction): the min and max configs plus
    random samples nearest to evenly spaced values between them."""
    if k < 1:
        raise ValueError("k must be at least 1")
    fn = metric or (lambda c: subnet_cost(space, c).mflops)
    lo, hi = space.min_config(), space.max_config()
    if k == 1:
        return [hi]
    rng = np.random.default_rng(seed)
    cands = {c: fn(c) for c in (space.sample(int(s)) for s in rng.integers(0, 2**62, samples))}
    cands.pop(lo, None)
    cands.pop(hi, None)
    f_lo, f_hi = fn(lo), fn(hi)
    chosen = [lo]
    for t in np.linspace(f_lo, f_hi, k)[1:-1]:
        if not cands:
            break
        best = min(cands, key=lambda c: abs(cands[c] - t))
        chosen.append(best)
        del cands[best]
    chosen.append(hi)
    return sorted(chosen, key=fn)

"""A pool file's contents over random weights: the shape of a real pool
(entries spread over the cost range, per-entry BN statistics) for tests,
benchmarks, examples and ``adaptive-rt make-random-pool``. Accuracy is not
measured."""
from __future__ import annotations

from ..model.graph import build_graph
from ..model.space import SearchSpace
from ..model.weights import entry_bn_stats, random_weights, spread_configs
from .poolfile import make_entry

__all__ = ["random_pool"]


def random_pool(space: SearchSpace, k: int, seed: int = 0, configs: list | None = None):
    """(entries, tensors) of a pool over random weights: ``k`` entries spread
    over MFLOPs, or exactly ``configs`` if given. The shape of a real pool, for
    tests and benchmarks; accuracy is not measured."""
    weights = random_weights(space, seed)
    tensors = {n: a for n, a in weights.items() if not n.endswith((".bn.mean", ".bn.var"))}
    entries = []
    for i, cfg in enumerate(configs if configs is not None else spread_configs(space, k, seed)):
        prefix = f"bn.e{i}."
        tensors.update(entry_bn_stats(build_graph(space, cfg), weights, prefix))
        entries.append(make_entry(space, cfg, f"e{i}", prefix))
    return entries, tensors

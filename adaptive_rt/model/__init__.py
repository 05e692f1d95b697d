"""The model: what a supernet is, independent of weights files and executors.

- ``space``: :class:`SearchSpace` and :class:`SubnetConfig` (value objects, sampling, JSON);
- ``presets``: the named spaces (``get_space``), including Once-for-All's;
- ``layout``: the native tensor names and shapes, and the channel-width arithmetic;
- ``graph``: the graph IR of one subnet and its cost model;
- ``fold``: batch norm folded into a per-channel epilogue (the one fold every executor uses);
- ``weights``: random weights, per-entry BN statistics, configs spread over the cost range;
- ``reference``: the float64 NumPy executor every other executor is tested against.
"""
from __future__ import annotations

from .graph import Graph, Op, build_graph, cached_graph, subnet_cost
from .presets import get_space, list_spaces, register_space
from .space import ConfigError, SearchSpace, SpaceError, StageSpec, SubnetConfig

__all__ = ["SearchSpace", "StageSpec", "SubnetConfig", "ConfigError", "SpaceError", "get_space", "list_spaces",
           "register_space", "Graph", "Op", "build_graph", "cached_graph", "subnet_cost"]

"""adaptive_rt: an on-device runtime for resource-adaptive (weight-sharing) neural networks.

The runtime imports numpy (and psutil for monitoring) only; torch is used by
``adaptive_rt.train`` alone. Submodules are imported on first use.
"""
from __future__ import annotations

__version__ = "0.1.0"

from .model.space import SearchSpace, StageSpec, SubnetConfig, ConfigError, SpaceError  # noqa: E402
from .model.presets import get_space, list_spaces  # noqa: E402
from .io.poolfile import PoolEntry, PoolFile, PoolFileError, load_pool, write_pool, make_entry  # noqa: E402
from .model.graph import build_graph  # noqa: E402

__all__ = ["__version__", "SearchSpace", "StageSpec", "SubnetConfig", "ConfigError", "SpaceError",
           "get_space", "list_spaces", "PoolEntry", "PoolFile", "PoolFileError", "load_pool",
           "write_pool", "make_entry", "build_graph"]

_LAZY = {"Runtime": "serve.runtime", "InputError": "serve.runtime", "Engine": "engine", "Client": "daemon"}


def __getattr__(name: str):
    """``Runtime``, ``Engine`` and ``Client`` are imported on first use only."""
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'adaptive_rt' has no attribute {name!r}")

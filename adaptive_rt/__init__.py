"""adaptive_rt: an on-device runtime for resource-adaptive (weight-sharing) neural networks.

The package follows the data flow (docs/architecture.md): ``model`` (what a
supernet is) -> ``io`` (the pool file) -> ``engine`` (the C++ core) -> ``serve``
(backends, monitor, policy, Runtime) -> ``daemon`` and ``cli``; ``train`` (the
only user of torch) and ``bench`` beside them. The runtime imports numpy (and
psutil for monitoring) only. ``Runtime``, ``Engine`` and ``Client`` are
imported on first use.
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
    import importlib
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    if name == "reference":      # the NumPy reference executor, adaptive_rt.model.reference
        return importlib.import_module(".model.reference", __name__)
    raise AttributeError(f"module 'adaptive_rt' has no attribute {name!r}")

"""Files: strict bounded JSON (``jsonio``), atomic writes (``atomic``), the
pool file (``poolfile``: schema, validation, loading), pools of
random weights (``randompool``) and the datasets training reads (``data``)."""
from __future__ import annotations

from .poolfile import PoolEntry, PoolFile, PoolFileError, load_pool, make_entry, write_pool

__all__ = ["PoolEntry", "PoolFile", "PoolFileError", "load_pool", "make_entry", "write_pool"]

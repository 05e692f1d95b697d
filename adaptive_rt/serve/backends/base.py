"""The backend interface and its registry (see the package docstring)."""
from __future__ import annotations

import threading
from typing import Callable

import numpy as np

from ...io.poolfile import PoolFile
from ...registry import Registry, RegistryError

__all__ = ["Backend", "Runner", "Exported", "BACKENDS", "register_backend", "make_backend", "available_backends"]

#: Backends by name. The torch backend lives with the trainer
#: (``adaptive_rt.train.torch_backend``) and joins through the
#: ``adaptive_rt.backends`` entry point, so nothing here imports torch.
BACKENDS: Registry[type["Backend"]] = Registry("backend", entry_points="adaptive_rt.backends")


def register_backend(name: str) -> Callable:
    """Class decorator: register a Backend subclass under ``name``."""
    return BACKENDS.register(name)


def available_backends() -> list[str]:
    """Names of the backends whose packages are installed here."""
    out = []
    for name, cls in BACKENDS.items():
        try:
            cls.check()
            out.append(name)
        except ImportError:
            pass
    return out


def make_backend(name: str, pool: PoolFile, threads: int = 1, resident: bool = False) -> "Backend":
    try:
        cls = BACKENDS.get(name)
    except RegistryError as e:
        raise ValueError(str(e)) from None
    try:
        cls.check()
    except ImportError as e:
        raise ValueError(f"backend {name!r} is not available: {e}") from None
    return cls(pool, threads, resident)


class Runner:
    """One prepared entry: ``runner(x, threads)`` -> ``[N, classes]`` float32."""

    def __init__(self, entry_id: str, fn: Callable[[np.ndarray, int], np.ndarray]):
        self.entry_id = entry_id
        self._fn = fn

    def __call__(self, x: np.ndarray, threads: int = 1) -> np.ndarray:
        return self._fn(x, threads)


class Backend:
    name = "?"
    fixed_threads = True     # the thread count is set at prepare time, not per call
    int8 = False             # runs int8 entries (native; ONNX Runtime on QDQ, LiteRT on full-integer exports)

    def __init__(self, pool: PoolFile, threads: int = 1, resident: bool = False):
        self.pool = pool
        self.threads = max(1, int(threads))
        self.resident = resident
        self._runners: dict[str, Runner] = {}
        self._lock = threading.Lock()

    @staticmethod
    def check() -> None:
        """Raise ImportError when the backend's package is missing."""

    def thread_counts(self) -> list[int]:
        return [self.threads] if self.fixed_threads else list(range(1, self.threads + 1))

    def _build(self, entry_id: str) -> Runner:
        raise NotImplementedError

    def prepare(self, entry_id: str) -> Runner:
        """The runner of ``entry_id``: cached when resident (or already current),
        else built now — and the others dropped."""
        e = self.pool.entry(entry_id)   # KeyError naming the ids for an unknown one
        if e.is_int8 and not self.int8:
            raise ValueError(f"entry {e.id!r} is int8: the {self.name} backend runs float32 entries only "
                             "(serve a pool with int8 entries on the native backend)")
        with self._lock:
            r = self._runners.get(entry_id)
            if r is not None:
                return r
        r = self._build(entry_id)
        with self._lock:
            if not self.resident:
                self._runners.clear()
            self._runners[entry_id] = r
        return r

    @property
    def held(self) -> list[str]:
        return list(self._runners)

    @property
    def isa(self) -> str | None:
        """The kernel table in use, where the backend has a choice (else None)."""
        return None

    def arena_bytes(self, entry_id: str) -> int:
        """Activation memory one run of the entry holds: measured where the
        backend knows it, else the graph's peak activation estimate."""
        return self.pool.entry(entry_id).peak_activation_bytes


class Exported(Backend):
    """Backends that run an exported model: the bytes are built once per entry."""

    def __init__(self, pool: PoolFile, threads: int = 1, resident: bool = False):
        super().__init__(pool, threads, resident)
        self._models: dict[str, bytes] = {}

    def model(self, entry_id: str) -> bytes:
        m = self._models.get(entry_id)
        if m is None:
            e = self.pool.entry(entry_id)
            if e.is_int8 and not self.int8:
                raise ValueError(f"entry {e.id!r} is int8: the {self.name} backend has no int8 export yet")
            m = self._models[entry_id] = self._export(e)
        return m



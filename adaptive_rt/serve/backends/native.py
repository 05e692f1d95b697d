"""The native C++ engine as a backend: every entry's plan built once, one copy
of the weights, the thread count chosen per call."""
from __future__ import annotations

import numpy as np

from ...engine import Engine, Plan
from ...io.poolfile import PoolFile
from .base import Backend, Runner, register_backend

__all__ = ["NativeBackend", "PlanRunner"]


class PlanRunner(Runner):
    """A runner over one prebuilt engine plan (``runner.plan``)."""

    def __init__(self, engine: Engine, plan: Plan):
        super().__init__(plan.entry.id, self._run)
        self.engine, self.plan = engine, plan

    def _run(self, x: np.ndarray, threads: int) -> np.ndarray:
        return self.engine.run(self.plan, x, threads=threads)


@register_backend("native")
class NativeBackend(Backend):
    fixed_threads = False
    int8 = True

    def __init__(self, pool: PoolFile, threads: int = 1, resident: bool = True):
        super().__init__(pool, threads, True)   # plans are small: always resident
        self.engine = Engine(pool, max_threads=self.threads)

    @property
    def isa(self) -> str:
        return self.engine.isa

    def arena_bytes(self, entry_id: str) -> int:
        return self.prepare(entry_id).plan.arena_bytes

    def _build(self, entry_id: str) -> PlanRunner:
        return PlanRunner(self.engine, self.engine.plan(entry_id))

"""The native engine: one copy of the pool's weights, one prebuilt plan per entry.

``Engine.open(pool_path)`` loads the pool file (one copy of the weights);
``engine.plan(entry_id)`` turns the entry's graph into a C++ plan once —
kernel per op chosen for its shape and this CPU, BN folded into per-channel
scale/shift, every pointer into the shared weights and every activation
offset resolved; ``engine.run(plan, x, threads=1)`` runs it with the GIL
released. Switching subnet is passing another plan: microseconds, no weight
is touched (``adaptive_rt.serve.Runtime`` keeps the active one). The math lives in ``csrc/``; this module only translates the
graph IR (``graph.py``) into plan ops.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from enum import IntEnum
import numpy as np

from .model.fold import epilogue
from .model.graph import Graph
from .io.poolfile import PoolEntry, PoolFile, load_pool
from .model.quant import Q8, op_params, qparams_of

try:
    from . import _core
except ImportError as e:  # pragma: no cover - depends on the build
    raise ImportError("adaptive_rt._core (the C++ engine) is not built: reinstall with "
                      "`pip install .` (needs a C++17 compiler)") from e

__all__ = ["Engine", "Plan", "DEFAULT_THREADS", "available_isas", "default_isa", "available_isas8", "default_isa8",
           "BUILT_WITH_OPENMP", "Gate", "ShmStatus"]

#: A counting semaphore with a bounded queue (``acquire_bounded(max_waiting)``,
#: ``try_acquire``, ``release``, ``waiting``, ``held``; a context manager): the daemon's one
#: run gate, shared by its Python transports and the C++ shared-memory loop.
Gate = _core.Gate


class ShmStatus(IntEnum):
    """Why :meth:`Engine.serve_shm` came back (csrc/serve/shm_loop.h)."""
    REPORT = 0       # latencies to account for; call again
    CLOSED = 1       # the peer closed, or the socket was shut down
    IDLE = 2         # no request for idle_s
    PENDING = 3      # a request was read and not run: the caller answers it
    NON_FINITE = 4   # the last request ran and gave non-finite logits: the caller answers it
    CHANGED = 5      # the generation changed while waiting
    BUSY = 6         # the last request was read and not run: the gate's queue is full


#: Threads an engine (and the runtime, calibration) uses at most by default: every
#: CPU up to 4 — beyond that, batch-1 inference of these nets stops scaling.
DEFAULT_THREADS = max(1, min(os.cpu_count() or 1, 4))

available_isas = _core.available_isas
default_isa = _core.default_isa
available_isas8 = _core.available_isas8
default_isa8 = _core.default_isa8
#: True in the comparison build whose parallel regions run on OpenMP (ADAPTIVE_RT_OPENMP=1)
BUILT_WITH_OPENMP = bool(_core.built_with_openmp)


@dataclass(frozen=True)
class Plan:
    """A prebuilt, immutable plan of one pool entry (safe to share across threads)."""

    entry: PoolEntry
    graph: Graph
    native: "_core.Plan"

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self.graph.input_shape

    @property
    def num_classes(self) -> int:
        return self.graph.num_classes

    @property
    def arena_bytes(self) -> int:
        return self.native.arena_bytes

    def describe(self) -> str:
        return self.native.describe()


def _total_memory() -> int:
    """This machine's memory in bytes (sysconf: no psutil import on the engine's start-up path)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):   # not POSIX
        import psutil
        return int(psutil.virtual_memory().total)


class Engine:
    """One pool file's weights (one copy, shared by every plan) and a
    native engine with its thread pool and scratch arenas."""

    def __init__(self, pool: PoolFile, max_threads: int | None = None, isa: str | None = None,
                 max_activation_bytes: int | None = None, isa8: str | None = None):
        self.pool = pool
        n = max_threads if max_threads is not None else DEFAULT_THREADS
        self._native = _core.Engine(max(1, min(int(n), 256)), isa or "", isa8 or "")
        #: A plan whose activations (per image, times the threads that may run it)
        #: would need more is refused before anything is allocated. Default: this
        #: machine's memory.
        self.max_activation_bytes = int(max_activation_bytes or _total_memory())

    @classmethod
    def open(cls, pool_path: str | os.PathLike, max_threads: int | None = None, isa: str | None = None,
             verify_checksum: bool = True) -> "Engine":
        return cls(load_pool(pool_path, verify_checksum=verify_checksum), max_threads, isa)

    @property
    def isa(self) -> str:
        return self._native.isa

    @property
    def isa8(self) -> str:
        """The int8 kernel table (int8 entries' plans)."""
        return self._native.isa8

    @property
    def max_threads(self) -> int:
        return self._native.max_threads

    @property
    def arena_bytes(self) -> int:
        """Bytes of activation scratch held (one arena per concurrent run)."""
        return self._native.arena_bytes

    def plan(self, entry: str | PoolEntry, input_hw: tuple[int, int] | None = None) -> Plan:
        """Build the plan of a pool entry (by id) for inputs of ``input_hw``
        (default: the space's input size; other sizes get a resize op)."""
        if isinstance(entry, str):
            e = self.pool.entry(entry)
        elif isinstance(entry, PoolEntry):
            e = entry
            if not self.pool.owns(e):
                raise ValueError(f"entry {e.id!r} is not an entry of {self.pool.path} (an entry of another pool?)")
        else:
            raise TypeError(f"entry must be an entry id or a PoolEntry, got {type(entry).__name__}")
        g = self.pool.graph(e, input_hw)
        need = g.cost().peak_activation_bytes * self.max_threads
        if need > self.max_activation_bytes:
            raise ValueError(f"entry {e.id!r} at {g.input_shape[0]}x{g.input_shape[1]} needs {need:,} bytes of "
                             f"activations at {self.max_threads} threads, over the limit of "
                             f"{self.max_activation_bytes:,} (this machine's memory)")
        if e.is_int8:
            return Plan(e, g, self._plan_int8(e, g))
        t = self.pool.tensors
        eps = self.pool.space.bn_eps
        p = _core.Plan([tuple(s) for s in g.shapes], g.output)
        for op in g.ops:
            kw: dict = {}
            if op.weight is not None:
                if op.kind in ("pwconv", "linear"):   # 1x1 and linear weights as loaded (in panels where packed)
                    kw["w"], kn = self.pool.gemm_weight(op.weight.name)
                    if kn is not None:
                        kw["w_panels"] = kn
                else:
                    kw["w"] = t[op.weight.name]
                scale, shift = epilogue(op, t, e.bn, eps)
                kw["scale"] = None if scale is None else scale.astype(np.float32)
                kw["shift"] = None if shift is None else shift.astype(np.float32)
            if op.se is not None:
                w1, b1, w2, b2 = op.se
                (a1, kn1), (a2, kn2) = self.pool.gemm_weight(w1.name), self.pool.gemm_weight(w2.name)
                kw.update(se_r=w1.active[1], se_w1=a1, se_b1=t[b1.name], se_w2=a2, se_b2=t[b2.name],
                          se_gate=op.gate)
                if kn1 is not None:
                    kw["se_w1_panels"] = kn1
                if kn2 is not None:
                    kw["se_w2_panels"] = kn2
            p.add_op(op.kind, op.name, op.inputs[0], op.inputs[1] if len(op.inputs) > 1 else -1,
                     op.output, k=op.kernel, stride=op.stride, act=op.act, **kw)
        p.finalize(self._native)
        return Plan(e, g, p)

    def _plan_int8(self, e: PoolEntry, g: Graph) -> "_core.Plan":
        """The native plan of an int8 entry: a quantize step for the input
        (a value of its own after the graph's), then every op in its int8
        form with the multipliers of :func:`~adaptive_rt.model.quant.op_params`."""
        t = self.pool.tensors
        qp = qparams_of(g, t[e.quant + "qparams"])
        vq = len(g.shapes)
        p = _core.Plan([tuple(s) for s in g.shapes] + [tuple(g.shapes[0])], g.output, q8=True)
        q0 = qp["v0"]
        p.add_op("quantize", "input.quantize", 0, -1, vq, qout=(q0.scale, q0.zp))
        eps = self.pool.space.bn_eps
        for op in g.ops:
            ins = [vq if v == 0 else v for v in op.inputs]
            pp = op_params(op, g, t, e.bn, eps, qp)
            kw: dict = {"qin": (pp.q_in.scale, pp.q_in.zp), "qout": (pp.q_out.scale, pp.q_out.zp),
                        "float_out": pp.float_out}
            if op.weight is not None:
                kw.update(w8=t[op.weight.name + Q8], scale=pp.mul, shift=pp.add, out_scale=float(pp.out_scale),
                          six=float(pp.six))
            if op.kind == "add":
                kw.update(qin1=(pp.q_in1.scale, pp.q_in1.zp), m_a=float(pp.m_a), m_b=float(pp.m_b))
            elif op.kind == "gap":
                kw.update(m_a=float(pp.m_a))
            elif op.kind == "se":
                q_pool, m_pool, mul1, add1, q_red, mul2, add2, m_se = pp.se
                w1, _, w2, _ = op.se
                kw.update(se_r=w1.active[1], se_w1_8=t[w1.name + Q8], se_w2_8=t[w2.name + Q8],
                          q_pool=(q_pool.scale, q_pool.zp), q_red=(q_red.scale, q_red.zp), m_a=float(m_pool),
                          m_b=float(m_se), se_mul1=mul1, se_add1=add1, se_mul2=mul2, se_add2=add2, se_gate=op.gate)
            p.add_op(op.kind, op.name, ins[0], ins[1] if len(ins) > 1 else -1, op.output, k=op.kernel,
                     stride=op.stride, act=op.act, **kw)
        p.finalize(self._native)
        return p

    def plans(self) -> dict[str, Plan]:
        """A plan for every entry of the pool, by id."""
        return {e.id: self.plan(e) for e in self.pool.entries}

    def profile(self, plan: Plan, x: np.ndarray, threads: int = 1, repeats: int = 20) -> list[float]:
        """Median seconds of each step of ``plan`` (``plan.native.steps()``
        order) over ``repeats`` runs of the image ``x[:1]``: a per-op profile."""
        return list(self._native.profile(plan.native, x, int(threads), int(repeats)))

    def serve_shm(self, plan: Plan, fd: int, threads: int, input_slot: np.ndarray, output_slot: np.ndarray,
                  generation: np.ndarray, generation_seen: int, gate: "Gate", *, report_s: float = 0.01,
                  max_records: int = 256, idle_s: float = 60.0, check_finite: bool = True,
                  max_queue: int = 64) -> tuple[ShmStatus, int, int, int, np.ndarray, np.ndarray, int]:
        """Serve the daemon's shared-memory request records on the connected
        socket ``fd`` with ``plan`` (GIL released, no Python per request:
        csrc/serve/shm_loop.cc) until something needs the caller: returns
        ``(status, n, seq, magic, ms[], images[], errno)`` — the request's
        fields for PENDING / BUSY / NON_FINITE, and the milliseconds and
        images of every request it served. It comes back when
        ``generation[0]`` differs from ``generation_seen``."""
        if not isinstance(plan, Plan):
            raise TypeError(f"plan must be an adaptive_rt.engine.Plan, got {type(plan).__name__}")
        r = _core.shm_loop(fd, self._native, plan.native, int(threads), input_slot, output_slot, plan.entry.id,
                           generation, int(generation_seen), report_s=report_s, max_records=max_records,
                           idle_s=idle_s, check_finite=check_finite, gate=gate, max_queue=max_queue)
        return (ShmStatus(r[0]),) + tuple(r[1:])

    def run(self, plan: Plan, x: np.ndarray, threads: int = 1, out: np.ndarray | None = None) -> np.ndarray:
        """Logits ``[N, classes]`` for an NHWC float32 C-contiguous batch ``x``.

        Raises TypeError for a wrong dtype, ValueError for a wrong rank, shape
        or layout — before any kernel runs; nothing is silently converted."""
        if not isinstance(plan, Plan):
            raise TypeError(f"plan must be an adaptive_rt.engine.Plan, got {type(plan).__name__}")
        if not isinstance(x, np.ndarray):
            raise TypeError(f"x must be a numpy array, got {type(x).__name__}")
        if not isinstance(threads, (int, np.integer)) or isinstance(threads, bool):
            raise TypeError("threads must be an integer")
        return self._native.run(plan.native, x, out, int(threads))

"""Execution backends behind one interface, registered by name.

``make_backend(name, pool, threads, resident)`` -> a Backend;
``backend.prepare(entry_id)`` -> a Runner: ``runner(x, threads) -> logits``
for an NHWC float32 batch, with ``runner.entry_id``. Switching costs what
it really costs on each backend:

- ``native`` (default): the C++ engine; every entry's plan is built once,
  all share one copy of the weights; the thread count is chosen per call.
- ``torch``: the training supernet's op code on the pool's tensors (with the
  ``train`` extra); one copy of the weights, every entry ready.
- ``onnxruntime``: an ``InferenceSession`` per entry from the ONNX export;
  ``litert``: a LiteRT ``Interpreter`` (XNNPACK delegate) per entry from the
  TFLite export. Their thread count is fixed when the session is created
  (``threads``). By default only the runner in use is kept: preparing
  another entry creates its session (milliseconds) and drops the previous
  one; ``resident=True`` keeps every entry's session alive (faster
  switches, the memory of all of them).

The exported models are built once per entry and kept as bytes.
"""
from __future__ import annotations

import threading
from typing import Callable

import numpy as np

from ..poolfile import PoolFile

__all__ = ["Backend", "Runner", "BACKENDS", "register_backend", "make_backend", "available_backends"]

BACKENDS: dict[str, type] = {}


def register_backend(name: str) -> Callable:
    def deco(cls):
        cls.name = name
        BACKENDS[name] = cls
        return cls
    return deco


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
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; have: {', '.join(BACKENDS)}")
    cls = BACKENDS[name]
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
        self.pool.entry(entry_id)   # KeyError naming the ids for an unknown one
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


@register_backend("native")
class NativeBackend(Backend):
    fixed_threads = False

    def __init__(self, pool: PoolFile, threads: int = 1, resident: bool = True):
        super().__init__(pool, threads, True)   # plans are small: always resident
        from ..engine import Engine
        self.engine = Engine(pool, max_threads=self.threads)

    def _build(self, entry_id: str) -> Runner:
        plan = self.engine.plan(entry_id)
        eng = self.engine
        r = Runner(entry_id, lambda x, t: eng.run(plan, x, threads=t))
        r.plan = plan
        return r


class _Exported(Backend):
    """Backends that run an exported model: the bytes are built once per entry."""

    def __init__(self, pool: PoolFile, threads: int = 1, resident: bool = False):
        super().__init__(pool, threads, resident)
        self._models: dict[str, bytes] = {}

    def model(self, entry_id: str) -> bytes:
        m = self._models.get(entry_id)
        if m is None:
            e = self.pool.entry(entry_id)
            m = self._models[entry_id] = self._export(e)
        return m


@register_backend("onnxruntime")
class OrtBackend(_Exported):
    @staticmethod
    def check() -> None:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401

    def _export(self, e) -> bytes:
        from ..export.onnx import to_onnx
        return to_onnx(self.pool.space, e.config, self.pool.tensors, e.bn, graph=self.pool.graph(e)).SerializeToString()

    def _build(self, entry_id: str) -> Runner:
        import onnxruntime as ort
        o = ort.SessionOptions()
        o.intra_op_num_threads = self.threads
        o.inter_op_num_threads = 1
        o.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        sess = ort.InferenceSession(self.model(entry_id), o, providers=["CPUExecutionProvider"])
        return Runner(entry_id, lambda x, t: sess.run(None, {"input": x})[0])


@register_backend("litert")
class LiteRTBackend(_Exported):
    @staticmethod
    def check() -> None:
        from ai_edge_litert.interpreter import Interpreter  # noqa: F401

    def _export(self, e) -> bytes:
        from ..export.tflite import to_tflite
        return to_tflite(self.pool.space, e.config, self.pool.tensors, e.bn, graph=self.pool.graph(e))

    def _build(self, entry_id: str) -> Runner:
        from ai_edge_litert.interpreter import Interpreter
        it = Interpreter(model_content=self.model(entry_id), num_threads=self.threads)
        it.allocate_tensors()
        inp = it.get_input_details()[0]["index"]
        out = it.get_output_details()[0]["index"]
        lock = threading.Lock()          # an interpreter runs one call at a time
        batch = [1]

        def run(x: np.ndarray, t: int) -> np.ndarray:
            with lock:
                if x.shape[0] != batch[0]:
                    it.resize_tensor_input(inp, list(x.shape))
                    it.allocate_tensors()
                    batch[0] = x.shape[0]
                it.set_tensor(inp, x)
                it.invoke()
                return it.get_tensor(out).copy()
        return Runner(entry_id, run)


@register_backend("torch")
class TorchBackend(Backend):
    """The pool's weights run by the training supernet's own op code
    (``Supernet._op`` on slices of the pool's tensors) — the path training
    and ``build-pool`` measured accuracy with. Needs the ``train`` extra."""

    @staticmethod
    def check() -> None:
        import torch  # noqa: F401

    def __init__(self, pool: PoolFile, threads: int = 1, resident: bool = True):
        super().__init__(pool, threads, True)   # one copy of the weights serves every entry
        import torch
        from ..train.supernet import Supernet
        torch.set_num_threads(self.threads)
        tensors = {k: torch.from_numpy(np.array(v)) for k, v in pool.tensors.items()}

        class _PoolNet(torch.nn.Module):
            forward, _op, _w, _bn = Supernet.forward, Supernet._op, Supernet._w, Supernet._bn

            def __init__(self, space):
                super().__init__()
                self.space, self.bn_momentum = space, 0.1

            def tensor(self, name):
                return tensors[name]

        self.net = _PoolNet(pool.space).eval()
        self._tensors = tensors

    def _build(self, entry_id: str) -> Runner:
        import torch
        e = self.pool.entry(entry_id)
        g = self.pool.graph(e)
        stats = {k[len(e.bn):]: v for k, v in self._tensors.items() if k.startswith(e.bn)}
        net, threads = self.net, self.threads

        def run(x: np.ndarray, t: int) -> np.ndarray:
            if torch.get_num_threads() != threads:   # a process-wide setting: another backend may have changed it
                torch.set_num_threads(threads)
            with torch.inference_mode():
                return net(torch.from_numpy(np.ascontiguousarray(x)), e.config, bn_stats=stats,
                           graph=g).numpy()
        return Runner(entry_id, run)

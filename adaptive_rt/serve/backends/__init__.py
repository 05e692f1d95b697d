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

from .base import BACKENDS, Backend, Exported, Runner, available_backends, make_backend, register_backend
from . import litert, native, onnxruntime  # noqa: F401  (they register themselves)

__all__ = ["Backend", "Runner", "Exported", "BACKENDS", "register_backend", "make_backend", "available_backends"]

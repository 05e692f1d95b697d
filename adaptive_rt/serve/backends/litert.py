"""LiteRT as a backend: an Interpreter (XNNPACK delegate) per entry from the TFLite export
(full-integer for int8 entries)."""
from __future__ import annotations

import threading

import numpy as np

from .base import Exported, Runner, register_backend

@register_backend("litert")
class LiteRTBackend(Exported):
    int8 = True   # int8 entries run as full-integer exports (to_tflite_int8)

    @staticmethod
    def check() -> None:
        from ai_edge_litert.interpreter import Interpreter  # noqa: F401

    def _export(self, e) -> bytes:
        from ...export.tflite import to_tflite, to_tflite_int8
        if e.is_int8:
            return to_tflite_int8(self.pool, e, graph=self.pool.graph(e))
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

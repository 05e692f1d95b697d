"""ONNX Runtime as a backend: an InferenceSession per entry from the ONNX export."""
from __future__ import annotations

from .base import Exported, Runner, register_backend

@register_backend("onnxruntime")
class OrtBackend(Exported):
    int8 = True   # int8 entries run as QDQ exports (to_onnx_int8)

    @staticmethod
    def check() -> None:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401

    def _export(self, e) -> bytes:
        from ...export.onnx import to_onnx, to_onnx_int8
        if e.is_int8:
            return to_onnx_int8(self.pool, e).SerializeToString()
        return to_onnx(self.pool.space, e.config, self.pool.tensors, e.bn, graph=self.pool.graph(e)).SerializeToString()

    def _build(self, entry_id: str) -> Runner:
        import onnxruntime as ort
        o = ort.SessionOptions()
        o.intra_op_num_threads = self.threads
        o.inter_op_num_threads = 1
        o.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        sess = ort.InferenceSession(self.model(entry_id), o, providers=["CPUExecutionProvider"])
        return Runner(entry_id, lambda x, t: sess.run(None, {"input": x})[0])

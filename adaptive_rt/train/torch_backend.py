"""The ``torch`` backend: a pool's weights run by the training supernet's own
op code (:func:`adaptive_rt.train.supernet.run_graph` on slices of the
pool's tensors) — the path training and ``build-pool`` measured accuracy
with. It lives with the trainer and joins the backend registry through the
``adaptive_rt.backends`` entry point (``pyproject.toml``), so the runtime
never imports torch itself."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..io.poolfile import PoolFile
from ..model.graph import Op
from ..serve.backends.base import Backend, Runner, register_backend
from .supernet import run_graph

__all__ = ["TorchBackend"]


@register_backend("torch")
class TorchBackend(Backend):
    """One copy of the weights (torch tensors over the pool's arrays) serves every entry."""

    @staticmethod
    def check() -> None:
        import torch  # noqa: F401

    def __init__(self, pool: PoolFile, threads: int = 1, resident: bool = True):
        super().__init__(pool, threads, True)
        torch.set_num_threads(self.threads)
        self._tensors = {k: torch.from_numpy(np.array(v)) for k, v in pool.tensors.items()}

    def _build(self, entry_id: str) -> Runner:
        e = self.pool.entry(entry_id)
        g = self.pool.graph(e)
        tensors, threads, eps = self._tensors, self.threads, self.pool.space.bn_eps

        def batch_norm(y: torch.Tensor, op: Op) -> torch.Tensor:
            bn, c = op.bn, op.bn.channels
            return F.batch_norm(y, tensors[bn.mean(e.bn)], tensors[bn.var(e.bn)], tensors[bn.gamma][:c],
                                tensors[bn.beta][:c], training=False, eps=eps)

        def run(x: np.ndarray, t: int) -> np.ndarray:
            if torch.get_num_threads() != threads:   # a process-wide setting: another backend may have changed it
                torch.set_num_threads(threads)
            with torch.inference_mode():
                return run_graph(g, torch.from_numpy(np.ascontiguousarray(x)), tensors.__getitem__,
                                 batch_norm).numpy()
        return Runner(entry_id, run)

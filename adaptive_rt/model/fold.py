"""Batch norm and bias folded into a per-channel affine epilogue: the one
fold every executor uses (the C++ engine's plans, the ONNX and TFLite
exporters, the NumPy reference).

For an op ``y = act(BN(x @ W + b))`` with BN statistics of one pool entry:

    scale = gamma / sqrt(var + eps)
    shift = beta - mean * scale + b * scale

so ``y = act((x @ W) * scale + shift)``, or ``act(x @ (W * scale) + shift)``
with the scale folded into the weight's output-channel axis. Everything is
computed in float64; callers cast.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from .graph import BatchNormRef, Op, WeightRef

__all__ = ["FoldError", "active_slice", "bn_affine", "epilogue", "folded_weight"]


class FoldError(ValueError):
    """A tensor the op needs is missing or too small."""


def _tensor(weights: Mapping[str, np.ndarray], name: str) -> np.ndarray:
    try:
        return weights[name]
    except KeyError:
        raise FoldError(f"missing tensor {name!r}") from None


def active_slice(weights: Mapping[str, np.ndarray], ref: WeightRef) -> np.ndarray:
    """The active part of a weight (``ref.active`` leading slice) as float64."""
    leading = getattr(weights, "leading", None)
    if leading is not None:          # a loaded pool: read only the slice (of a weight in panels, unpack only it)
        if ref.name not in weights:
            raise FoldError(f"missing tensor {ref.name!r}")
        shape = weights.shape(ref.name)
    else:
        t = _tensor(weights, ref.name)
        shape = tuple(t.shape)
    if tuple(shape) != ref.shape:
        raise FoldError(f"tensor {ref.name!r} has shape {tuple(shape)}, expected {ref.shape}")
    if leading is not None:
        return leading(ref.name, ref.active, np.float64)
    return np.asarray(t[tuple(slice(0, a) for a in ref.active)], dtype=np.float64)


def bn_affine(weights: Mapping[str, np.ndarray], bn: BatchNormRef, prefix: str, eps: float):
    """(scale, shift) of one batch norm with the statistics under ``prefix``."""
    def get(name: str) -> np.ndarray:
        t = _tensor(weights, name)
        if t.ndim != 1 or t.shape[0] < bn.channels:
            raise FoldError(f"tensor {name!r} has shape {tuple(t.shape)}, needs at least ({bn.channels},)")
        return np.asarray(t[: bn.channels], dtype=np.float64)

    scale = get(bn.gamma) / np.sqrt(get(bn.var(prefix)) + eps)
    return scale, get(bn.beta) - get(bn.mean(prefix)) * scale


def epilogue(op: Op, weights: Mapping[str, np.ndarray], prefix: str, eps: float):
    """(scale or None, shift or None) of the op's epilogue, float64: None
    where the op has no BN (scale) or neither BN nor bias (shift)."""
    b = active_slice(weights, op.bias) if op.bias is not None else None
    if op.bn is None:
        return None, b
    scale, shift = bn_affine(weights, op.bn, prefix, eps)
    return scale, shift if b is None else shift + b * scale


def folded_weight(op: Op, weights: Mapping[str, np.ndarray], prefix: str, eps: float):
    """(W * scale, shift or None): the op's active weight with its BN folded
    into the last (output-channel) axis, float64."""
    w = active_slice(weights, op.weight)
    scale, shift = epilogue(op, weights, prefix, eps)
    return (w if scale is None else w * scale), shift

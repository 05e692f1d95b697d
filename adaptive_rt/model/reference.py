"""NumPy reference executor of the graph IR: slow, plain and exact.

It runs a :class:`~adaptive_rt.model.graph.Graph` on the supernet's weights (any
mapping of tensor name -> array, e.g. a pool file's views) in float64
and returns float32 logits. Every other executor (C++ engine, ONNX Runtime,
LiteRT, torch) is tested against it.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .fold import FoldError, active_slice, epilogue
from .graph import Graph, Op

__all__ = ["run", "activation", "resize_bilinear", "ReferenceError"]


#: The input or the weights do not fit the graph (one error for the fold and the executor).
ReferenceError = FoldError


def activation(x: np.ndarray, act: str) -> np.ndarray:
    if act == "none":
        return x
    if act == "relu":
        return np.maximum(x, 0.0)
    if act == "relu6":
        return np.clip(x, 0.0, 6.0)
    if act == "hswish":
        return x * np.clip(x + 3.0, 0.0, 6.0) / 6.0
    if act == "hsigmoid":
        return np.clip(x + 3.0, 0.0, 6.0) / 6.0
    if act == "sigmoid":
        return 1.0 / (1.0 + np.exp(-x))
    raise ReferenceError(f"unknown activation {act!r}")


def resize_bilinear(x: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Bilinear resize of NHWC with half-pixel centres, edge-clamped (ONNX
    Resize ``linear``/``half_pixel``; TFLite ``half_pixel_centers``)."""
    def axis(n_in: int, n_out: int):
        c = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
        c = np.clip(c, 0.0, n_in - 1)
        i0 = np.floor(c).astype(np.int64)
        i1 = np.minimum(i0 + 1, n_in - 1)
        return i0, i1, c - i0

    y0, y1, fy = axis(x.shape[1], out_h)
    x0, x1, fx = axis(x.shape[2], out_w)
    fy = fy[None, :, None, None]
    fx = fx[None, None, :, None]
    top = x[:, y0][:, :, x0] * (1 - fx) + x[:, y0][:, :, x1] * fx
    bot = x[:, y1][:, :, x0] * (1 - fx) + x[:, y1][:, :, x1] * fx
    return top * (1 - fy) + bot * fy


def _windows(x: np.ndarray, k: int, stride: int) -> np.ndarray:
    """(N, Ho, Wo, C, k, k) views of the k//2-padded input."""
    p = k // 2
    xp = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    win = sliding_window_view(xp, (k, k), axis=(1, 2))
    return win[:, ::stride, ::stride]


def _op(op: Op, vals: list, weights: Mapping[str, np.ndarray], prefix: str, eps: float,
        record: dict | None = None) -> np.ndarray:
    x = vals[op.inputs[0]]
    if op.kind == "resize":
        return resize_bilinear(x, op.out_shape[0], op.out_shape[1])
    if op.kind == "add":
        return x + vals[op.inputs[1]]
    if op.kind == "gap":
        return x.mean(axis=(1, 2), keepdims=True)
    if op.kind == "se":
        w1, b1, w2, b2 = (active_slice(weights, r) for r in op.se)
        s = x.mean(axis=(1, 2))
        r = activation(s @ w1 + b1, "relu")
        if record is not None:
            record[f"{op.name}.pool"], record[f"{op.name}.reduce"] = s, r
        gate = activation(r @ w2 + b2, op.gate)
        return x * gate[:, None, None, :]
    w = active_slice(weights, op.weight)
    if op.kind == "conv":
        win = _windows(x, op.kernel, op.stride)                   # N,Ho,Wo,C,kh,kw
        cols = win.transpose(0, 1, 2, 4, 5, 3)                    # N,Ho,Wo,kh,kw,C
        y = cols.reshape(*cols.shape[:3], -1) @ w
    elif op.kind == "dwconv":
        y = np.einsum("nhwcij,ijc->nhwc", _windows(x, op.kernel, op.stride), w)
    elif op.kind in ("pwconv", "linear"):
        y = x @ w
    else:
        raise ReferenceError(f"unknown op kind {op.kind!r}")
    scale, shift = epilogue(op, weights, prefix, eps)
    if scale is not None:
        y = y * scale
    if shift is not None:
        y = y + shift
    return activation(y, op.act)


def run(graph: Graph, weights: Mapping[str, np.ndarray], x: np.ndarray,
        bn_prefix: str = "", record: dict | None = None) -> np.ndarray:
    """Logits ``[N, num_classes]`` (float32) of ``graph`` for an NHWC batch ``x``.

    ``bn_prefix`` selects the BN statistics: a pool entry's ``bn`` field, or
    ``""`` for the supernet's own running statistics. With ``record``, every
    value (``v<i>``) and each squeeze-excite's pooled and reduced vectors
    (``<op>.pool``, ``<op>.reduce``) are stored there, float64 (calibration
    of int8 entries reads them).
    """
    x = np.asarray(x)
    if x.ndim != 4 or tuple(x.shape[1:]) != graph.input_shape:
        raise ReferenceError(f"input has shape {x.shape}, expected (N, {', '.join(map(str, graph.input_shape))})")
    vals: list = [None] * len(graph.shapes)
    vals[0] = x.astype(np.float64)
    eps = graph.space.bn_eps
    for op in graph.ops:
        vals[op.output] = _op(op, vals, weights, bn_prefix, eps, record)
    if record is not None:
        record.update((f"v{i}", v) for i, v in enumerate(vals) if v is not None)
    out = vals[graph.output]
    return out.reshape(out.shape[0], -1).astype(np.float32)

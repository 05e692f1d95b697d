"""NumPy reference of an int8 entry: the arithmetic of :mod:`.quant`, bit
for bit (int64 sums, float32 epilogues in the documented order). The
engine's int8 plans are tested against it for exact equality, and
calibration and the exporters take their numbers from it.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .fold import FoldError
from .graph import Graph
from .quant import QParams, act_f32, active_q8, epilogue_int8, op_params, qparams_of, resize_axis

__all__ = ["run_int8", "act_f32", "requantize", "quantize_input"]


def requantize(u: np.ndarray, q: QParams) -> np.ndarray:
    """uint8 of ``u`` (already in output steps): clamp, round half to even, add the zero point."""
    u = np.minimum(np.maximum(u.astype(np.float32), q.lo), q.hi)
    return (np.rint(u).astype(np.int32) + q.zp).astype(np.uint8)


def quantize_input(x: np.ndarray, q: QParams) -> np.ndarray:
    return requantize(np.asarray(x, np.float32) * q.inv, q)


def _windows(x: np.ndarray, k: int, stride: int, pad_value: int) -> np.ndarray:
    p = k // 2
    xp = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)), constant_values=pad_value)
    return sliding_window_view(xp, (k, k), axis=(1, 2))[:, ::stride, ::stride]   # N,Ho,Wo,C,kh,kw


def _resize(x: np.ndarray, ho: int, wo: int) -> np.ndarray:
    y0, y1, fy = resize_axis(x.shape[1], ho)
    x0, x1, fx = resize_axis(x.shape[2], wo)
    one = np.float32(1)
    fy, fx = fy[None, :, None, None], fx[None, None, :, None]
    xf = x.astype(np.float32)
    top = xf[:, y0][:, :, x0] * (one - fx) + xf[:, y0][:, :, x1] * fx
    bot = xf[:, y1][:, :, x0] * (one - fx) + xf[:, y1][:, :, x1] * fx
    t = top * (one - fy) + bot * fy
    return np.minimum(np.maximum(np.rint(t), np.float32(0)), np.float32(255)).astype(np.uint8)


def run_int8(graph: Graph, tensors: Mapping[str, np.ndarray], qtable: np.ndarray, x: np.ndarray,
             bn_prefix: str = "", record: dict | None = None) -> np.ndarray:
    """Logits ``[N, classes]`` (float32) of the int8 form of ``graph`` for an
    NHWC float32 batch ``x``; ``qtable`` is the entry's qparams. With
    ``record``, every value's uint8 array is stored there by point name."""
    x = np.asarray(x, np.float32)
    if x.ndim != 4 or tuple(x.shape[1:]) != graph.input_shape:
        raise FoldError(f"input has shape {x.shape}, expected (N, {', '.join(map(str, graph.input_shape))})")
    qp = qparams_of(graph, np.asarray(qtable))
    eps = graph.space.bn_eps
    vals: list = [None] * len(graph.shapes)
    vals[0] = quantize_input(x, qp["v0"])
    for op in graph.ops:
        p = op_params(op, graph, tensors, bn_prefix, eps, qp)
        a = vals[op.inputs[0]]
        zi = p.q_in.zp
        if op.kind == "resize":
            y = _resize(a, op.out_shape[0], op.out_shape[1])
        elif op.kind == "add":
            b = vals[op.inputs[1]]
            t = (a.astype(np.int32) - zi).astype(np.float32) * p.m_a + \
                (b.astype(np.int32) - p.q_in1.zp).astype(np.float32) * p.m_b
            y = requantize(t, p.q_out)
        elif op.kind == "gap":
            hw = a.shape[1] * a.shape[2]
            s = a.astype(np.int64).sum(axis=(1, 2), keepdims=True) - hw * zi
            y = requantize(s.astype(np.float32) * p.m_a, p.q_out)
        elif op.kind == "se":
            q_pool, m_pool, mul1, add1, q_red, mul2, add2, m_se = p.se
            w1, _, w2, _ = op.se
            hw = a.shape[1] * a.shape[2]
            s = a.astype(np.int64).sum(axis=(1, 2)) - hw * zi
            pooled = requantize(s.astype(np.float32) * m_pool, q_pool)
            (q1, _), (q2, _) = active_q8(tensors, w1), active_q8(tensors, w2)
            acc1 = (pooled.astype(np.int64) - q_pool.zp) @ q1
            red = requantize(np.maximum(acc1.astype(np.float32) * mul1 + add1, np.float32(0)), q_red)
            acc2 = (red.astype(np.int64) - q_red.zp) @ q2
            g = act_f32(acc2.astype(np.float32) * mul2 + add2, op.gate)
            mg = g * m_se
            y = requantize((a.astype(np.int32) - zi).astype(np.float32) * mg[:, None, None, :], p.q_out)
            if record is not None:
                record[f"{op.name}.pool"], record[f"{op.name}.reduce"] = pooled, red
        else:
            w, _ = active_q8(tensors, op.weight)
            ac = a.astype(np.int64) - zi
            if op.kind == "conv":
                win = _windows(ac, op.kernel, op.stride, 0).transpose(0, 1, 2, 4, 5, 3)
                acc = win.reshape(*win.shape[:3], -1) @ w
            elif op.kind == "dwconv":
                acc = np.einsum("nhwcij,ijc->nhwc", _windows(ac, op.kernel, op.stride, 0), w)
            else:
                acc = ac @ w
            y = epilogue_int8(acc, p, op.act)
        vals[op.output] = y
        if record is not None:
            record[f"v{op.output}"] = y
    if record is not None:
        record["v0"] = vals[0]
    out = vals[graph.output]
    return np.asarray(out, np.float32).reshape(out.shape[0], -1)

"""The int8 scheme: how weights and activations are quantized, and the exact
integer/float32 arithmetic of every int8 op.

Weights — one int8 copy shared by every subnet:
    every conv, depthwise, SE and linear weight is quantized symmetrically
    per output channel (its last axis), the scale taken over the FULL stored
    tensor (``scale[c] = max|W[..., c]| / 127``), so a prefix subnet reads a
    valid sub-block: the same scales, fewer rows and columns. ``<W>.q8``
    holds the int8 values, ``<W>.q8scale`` the float32 scales. 2-D weights
    ``[K, N]`` are stored as ``[ceil(K/4), N, 4]``: four consecutive rows of
    one column are adjacent, the operand layout of the dot-product
    instructions (x86 VNNI ``vpdpbusd``, Arm ``sdot``), still a prefix view
    (rows past an entry's K are never read); depthwise ``[k, k, C]`` as is.

Activations — per entry, per value, calibrated on data:
    every value of the graph (and the two inner values of each squeeze-
    excite: its pooled vector and its reduced vector) is uint8 with a scale
    and zero point, ``real = scale * (q - zero_point)``, stored per entry in
    the ``<quant>qparams`` tensor ``[P, 2]`` (scale, zero point) in
    :func:`quant_points` order. The input image is quantized by the first
    step; the logits are float32 (the classifier's accumulators dequantized).

Arithmetic — what the engine's kernels compute and :mod:`.reference_int8`
reproduces bit for bit (float32 ops in this order, no fused multiply-add,
round half to even):

    conv / 1x1 / linear / depthwise:
        acc = sum (q_in - z_in) * w              (int32, exact)
        t   = float(acc) * mul[c] + add[c]
        none, ReLU, ReLU6: mul = s_in s_w[c] bn_scale[c] / s_out, add = bn_shift[c] / s_out (output
              steps); u = t, the activation folded into the clamp's bounds: lo = 0 with a ReLU,
              hi = min(255 - z_out, 6 / s_out) with ReLU6
        hard-swish / hard-sigmoid: mul, add in real units (without / s_out);
              g = min(max(t + 3, 0), 6); u = (t * g) * out_scale or g * out_scale, out_scale = 1 / (6 s_out)
        the logits (float output): mul, add in real units, t is the output
        q   = rint(clamp(u, lo, hi)) + z_out      (lo = -z_out, hi = 255 - z_out unless a ReLU narrows them)
    add:      t = float(qa - za) * ma + float(qb - zb) * mb;   q = rint(clamp(t, ...)) + z_out
    pool:     t = float(sum_p q - HW * z_in) * m;              (m = s_in / (HW * s_out))
    SE:       pooled (as pool) -> 1x1 reduce + ReLU (as linear) -> 1x1 expand + gate, float
              gate g[c] (hsigmoid: min(max(t + 3, 0), 6) * (1/6));
              q = rint(clamp(float(q_in - z_in) * (g[c] * m_se), ...)) + z_out
              (m_se = s_in / s_out)
    resize:   bilinear on q with float32 weights, output shares the input's scale
    quantize: q = rint(clamp(x * inv_in, ...)) + z_in      (the input image)
with ``hswish(t) = t * min(max(t + 3, 0), 6) * (1/6)``, ``hsigmoid(t) =
min(max(t + 3, 0), 6) * (1/6)``. Every multiplier is computed once in
float64 and rounded to float32 (:func:`op_params`), and both executors take
it from there.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from .fold import FoldError, active_slice, epilogue
from .graph import Graph, Op, WeightRef
from .layout import tensor_specs
from .space import SearchSpace

__all__ = ["Q8", "Q8SCALE", "QMAX", "quantized_weight_specs", "quantize_weight", "pack_k4", "unpack_k4",
           "quant_points", "choose_qparams", "QParams", "OpParams", "op_params", "active_q8", "entry_weight_bytes",
           "act_f32", "epilogue_int8"]

Q8 = ".q8"
Q8SCALE = ".q8scale"
QMAX = 127            # weights are in [-127, 127] (symmetric: -128 is never used)
SIXTH = np.float32(1.0 / 6.0)


def _is_quantized_weight(name: str, shape: tuple[int, ...]) -> bool:
    return name.endswith(".weight") and not name.endswith(".bn.weight") and len(shape) in (2, 3)


def quantized_weight_specs(space: SearchSpace) -> dict[str, tuple[tuple[int, ...], tuple[int, ...]]]:
    """Float weight name -> (stored int8 shape, scale shape) for every weight
    the int8 entries read."""
    out = {}
    for name, shape in tensor_specs(space).items():
        if not _is_quantized_weight(name, shape):
            continue
        if len(shape) == 2:
            k, n = shape
            out[name] = (((k + 3) // 4, n, 4), (n,))
        else:
            out[name] = (shape, (shape[-1],))
    return out


def pack_k4(q: np.ndarray) -> np.ndarray:
    """[K, N] -> [ceil(K/4), N, 4]: rows 4g..4g+3 of a column adjacent (zero-padded)."""
    k, n = q.shape
    g = (k + 3) // 4
    p = np.zeros((g * 4, n), q.dtype)
    p[:k] = q
    return np.ascontiguousarray(p.reshape(g, 4, n).transpose(0, 2, 1))


def unpack_k4(p: np.ndarray, k: int) -> np.ndarray:
    """The inverse of :func:`pack_k4`: the first ``k`` rows as ``[k, N]``."""
    g, n, four = p.shape
    return p.transpose(0, 2, 1).reshape(g * four, n)[:k]


def quantize_weight(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(int8 values in the stored layout, float32 scale per output channel)."""
    w = np.asarray(w, np.float64)
    amax = np.abs(w.reshape(-1, w.shape[-1])).max(axis=0)
    scale = np.where(amax > 0, amax / QMAX, 1.0).astype(np.float32)
    q = np.clip(np.rint(w / scale.astype(np.float64)), -QMAX, QMAX).astype(np.int8)
    return (pack_k4(q) if q.ndim == 2 else q), scale


def active_scale(tensors: Mapping[str, np.ndarray], ref: WeightRef) -> np.ndarray:
    """The float32 scales of the active output channels of an int8 weight."""
    try:
        s = tensors[ref.name + Q8SCALE]
    except KeyError as e:
        raise FoldError(f"missing tensor {e.args[0]!r} (the pool has no int8 weights)") from None
    return s[: ref.active[-1]]


def active_q8(tensors: Mapping[str, np.ndarray], ref: WeightRef) -> tuple[np.ndarray, np.ndarray]:
    """(int8 active block [K, N] or [k, k, C] as int32, its float32 scales)."""
    try:
        q, s = tensors[ref.name + Q8], tensors[ref.name + Q8SCALE]
    except KeyError as e:
        raise FoldError(f"missing tensor {e.args[0]!r} (the pool has no int8 weights)") from None
    if len(ref.shape) == 2:
        k, n = ref.active
        return unpack_k4(q, ref.shape[0])[:k, :n].astype(np.int32), s[:n]
    return q[tuple(slice(0, a) for a in ref.active)].astype(np.int32), s[: ref.active[-1]]


# ----------------------------------------------------------------------------- activations
def quant_points(graph: Graph) -> list[str]:
    """Names of the quantized values of a graph, in qparams order: every value
    (``v<i>``), then each squeeze-excite's pooled and reduced vectors."""
    pts = [f"v{i}" for i in range(len(graph.shapes))]
    for op in graph.ops:
        if op.kind == "se":
            pts += [f"{op.name}.pool", f"{op.name}.reduce"]
    return pts


def choose_qparams(lo: float, hi: float) -> tuple[float, int]:
    """(scale, zero point) of uint8 covering [lo, hi] and 0 (0 exactly representable)."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError("calibration range is not finite")
    if hi - lo < 1e-6:
        hi = lo + 1e-6
    scale = np.float32((hi - lo) / 255.0)
    zp = int(np.clip(np.rint(-lo / float(scale)), 0, 255))
    return float(scale), zp


@dataclass(frozen=True)
class QParams:
    scale: float
    zp: int

    @property
    def inv(self) -> np.float32:
        return np.float32(1.0 / self.scale)

    @property
    def lo(self) -> np.float32:
        return np.float32(-self.zp)

    @property
    def hi(self) -> np.float32:
        return np.float32(255 - self.zp)


def qparams_of(graph: Graph, table: np.ndarray) -> dict[str, QParams]:
    """Each quant point's (scale, zero point). ``table`` is the entry's, made
    for its graph at the space's input size; ``graph`` may be the entry at
    another input size, which differs only by the input resize (a resize
    keeps its input's quantization): one added after the input (its output
    gets the input's row) or one dropped (the input is already at the
    entry's resolution)."""
    pts = quant_points(graph)
    has_resize = bool(graph.ops) and graph.ops[0].kind == "resize"
    if table.ndim == 2 and table.shape[1] == 2:
        if has_resize and len(table) == len(pts) - 1:
            table = np.concatenate([table[:1], table])
        elif not has_resize and len(table) == len(pts) + 1:
            table = np.concatenate([table[:1], table[2:]])
    if table.shape != (len(pts), 2):
        raise FoldError(f"qparams has shape {tuple(table.shape)}, expected ({len(pts)}, 2)")
    return {p: QParams(float(table[i, 0]), int(table[i, 1])) for i, p in enumerate(pts)}


@dataclass(frozen=True)
class OpParams:
    """What one int8 op needs besides its int8 weights, all float32."""

    q_in: QParams
    q_out: QParams
    mul: np.ndarray | None = None        # conv-like: per output channel
    add: np.ndarray | None = None        # conv-like: per output channel (zeros where no BN/bias)
    float_out: bool = False              # the op writes float32 (the logits)
    out_scale: np.float32 = np.float32(1)   # hard-swish/sigmoid into uint8: 1 / (6 s_out)
    six: np.float32 = np.float32(0)      # ReLU6 into uint8: 6 / s_out
    q_in1: QParams | None = None         # add: the second input
    m_a: np.float32 | None = None        # add: multipliers of the inputs; pool: the multiplier
    m_b: np.float32 | None = None
    se: tuple | None = None              # SE: (q_pool, m_pool, mul1, add1, q_red, mul2, add2, m_se)


def _f32(v) -> np.ndarray:
    return np.asarray(v, np.float64).astype(np.float32)


def _conv_params(q_in: QParams, q_out: QParams, m: np.ndarray, add: np.ndarray, act: str,
                 float_out: bool) -> "OpParams":
    """mul/add of a conv-like epilogue (float64 in, float32 out) in the units its activation needs."""
    if float_out or act in ("hswish", "hsigmoid"):
        return OpParams(q_in, q_out, _f32(m), _f32(add), float_out, out_scale=np.float32(1 / (6 * q_out.scale)))
    return OpParams(q_in, q_out, _f32(m / q_out.scale), _f32(add / q_out.scale), False,
                    six=np.float32(6 / q_out.scale))


def act_f32(t: np.ndarray, act: str) -> np.ndarray:
    """An activation in float32, in the engine's order of operations (real units)."""
    f0, f3, f6 = np.float32(0), np.float32(3), np.float32(6)
    if act == "none":
        return t
    if act == "relu":
        return np.maximum(t, f0)
    if act == "relu6":
        return np.minimum(np.maximum(t, f0), f6)
    if act == "hswish":
        return (t * np.minimum(np.maximum(t + f3, f0), f6)) * SIXTH
    if act == "hsigmoid":
        return np.minimum(np.maximum(t + f3, f0), f6) * SIXTH
    if act == "sigmoid":
        return (np.float32(1) / (np.float32(1) + np.exp(-t))).astype(np.float32)
    raise FoldError(f"unknown activation {act!r}")


def epilogue_int8(acc: np.ndarray, p: "OpParams", act: str) -> np.ndarray:
    """The epilogue of a conv-like int8 op on int sums (uint8, or float32 logits)."""
    t = acc.astype(np.float32) * p.mul + p.add
    f0, f3, f6 = np.float32(0), np.float32(3), np.float32(6)
    if p.float_out:
        return act_f32(t, act)
    q = p.q_out
    lo, hi = q.lo, q.hi
    if act in ("hswish", "hsigmoid"):
        g = np.minimum(np.maximum(t + f3, f0), f6)
        u = ((t * g) if act == "hswish" else g) * p.out_scale
    else:
        u = t
        if act in ("relu", "relu6"):
            lo = np.maximum(lo, f0)
        if act == "relu6":
            hi = np.minimum(hi, p.six)
    u = np.minimum(np.maximum(u, lo), hi)
    return (np.rint(u).astype(np.int32) + q.zp).astype(np.uint8)


def op_params(op: Op, graph: Graph, tensors: Mapping[str, np.ndarray], bn_prefix: str, eps: float,
              qp: Mapping[str, QParams]) -> OpParams:
    """The float32 multipliers of one int8 op (the one place they are computed)."""
    q_in, q_out = qp[f"v{op.inputs[0]}"], qp[f"v{op.output}"]
    float_out = op.output == graph.output
    if op.kind in ("conv", "pwconv", "dwconv", "linear"):
        sw = active_scale(tensors, op.weight)
        scale, shift = epilogue(op, tensors, bn_prefix, eps)
        m = q_in.scale * sw.astype(np.float64)
        if scale is not None:
            m = m * scale
        add = np.zeros(m.shape) if shift is None else shift
        return _conv_params(q_in, q_out, m, add, op.act, float_out)
    if op.kind == "add":
        q_b = qp[f"v{op.inputs[1]}"]
        return OpParams(q_in, q_out, q_in1=q_b, m_a=np.float32(q_in.scale / q_out.scale),
                        m_b=np.float32(q_b.scale / q_out.scale), float_out=float_out)
    if op.kind == "gap":
        hw = op.in_shape[0] * op.in_shape[1]
        return OpParams(q_in, q_out, m_a=np.float32(q_in.scale / (hw * q_out.scale)), float_out=float_out)
    if op.kind == "se":
        w1, b1, w2, b2 = op.se
        q_pool, q_red = qp[f"{op.name}.pool"], qp[f"{op.name}.reduce"]
        hw = op.in_shape[0] * op.in_shape[1]
        s1, s2 = active_scale(tensors, w1), active_scale(tensors, w2)
        bias1, bias2 = active_slice(tensors, b1), active_slice(tensors, b2)
        reduce = _conv_params(q_pool, q_red, q_pool.scale * s1.astype(np.float64), bias1, "relu", False)
        se = (q_pool, np.float32(q_in.scale / (hw * q_pool.scale)), reduce.mul, reduce.add, q_red,
              _f32(q_red.scale * s2.astype(np.float64)), _f32(bias2), np.float32(q_in.scale / q_out.scale))
        return OpParams(q_in, q_out, se=se)
    if op.kind == "resize":
        return OpParams(q_in, q_out)
    raise FoldError(f"op {op.name!r}: no int8 form for kind {op.kind!r}")


def check_qparams_table(graph: Graph, table: np.ndarray, where: str) -> str | None:
    """Why a qparams table is unusable for ``graph`` (None if it is fine)."""
    pts = quant_points(graph)
    if table.shape != (len(pts), 2):
        return f"{where} has shape {list(table.shape)}, expected [{len(pts)}, 2]"
    s, z = table[:, 0], table[:, 1]
    if not (np.all(s > 0) and np.all(s < 1e30)):
        return f"{where} holds a scale that is not positive and finite"
    if not (np.all(z >= 0) and np.all(z <= 255) and np.all(z == np.rint(z))):
        return f"{where} holds a zero point that is not an integer in [0, 255]"
    for op in graph.ops:   # a resize keeps its input's quantization
        if op.kind == "resize" and not np.array_equal(table[op.inputs[0]], table[op.output]):
            return f"{where}: resize {op.name!r} must keep its input's scale and zero point"
    return None


def resize_axis(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices and float32 weights of one axis (the engine's tables)."""
    c = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    c = np.clip(c, 0.0, n_in - 1)
    i0 = np.floor(c).astype(np.int64)
    return i0, np.minimum(i0 + 1, n_in - 1), (c - i0).astype(np.float32)


def entry_weight_bytes(graph: Graph, int8: bool) -> int:
    """Bytes of weights one entry reads: every active weight, bias and BN
    gamma/beta at 4 bytes (float32); an int8 entry reads its quantized
    weights at 1 byte each plus a float32 scale per active output channel
    (biases and BN values stay float32)."""
    n = 0
    for op in graph.ops:
        for ref in op.weight_refs():
            if int8 and _is_quantized_weight(ref.name, ref.shape):
                n += ref.numel + 4 * ref.active[-1]
            else:
                n += 4 * ref.numel
        if op.bn is not None:
            n += 8 * op.bn.channels
    return n

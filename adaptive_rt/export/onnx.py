"""ONNX export of one subnet, built from the graph IR with ``onnx.helper``.

The model takes ``input`` as NHWC float32 ``[N, H, W, C]`` (N symbolic, like
the runtime) and returns ``logits`` ``[N, num_classes]``. Inside it runs NCHW,
the layout ONNX's Conv defines; per-entry batch norm is folded into the conv
weights and biases, so the file holds plain convolutions.
"""
from __future__ import annotations

import os
from typing import Mapping

import numpy as np

from .. import __version__
from ..model.fold import active_slice, folded_weight
from ..model.graph import Graph, build_graph
from ..model.space import SearchSpace, SubnetConfig

__all__ = ["OPSET", "to_onnx", "to_onnx_int8", "save_onnx"]

OPSET = 18          # Resize with `axes` (opset 18) keeps the batch dimension symbolic
IR_VERSION = 8      # readable by every ONNX Runtime that supports opset 18


def _onnx():
    try:
        import onnx
        from onnx import helper, numpy_helper
    except ImportError:  # pragma: no cover - depends on the install
        raise ImportError("ONNX export needs the 'onnx' package: from the adaptive_rt checkout, pip install -c constraints.txt '.[export]'") from None
    return onnx, helper, numpy_helper


class _Emitter:
    def __init__(self, helper, numpy_helper):
        self.h, self.nh = helper, numpy_helper
        self.nodes: list = []
        self.inits: list = []
        self._n = 0

    def const(self, name: str, arr: np.ndarray, dtype=np.float32) -> str:
        self.inits.append(self.nh.from_array(np.ascontiguousarray(arr, dtype=dtype), name))
        return name

    def node(self, op_type: str, inputs: list[str], name: str, **attrs) -> str:
        out = f"{name}:{op_type}" if name else f"t{self._n}"
        self._n += 1
        self.nodes.append(self.h.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def act(self, x: str, act: str, name: str) -> str:
        if act == "none":
            return x
        if act == "relu":
            return self.node("Relu", [x], name)
        if act == "relu6":
            lo = self.const(f"{name}.clip_lo", np.array(0.0))
            hi = self.const(f"{name}.clip_hi", np.array(6.0))
            return self.node("Clip", [x, lo, hi], name)
        if act == "hswish":
            return self.node("HardSwish", [x], name)
        if act == "hsigmoid":
            return self.node("HardSigmoid", [x], name, alpha=1.0 / 6.0, beta=0.5)
        if act == "sigmoid":
            return self.node("Sigmoid", [x], name)
        raise ValueError(f"unknown activation {act!r}")


def to_onnx(space: SearchSpace, config: SubnetConfig, weights: Mapping[str, np.ndarray],
            bn_prefix: str = "", input_hw: tuple[int, int] | None = None,
            graph: Graph | None = None, metadata: dict[str, str] | None = None):
    """A standalone ``onnx.ModelProto`` of subnet ``config`` (checked by
    ``onnx.checker``). ``bn_prefix`` picks the BN statistics as in
    :func:`adaptive_rt.model.reference.run`. The model carries
    ``producer_name/version`` and ``metadata_props`` (space, config id, BN
    prefix, plus ``metadata``: e.g. the entry id and the pool's SHA-256)."""
    onnx, helper, numpy_helper = _onnx()
    g = graph if graph is not None else build_graph(space, config, input_hw)
    e = _Emitter(helper, numpy_helper)
    eps = space.bn_eps
    names: dict[int, str] = {0: e.node("Transpose", ["input"], "input.nchw", perm=[0, 3, 1, 2])}
    for op in g.ops:
        x = names[op.inputs[0]]
        n = op.name
        if op.kind == "resize":
            sizes = e.const(f"{n}.sizes", np.array(op.out_shape[:2]), np.int64)
            y = e.node("Resize", [x, "", "", sizes], n, mode="linear", axes=[2, 3],
                       coordinate_transformation_mode="half_pixel")
        elif op.kind == "add":
            y = e.node("Add", [x, names[op.inputs[1]]], n)
        elif op.kind == "gap":
            y = e.node("Flatten", [e.node("GlobalAveragePool", [x], n)], n)
        elif op.kind == "se":
            w1, b1, w2, b2 = (active_slice(weights, r) for r in op.se)
            s = e.node("GlobalAveragePool", [x], n)
            s = e.node("Conv", [s, e.const(f"{n}.reduce.w", w1.T[:, :, None, None]),
                                e.const(f"{n}.reduce.b", b1)], f"{n}.reduce")
            s = e.act(s, "relu", f"{n}.reduce")
            s = e.node("Conv", [s, e.const(f"{n}.expand.w", w2.T[:, :, None, None]),
                                e.const(f"{n}.expand.b", b2)], f"{n}.expand")
            y = e.node("Mul", [x, e.act(s, op.gate, f"{n}.gate")], n)
        else:
            w, b = folded_weight(op, weights, bn_prefix, eps)
            if op.kind == "linear":
                ins = [x, e.const(f"{n}.w", w)] + ([e.const(f"{n}.b", b)] if b is not None else [])
                y = e.node("Gemm", ins, n)
            else:
                k, p = op.kernel, op.pad
                if op.kind == "conv":
                    cin = op.in_shape[2]
                    wk = w.reshape(k, k, cin, -1).transpose(3, 2, 0, 1)   # OIHW
                    group = 1
                elif op.kind == "dwconv":
                    wk = w.transpose(2, 0, 1)[:, None]                    # C,1,kh,kw
                    group = wk.shape[0]
                else:                                                     # pwconv
                    wk = w.T[:, :, None, None]
                    group = 1
                ins = [x, e.const(f"{n}.w", wk)] + ([e.const(f"{n}.b", b)] if b is not None else [])
                y = e.node("Conv", ins, n, kernel_shape=[k, k], strides=[op.stride] * 2,
                           pads=[p, p, p, p], group=group)
            y = e.act(y, op.act, n)
        names[op.output] = y
    return _finish(e, g, names[g.output], f"adaptive_rt_{space.name}", f"space={space.name} config={config.id}",
                   {"adaptive_rt.space": space.name, "adaptive_rt.config": config.id, "adaptive_rt.bn": bn_prefix,
                    **(metadata or {})})


def _finish(e: "_Emitter", g: Graph, logits: str, name: str, doc: str, props: dict):
    """The model around the emitted nodes: NHWC float input, float logits,
    producer and metadata; checked by onnx.checker."""
    onnx, helper, _ = _onnx()
    e.nodes.append(helper.make_node("Identity", [logits], ["logits"], name="logits"))
    h, w_, c = g.input_shape
    graph_proto = helper.make_graph(
        e.nodes, name,
        [helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, ["N", h, w_, c])],
        [helper.make_tensor_value_info("logits", onnx.TensorProto.FLOAT, ["N", g.num_classes])],
        e.inits)
    model = helper.make_model(graph_proto, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="adaptive_rt", producer_version=__version__, ir_version=IR_VERSION)
    model.doc_string = doc
    helper.set_model_props(model, {str(k): str(v) for k, v in props.items()})
    onnx.checker.check_model(model, full_check=True)
    return model


def save_onnx(model, path: str | os.PathLike) -> None:
    """Write ``model`` atomically (temp file in the same folder, then rename)."""
    from ..io.atomic import atomic_write_bytes
    atomic_write_bytes(path, model.SerializeToString())


# ----------------------------------------------------------------------------- int8 (QDQ)
def to_onnx_int8(pool, entry, input_hw: tuple[int, int] | None = None, metadata: dict[str, str] | None = None):
    """An int8 entry as a QDQ ONNX model: every value of the entry's graph is
    quantized (QuantizeLinear) with the entry's scale and zero point and
    dequantized (DequantizeLinear) where it is read; weights are the pool's
    int8 copy, dequantized per output channel, with the entry's BN folded into
    the per-channel scale (a negative BN scale flips the channel's int8
    values: they are symmetric) and the shift into an int32 bias at
    scale s_in * s_w. ONNX Runtime fuses the DequantizeLinear -> Conv ->
    QuantizeLinear patterns into integer kernels; what stays float (hard-swish,
    the SE gate) runs between a DequantizeLinear and a QuantizeLinear. The
    logits are float32, as the engine's."""
    from ..model.fold import epilogue
    from ..model.quant import active_q8, qparams_of
    _, helper, numpy_helper = _onnx()
    e_ = pool.entry(entry) if isinstance(entry, str) else entry
    if not e_.is_int8:
        raise ValueError(f"entry {e_.id!r} is not int8: use to_onnx")
    g = pool.graph(e_, input_hw)
    t = pool.tensors
    qp = qparams_of(g, t[e_.quant + "qparams"])
    em = _Emitter(helper, numpy_helper)
    eps = pool.space.bn_eps

    def qdq(y: str, point: str, name: str) -> str:
        q = qp[point]
        s = em.const(f"{name}.s", np.array(q.scale, np.float32))
        z = em.const(f"{name}.z", np.array(q.zp, np.uint8), np.uint8)
        return em.node("DequantizeLinear", [em.node("QuantizeLinear", [y, s, z], f"{name}.q"), s, z], f"{name}.dq")

    def weight(ref, name: str, layout: str, col_scale: np.ndarray, in_scale: float,
               shift: np.ndarray | None, fusable: bool = True, k: int = 1) -> tuple[str, str | None]:
        """(dequantized weight, dequantized int32 bias or None); col_scale folds the BN scale.
        Where ONNX Runtime cannot fuse the conv into an integer kernel (a float
        activation between it and the next QuantizeLinear) the weight and bias
        are stored as the float32 values DequantizeLinear would make (the same
        products), so they are not dequantized again on every run."""
        q, sw = active_q8(t, ref)                        # int32 [K, N] or [k, k, C]; scales [N]
        m = sw.astype(np.float64) * col_scale
        sign = np.where(m < 0, -1, 1)
        qn = (q * sign).astype(np.int8)                  # symmetric: -w is representable
        sc = np.abs(m).astype(np.float32)
        sc = np.where(sc > 0, sc, np.float32(1e-30)).astype(np.float32)
        if layout == "gemm":                             # Gemm B [K, N], channel axis 1
            wq, axis = qn, 1
        elif layout == "dw":                             # [C, 1, k, k]
            wq, axis = qn.transpose(2, 0, 1)[:, None], 0
        elif layout == "pw":                             # [N, K, 1, 1]
            wq, axis = qn.T[:, :, None, None], 0
        else:                                            # conv: rows (kh, kw, cin) -> OIHW
            wq, axis = qn.reshape(k, k, -1, qn.shape[-1]).transpose(3, 2, 0, 1), 0
        bs = (np.float64(in_scale) * sc.astype(np.float64)).astype(np.float32)
        bq = None if shift is None else np.clip(np.rint(shift / bs.astype(np.float64)), -2**31, 2**31 - 1).astype(np.int32)
        if not fusable:
            shape = [1] * wq.ndim
            shape[axis] = -1
            w = em.const(f"{name}.w", wq.astype(np.float32) * sc.reshape(shape))
            return w, (None if bq is None else em.const(f"{name}.b", bq.astype(np.float32) * bs))
        wq_n = em.const(f"{name}.wq", wq, np.int8)
        ws = em.const(f"{name}.ws", sc)
        wz = em.const(f"{name}.wz", np.zeros(sc.shape, np.int8), np.int8)
        w = em.node("DequantizeLinear", [wq_n, ws, wz], f"{name}.w", axis=axis)
        if shift is None:
            return w, None
        b = em.node("DequantizeLinear", [em.const(f"{name}.bq", bq, np.int32), em.const(f"{name}.bs", bs),
                                         em.const(f"{name}.bz", np.zeros(bs.shape, np.int32), np.int32)], f"{name}.b",
                    axis=0)
        return w, b

    x0 = em.node("Transpose", ["input"], "input.nchw", perm=[0, 3, 1, 2])
    names: dict[int, str] = {0: qdq(x0, "v0", "input")}
    for op in g.ops:
        x = names[op.inputs[0]]
        n = op.name
        q_in = qp[f"v{op.inputs[0]}"]
        if op.kind == "resize":
            sizes = em.const(f"{n}.sizes", np.array(op.out_shape[:2]), np.int64)
            y = em.node("Resize", [x, "", "", sizes], n, mode="linear", axes=[2, 3],
                        coordinate_transformation_mode="half_pixel")
        elif op.kind == "add":
            y = em.node("Add", [x, names[op.inputs[1]]], n)
        elif op.kind == "gap":
            y = em.node("Flatten", [em.node("GlobalAveragePool", [x], n)], n)
        elif op.kind == "se":
            w1r, b1r, w2r, b2r = op.se
            b1, b2 = active_slice(t, b1r), active_slice(t, b2r)
            s = qdq(em.node("GlobalAveragePool", [x], n), f"{n}.pool", f"{n}.pool")
            w1, bb1 = weight(w1r, f"{n}.reduce", "pw", np.ones(w1r.active[1]), qp[f"{n}.pool"].scale, b1)
            s = em.node("Relu", [em.node("Conv", [s, w1, bb1], f"{n}.reduce")], f"{n}.reduce")
            s = qdq(s, f"{n}.reduce", f"{n}.reduce")
            w2, bb2 = weight(w2r, f"{n}.expand", "pw", np.ones(w2r.active[1]), qp[f"{n}.reduce"].scale, b2,
                             fusable=False)
            gate = em.act(em.node("Conv", [s, w2, bb2], f"{n}.expand"), op.gate, f"{n}.gate")
            y = em.node("Mul", [x, gate], n)
        else:
            scale, shift = epilogue(op, t, e_.bn, eps)
            cols = op.weight.active[-1]
            col_scale = np.ones(cols) if scale is None else scale
            fusable = op.act in ("none", "relu", "relu6") and op.output != g.output
            if op.kind == "linear":
                w, b = weight(op.weight, n, "gemm", col_scale, q_in.scale, shift, fusable)
                y = em.node("Gemm", [x, w] + ([b] if b is not None else []), n)
            else:
                k, p = op.kernel, op.pad
                layout = {"conv": "conv", "dwconv": "dw", "pwconv": "pw"}[op.kind]
                w, b = weight(op.weight, n, layout, col_scale, q_in.scale, shift, fusable, k)
                y = em.node("Conv", [x, w] + ([b] if b is not None else []), n, kernel_shape=[k, k],
                            strides=[op.stride] * 2, pads=[p, p, p, p], group=cols if op.kind == "dwconv" else 1)
            y = em.act(y, op.act, n)
        names[op.output] = y if op.output == g.output else qdq(y, f"v{op.output}", n)
    return _finish(em, g, names[g.output], f"adaptive_rt_{pool.space.name}_int8",
                   f"space={pool.space.name} config={e_.config.id} int8 (QDQ)",
                   {"adaptive_rt.space": pool.space.name, "adaptive_rt.config": e_.config.id, "adaptive_rt.bn": e_.bn,
                    "adaptive_rt.precision": "int8", **(metadata or {})})

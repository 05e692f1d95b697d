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

__all__ = ["OPSET", "to_onnx", "save_onnx"]

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
    e.nodes.append(helper.make_node("Identity", [names[g.output]], ["logits"], name="logits"))
    h, w_, c = g.input_shape
    graph_proto = helper.make_graph(
        e.nodes, f"adaptive_rt_{space.name}",
        [helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, ["N", h, w_, c])],
        [helper.make_tensor_value_info("logits", onnx.TensorProto.FLOAT, ["N", g.num_classes])],
        e.inits)
    model = helper.make_model(graph_proto, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="adaptive_rt", producer_version=__version__, ir_version=IR_VERSION)
    model.doc_string = f"space={space.name} config={config.id}"
    props = {"adaptive_rt.space": space.name, "adaptive_rt.config": config.id, "adaptive_rt.bn": bn_prefix,
             **(metadata or {})}
    helper.set_model_props(model, {str(k): str(v) for k, v in props.items()})
    onnx.checker.check_model(model, full_check=True)
    return model


def save_onnx(model, path: str | os.PathLike) -> None:
    """Write ``model`` atomically (temp file in the same folder, then rename)."""
    from ..io.atomic import atomic_write_bytes
    atomic_write_bytes(path, model.SerializeToString())

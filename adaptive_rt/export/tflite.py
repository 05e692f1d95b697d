"""TFLite export of one subnet, without TensorFlow.

The model is written with the flatbuffer object API of the TFLite schema
that ai-edge-litert ships (``ai_edge_litert.schema_py_generated``, on top of
the ``flatbuffers`` package): builtin ops only, float32, NHWC like the
runtime — ``input [1, H, W, C]`` (batch dimension resizable: its shape
signature is -1) to ``logits [1, classes]``. Per-entry BN is folded into the
convolutions. Convolutions pad ``k // 2`` on both sides (PyTorch's rule);
TFLite's SAME pads the extra row/column at the end for stride 2, so those
layers get an explicit PAD and VALID. The SE gate ``hsigmoid(z) =
relu6(z + 3) / 6`` becomes the expand conv with the +3 folded into its bias
and a fused RELU6, then a MUL by 1/6.
"""
from __future__ import annotations

import os
from typing import Mapping

import numpy as np

from .. import __version__
from ..model.fold import active_slice, folded_weight
from ..model.graph import Graph, build_graph
from ..model.space import SearchSpace, SubnetConfig

__all__ = ["to_tflite", "save_tflite"]


def _schema():
    try:
        import flatbuffers
        from ai_edge_litert import schema_py_generated as s
    except ImportError:  # pragma: no cover - depends on the install
        raise ImportError("TFLite export needs ai-edge-litert: from the adaptive_rt checkout, pip install -c constraints.txt '.[export]'") from None
    return flatbuffers, s


class _Builder:
    def __init__(self, s):
        self.s = s
        self.tensors: list = []
        self.buffers: list = [s.BufferT()]   # buffer 0: the empty buffer, by convention
        self.ops: list = []
        self.codes: dict[int, int] = {}
        self.code_list: list = []

    def tensor(self, name: str, shape, data: np.ndarray | None = None, dtype=np.float32, signature=None) -> int:
        s = self.s
        t = s.TensorT()
        t.name = name.encode()
        t.shape = np.array(shape, np.int32)
        if signature is not None:
            t.shapeSignature = np.array(signature, np.int32)
        t.type = {np.float32: s.TensorType.FLOAT32, np.int32: s.TensorType.INT32}[dtype]
        if data is not None:
            b = s.BufferT()
            b.data = np.frombuffer(np.ascontiguousarray(data, dtype).tobytes(), np.uint8)
            self.buffers.append(b)
            t.buffer = len(self.buffers) - 1
        else:
            t.buffer = 0
        self.tensors.append(t)
        return len(self.tensors) - 1

    def op(self, code: int, inputs: list[int], outputs: list[int], opt_type: int = 0, options=None) -> None:
        s = self.s
        if code not in self.codes:
            c = s.OperatorCodeT()
            c.builtinCode = code
            c.deprecatedBuiltinCode = min(code, 127)
            c.version = 1
            self.codes[code] = len(self.code_list)
            self.code_list.append(c)
        o = s.OperatorT()
        o.opcodeIndex = self.codes[code]
        o.inputs = np.array(inputs, np.int32)
        o.outputs = np.array(outputs, np.int32)
        o.builtinOptionsType = opt_type
        o.builtinOptions = options
        self.ops.append(o)


def to_tflite(space: SearchSpace, config: SubnetConfig, weights: Mapping[str, np.ndarray],
              bn_prefix: str = "", input_hw: tuple[int, int] | None = None, graph: Graph | None = None,
              metadata: dict[str, str] | None = None) -> bytes:
    """The ``.tflite`` flatbuffer (bytes) of subnet ``config``, with a
    ``serving_default`` signature (``input`` -> ``logits``) and metadata
    entries (space, config id, BN prefix, plus ``metadata``: e.g. the entry
    id and the pool's SHA-256; each a UTF-8 buffer, as TFLite metadata is)."""
    flatbuffers, s = _schema()
    g = graph if graph is not None else build_graph(space, config, input_hw)
    b = _Builder(s)
    BO, OP, ACT = s.BuiltinOptions, s.BuiltinOperator, s.ActivationFunctionType
    fused = {"none": ACT.NONE, "relu": ACT.RELU, "relu6": ACT.RELU6}
    eps = space.bn_eps
    h, w_, c = g.input_shape
    inp = b.tensor("input", [1, h, w_, c], signature=[-1, h, w_, c])
    vals: dict[int, int] = {0: inp}
    flat: set[int] = set()        # values that are [N, C] (after global pooling)

    def shape_of(v_shape, is_flat):
        return [1, v_shape[2]] if is_flat else [1, *v_shape]

    def sig(shape):
        return [-1, *shape[1:]]

    def new(name, shape):
        return b.tensor(name, shape, signature=sig(shape))

    def activation(x: int, act: str, shape, name: str) -> int:
        """Apply an activation that could not be fused."""
        if act in ("none",):
            return x
        y = new(f"{name}:{act}", shape)
        if act == "hswish":
            b.op(OP.HARD_SWISH, [x], [y])
        elif act == "relu":
            b.op(OP.RELU, [x], [y])
        elif act == "relu6":
            b.op(OP.RELU6, [x], [y])
        elif act == "sigmoid":
            b.op(OP.LOGISTIC, [x], [y])
        elif act == "hsigmoid":
            t = new(f"{name}:plus3", shape)
            b.op(OP.ADD, [x, b.tensor(f"{name}.three", [1], np.array([3.0]))], [t], BO.AddOptions, s.AddOptionsT())
            r = new(f"{name}:relu6", shape)
            b.op(OP.RELU6, [t], [r])
            b.op(OP.MUL, [r, b.tensor(f"{name}.sixth", [1], np.array([1 / 6]))], [y], BO.MulOptions,
                 s.MulOptionsT())
        else:
            raise ValueError(f"unknown activation {act!r}")
        return y

    def conv(name, x, in_shape, out_shape, wk, bias, k, stride, pad, act, depthwise):
        """CONV_2D / DEPTHWISE_CONV_2D (explicit PAD where SAME would differ), activation fused if it can be."""
        if pad and not (stride == 1 and 2 * pad == k - 1):
            hp, wp = in_shape[0] + 2 * pad, in_shape[1] + 2 * pad
            padded = new(f"{name}:pad", [1, hp, wp, in_shape[2]])
            b.op(OP.PAD, [x, b.tensor(f"{name}.paddings", [4, 2],
                                      np.array([[0, 0], [pad, pad], [pad, pad], [0, 0]]), np.int32)], [padded],
                 BO.PadOptions, s.PadOptionsT())
            x, padding = padded, s.Padding.VALID
        else:
            padding = s.Padding.SAME if pad else s.Padding.VALID
        cout = out_shape[2]
        wt = b.tensor(f"{name}.w", wk.shape, wk)
        bt = b.tensor(f"{name}.b", [cout], np.zeros(cout) if bias is None else bias)
        out = [1, *out_shape]
        y = new(name, out)
        f = fused.get(act)
        if depthwise:
            o = s.DepthwiseConv2DOptionsT()
            o.depthMultiplier = 1
            code, ot = OP.DEPTHWISE_CONV_2D, BO.DepthwiseConv2DOptions
        else:
            o = s.Conv2DOptionsT()
            code, ot = OP.CONV_2D, BO.Conv2DOptions
        o.padding, o.strideH, o.strideW = padding, stride, stride
        o.dilationHFactor = o.dilationWFactor = 1
        o.fusedActivationFunction = f if f is not None else ACT.NONE
        b.op(code, [x, wt, bt], [y], ot, o)
        return y if f is not None else activation(y, act, out, name)

    def mean(name, x, keep, out_shape):
        y = new(name, out_shape)
        o = s.ReducerOptionsT()
        o.keepDims = keep
        b.op(OP.MEAN, [x, b.tensor(f"{name}.axes", [2], np.array([1, 2]), np.int32)], [y], BO.ReducerOptions, o)
        return y

    for op in g.ops:
        x = vals[op.inputs[0]]
        n = op.name
        out = shape_of(op.out_shape, False)
        if op.kind == "resize":
            y = new(n, out)
            o = s.ResizeBilinearOptionsT()
            o.alignCorners, o.halfPixelCenters = False, True
            b.op(OP.RESIZE_BILINEAR, [x, b.tensor(f"{n}.size", [2], np.array(op.out_shape[:2]), np.int32)], [y],
                 BO.ResizeBilinearOptions, o)
        elif op.kind == "add":
            is_flat = op.inputs[0] in flat
            shp = shape_of(op.out_shape, is_flat)
            y = new(n, shp)
            b.op(OP.ADD, [x, vals[op.inputs[1]]], [y], BO.AddOptions, s.AddOptionsT())
            if is_flat:
                flat.add(op.output)
        elif op.kind == "gap":
            y = mean(n, x, False, [1, op.out_shape[2]])
            flat.add(op.output)
        elif op.kind == "se":
            w1, b1, w2, b2 = (active_slice(weights, r)
                              for r in op.se)
            cin, red = w1.shape
            pooled = mean(f"{n}.pool", x, True, [1, 1, 1, cin])
            r = conv(f"{n}.reduce", pooled, (1, 1, cin), (1, 1, red), w1.T[:, None, None, :].astype(np.float32),
                     b1, 1, 1, 0, "relu", False)
            if op.gate == "hsigmoid":   # relu6(z + 3) / 6: +3 in the bias, RELU6 fused, then x 1/6
                z = conv(f"{n}.expand", r, (1, 1, red), (1, 1, cin), w2.T[:, None, None, :].astype(np.float32),
                         b2 + 3.0, 1, 1, 0, "relu6", False)
                gate = new(f"{n}.gate", [1, 1, 1, cin])
                b.op(OP.MUL, [z, b.tensor(f"{n}.sixth", [1], np.array([1 / 6]))], [gate], BO.MulOptions,
                     s.MulOptionsT())
            else:
                gate = conv(f"{n}.expand", r, (1, 1, red), (1, 1, cin), w2.T[:, None, None, :].astype(np.float32),
                            b2, 1, 1, 0, op.gate, False)
            y = new(n, out)
            b.op(OP.MUL, [x, gate], [y], BO.MulOptions, s.MulOptionsT())
        else:
            wgt, bias = folded_weight(op, weights, bn_prefix, eps)
            if op.kind == "linear":
                cout = op.out_shape[2]
                shp = [1, cout]
                y = new(n, shp)
                o = s.FullyConnectedOptionsT()
                f = fused.get(op.act)
                o.fusedActivationFunction = f if f is not None else ACT.NONE
                ins = [x, b.tensor(f"{n}.w", [cout, wgt.shape[0]], wgt.T.astype(np.float32)),
                       b.tensor(f"{n}.b", [cout], np.zeros(cout) if bias is None else bias)]
                b.op(OP.FULLY_CONNECTED, ins, [y], BO.FullyConnectedOptions, o)
                if f is None:
                    y = activation(y, op.act, shp, n)
                flat.add(op.output)
            else:
                k = op.kernel
                if op.kind == "conv":
                    cin = op.in_shape[2]
                    wk = wgt.reshape(k, k, cin, -1).transpose(3, 0, 1, 2)    # OHWI
                elif op.kind == "dwconv":
                    wk = wgt[None]                                          # 1, kh, kw, C
                else:                                                       # pwconv
                    wk = wgt.T[:, None, None, :]
                y = conv(n, x, op.in_shape, op.out_shape, wk.astype(np.float32), bias, k, op.stride, op.pad, op.act,
                         op.kind == "dwconv")
        vals[op.output] = y
    logits = vals[g.output]
    b.tensors[logits].name = b"logits"

    sg = s.SubGraphT()
    sg.tensors, sg.operators = b.tensors, b.ops
    sg.inputs, sg.outputs = np.array([inp], np.int32), np.array([logits], np.int32)
    sg.name = f"adaptive_rt_{space.name}".encode()
    m = s.ModelT()
    m.version = 3
    m.operatorCodes = b.code_list
    m.subgraphs = [sg]
    sig = s.SignatureDefT()
    sig.signatureKey = b"serving_default"
    sig.subgraphIndex = 0
    sig.inputs, sig.outputs = [s.TensorMapT()], [s.TensorMapT()]
    sig.inputs[0].name, sig.inputs[0].tensorIndex = b"input", inp
    sig.outputs[0].name, sig.outputs[0].tensorIndex = b"logits", logits
    m.signatureDefs = [sig]
    props = {"adaptive_rt.version": __version__, "adaptive_rt.space": space.name, "adaptive_rt.config": config.id,
             "adaptive_rt.bn": bn_prefix, **(metadata or {})}
    m.metadata = []
    for k, v in props.items():
        buf = s.BufferT()
        buf.data = np.frombuffer(str(v).encode(), np.uint8)
        b.buffers.append(buf)
        md = s.MetadataT()
        md.name, md.buffer = str(k).encode(), len(b.buffers) - 1
        m.metadata.append(md)
    m.buffers = b.buffers
    m.description = f"adaptive_rt space={space.name} config={config.id}".encode()
    fb = flatbuffers.Builder(1024)
    fb.Finish(m.Pack(fb), file_identifier=b"TFL3")
    return bytes(fb.Output())


def save_tflite(data: bytes, path: str | os.PathLike) -> None:
    """Write a .tflite atomically (temp file in the same folder, then rename)."""
    from ..io.atomic import atomic_write_bytes
    atomic_write_bytes(path, data)

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

__all__ = ["to_tflite", "to_tflite_int8", "save_tflite"]


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

    def tensor(self, name: str, shape, data: np.ndarray | None = None, dtype=np.float32, signature=None,
               quant: tuple | None = None) -> int:
        """A tensor (a constant where ``data`` is given); ``quant`` = (scales,
        zero points, quantized dimension) for int8/int32 tensors."""
        s = self.s
        t = s.TensorT()
        t.name = name.encode()
        t.shape = np.array(shape, np.int32)
        if signature is not None:
            t.shapeSignature = np.array(signature, np.int32)
        t.type = {np.float32: s.TensorType.FLOAT32, np.int32: s.TensorType.INT32,
                  np.int8: s.TensorType.INT8}[dtype]
        if quant is not None:
            q = s.QuantizationParametersT()
            q.scale = np.atleast_1d(np.asarray(quant[0], np.float32))
            q.zeroPoint = np.atleast_1d(np.asarray(quant[1], np.int64))
            q.quantizedDimension = int(quant[2]) if len(quant) > 2 else 0
            t.quantization = q
        if data is not None:
            b = s.BufferT()
            b.data = np.frombuffer(np.ascontiguousarray(data, dtype).tobytes(), np.uint8)
            self.buffers.append(b)
            t.buffer = len(self.buffers) - 1
        else:
            t.buffer = 0
        self.tensors.append(t)
        return len(self.tensors) - 1

    def padding(self, name: str, x: int, in_shape, k: int, stride: int, pad: int, quant: tuple | None = None):
        """(input, TFLite padding) of a k x k convolution padding ``pad`` on
        both sides: SAME where it pads the same, else an explicit PAD (an
        int8 PAD pads with the zero point, i.e. real 0) and VALID."""
        s = self.s
        if not pad or (stride == 1 and 2 * pad == k - 1):
            return x, (s.Padding.SAME if pad else s.Padding.VALID)
        shape = [1, in_shape[0] + 2 * pad, in_shape[1] + 2 * pad, in_shape[2]]
        padded = self.tensor(f"{name}:pad", shape, signature=[-1, *shape[1:]],
                             dtype=np.int8 if quant else np.float32, quant=quant)
        self.op(s.BuiltinOperator.PAD, [x, self.tensor(f"{name}.paddings", [4, 2],
                                                       np.array([[0, 0], [pad, pad], [pad, pad], [0, 0]]), np.int32)],
                [padded], s.BuiltinOptions.PadOptions, s.PadOptionsT())
        return padded, s.Padding.VALID

    def conv_op(self, x: int, w: int, bias: int, y: int, depthwise: bool, padding: int, stride: int,
                fused: int) -> None:
        """CONV_2D or DEPTHWISE_CONV_2D (multiplier 1, no dilation)."""
        s = self.s
        if depthwise:
            o = s.DepthwiseConv2DOptionsT()
            o.depthMultiplier = 1
            code, ot = s.BuiltinOperator.DEPTHWISE_CONV_2D, s.BuiltinOptions.DepthwiseConv2DOptions
        else:
            o = s.Conv2DOptionsT()
            code, ot = s.BuiltinOperator.CONV_2D, s.BuiltinOptions.Conv2DOptions
        o.padding, o.strideH, o.strideW = padding, stride, stride
        o.dilationHFactor = o.dilationWFactor = 1
        o.fusedActivationFunction = fused
        self.op(code, [x, w, bias], [y], ot, o)

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
        x, padding = b.padding(name, x, in_shape, k, stride, pad)
        cout = out_shape[2]
        wt = b.tensor(f"{name}.w", wk.shape, wk)
        bt = b.tensor(f"{name}.b", [cout], np.zeros(cout) if bias is None else bias)
        out = [1, *out_shape]
        y = new(name, out)
        f = fused.get(act)
        b.conv_op(x, wt, bt, y, depthwise, padding, stride, f if f is not None else ACT.NONE)
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
    return _finish(flatbuffers, b, inp, logits, space.name, f"adaptive_rt space={space.name} config={config.id}",
                   {"adaptive_rt.version": __version__, "adaptive_rt.space": space.name,
                    "adaptive_rt.config": config.id, "adaptive_rt.bn": bn_prefix, **(metadata or {})})



# ----------------------------------------------------------------------------- int8 (full integer)
def _hswish_input_range(q) -> tuple[float, float]:
    """The pre-activation range a hard-swish needs for output quantization
    ``q``: above ``y_hi`` its output saturates at the top of ``q``, below -3
    it is 0 (and with a zero point of 0, every input <= 0 gives 0)."""
    hi = q.scale * (255 - q.zp)
    y_hi = hi if hi >= 3.0 else (-3.0 + np.sqrt(9.0 + 24.0 * hi)) / 2.0
    return (-3.0 if q.zp > 0 else 0.0), float(y_hi)


def to_tflite_int8(pool, entry, input_hw: tuple[int, int] | None = None,
                   metadata: dict[str, str] | None = None, graph: Graph | None = None,
                   hswish: str = "mul") -> bytes:
    """An int8 entry as a full-integer ``.tflite``: every op int8 (activations
    int8 with the entry's scale and zero point less 128, weights the pool's
    int8 copy per output channel with the entry's BN scale folded into the
    channel scale — a negative one flips the channel's values, which are
    symmetric —, biases int32 at ``s_in * s_w``); a float32 ``input`` is
    quantized by the first op and the int8 logits are dequantized by the
    last, so it takes and returns what the float export does.

    Where TFLite needs a quantized value the engine keeps in float32 it gets
    a range derived from the entry's own, not calibrated: a hard-swish
    conv's pre-activation (``[-3, y]``, ``y`` the input whose hard-swish is
    the top of the output range), the SE gate (a hard-sigmoid gate is the
    expand conv with ``/ 6`` and ``+ 3`` folded in, quantized to ``[0, 1]`` in
    steps of 1/255, the saturation doing the clamp; a sigmoid gate reads
    ``[-8, 8]`` and writes TFLite's fixed 1/256 steps) and the logits (the
    entry's calibrated range of the classifier's output). Those extra
    roundings, and TFLite's fixed-point requantization (the engine's is
    float32), are where its outputs differ from the engine's."""
    from ..model.fold import epilogue
    from ..model.quant import QParams, active_q8, choose_qparams, qparams_of
    flatbuffers, s = _schema()
    e_ = pool.entry(entry) if isinstance(entry, str) else entry
    if not e_.is_int8:
        raise ValueError(f"entry {e_.id!r} is not int8: use to_tflite")
    g = graph if graph is not None else pool.graph(e_, input_hw)
    t = pool.tensors
    qp = qparams_of(g, t[e_.quant + "qparams"])
    eps = pool.space.bn_eps
    b = _Builder(s)
    BO, OP, ACT = s.BuiltinOptions, s.BuiltinOperator, s.ActivationFunctionType

    def aq(q: QParams) -> tuple:
        return (q.scale, q.zp - 128, 0)

    def act8(name: str, shape, q: QParams) -> int:
        return b.tensor(name, shape, dtype=np.int8, signature=[-1, *shape[1:]], quant=aq(q))

    def conv8(name, x, in_shape, out_shape, q_in: QParams, ref, col_scale, shift, k, stride, pad, layout,
              fused, q_out: QParams) -> int:
        """CONV_2D / DEPTHWISE_CONV_2D int8, per-channel weights, BN folded."""
        q, sw = active_q8(t, ref)                     # int32 [K, N] or [k, k, C]; scales [N]
        m = sw.astype(np.float64) * col_scale
        sign = np.where(m < 0, -1, 1)
        qn = (q * sign).astype(np.int8)
        sc = np.abs(m)
        dead = sc == 0                                # a channel scaled to 0: its weights are 0
        qn[..., dead] = 0
        sc = np.where(dead, 1.0, sc).astype(np.float32)
        if layout == "dw":
            wk, dim = qn[None], 3                     # [1, k, k, C]
        elif layout == "conv":
            wk, dim = qn.reshape(k, k, -1, qn.shape[-1]).transpose(3, 0, 1, 2), 0   # OHWI
        else:
            wk, dim = qn.T[:, None, None, :], 0       # [N, 1, 1, K]
        cout = out_shape[2]
        bs = (np.float64(q_in.scale) * sc.astype(np.float64)).astype(np.float32)
        bq = np.zeros(cout, np.int32) if shift is None else \
            np.clip(np.rint(shift / bs.astype(np.float64)), -2**31, 2**31 - 1).astype(np.int32)
        wt = b.tensor(f"{name}.w", list(wk.shape), wk, np.int8, quant=(sc, np.zeros(cout, np.int64), dim))
        bt = b.tensor(f"{name}.b", [cout], bq, np.int32, quant=(bs, np.zeros(cout, np.int64), 0))
        x, padding = b.padding(name, x, in_shape, k, stride, pad, quant=aq(q_in))
        y = act8(name, [1, *out_shape], q_out)
        b.conv_op(x, wt, bt, y, layout == "dw", padding, stride, fused)
        return y

    def mean8(name, x, shape, q_out: QParams) -> int:
        y = act8(name, shape, q_out)
        o = s.ReducerOptionsT()
        o.keepDims = True
        b.op(OP.MEAN, [x, b.tensor(f"{name}.axes", [2], np.array([1, 2]), np.int32)], [y], BO.ReducerOptions, o)
        return y

    h, w_, c = g.input_shape
    inp = b.tensor("input", [1, h, w_, c], signature=[-1, h, w_, c])
    x0 = act8("input:q", [1, h, w_, c], qp["v0"])
    b.op(OP.QUANTIZE, [inp], [x0])
    vals: dict[int, int] = {0: x0}
    for op in g.ops:
        x = vals[op.inputs[0]]
        n = op.name
        q_in, q_out = qp[f"v{op.inputs[0]}"], qp[f"v{op.output}"]
        in_shape, out_shape = op.in_shape, op.out_shape   # [1, 1, C] after global pooling
        out4 = [1, *out_shape]
        if op.kind == "resize":
            y = act8(n, out4, q_out)
            o = s.ResizeBilinearOptionsT()
            o.alignCorners, o.halfPixelCenters = False, True
            b.op(OP.RESIZE_BILINEAR, [x, b.tensor(f"{n}.size", [2], np.array(op.out_shape[:2]), np.int32)], [y],
                 BO.ResizeBilinearOptions, o)
        elif op.kind == "add":
            y = act8(n, out4, q_out)
            b.op(OP.ADD, [x, vals[op.inputs[1]]], [y], BO.AddOptions, s.AddOptionsT())
        elif op.kind == "gap":
            y = mean8(n, x, out4, q_out)
        elif op.kind == "se":
            w1r, b1r, w2r, b2r = op.se
            cin, red = w1r.active
            q_pool, q_red = qp[f"{n}.pool"], qp[f"{n}.reduce"]
            pooled = mean8(f"{n}.pool", x, [1, 1, 1, cin], q_pool)
            r = conv8(f"{n}.reduce", pooled, (1, 1, cin), (1, 1, red), q_pool, w1r, np.ones(red),
                      active_slice(t, b1r), 1, 1, 0, "pw", ACT.RELU, q_red)
            b2 = active_slice(t, b2r).astype(np.float64)
            if op.gate == "hsigmoid":                 # (z + 3) / 6 into [0, 1]: saturation clamps it
                gate = conv8(f"{n}.gate", r, (1, 1, red), (1, 1, cin), q_red, w2r, np.full(cin, 1 / 6),
                             (b2 + 3.0) / 6.0, 1, 1, 0, "pw", ACT.NONE, QParams(1 / 255, 0))
            else:                                     # sigmoid: its input in [-8, 8], TFLite's fixed output scale
                z = conv8(f"{n}.expand", r, (1, 1, red), (1, 1, cin), q_red, w2r, np.ones(cin), b2, 1, 1, 0,
                          "pw", ACT.NONE, QParams(*choose_qparams(-8.0, 8.0)))
                gate = act8(f"{n}.gate", [1, 1, 1, cin], QParams(1 / 256, 0))
                b.op(OP.LOGISTIC, [z], [gate])
            y = act8(n, out4, q_out)
            b.op(OP.MUL, [x, gate], [y], BO.MulOptions, s.MulOptionsT())
        else:
            scale, shift = epilogue(op, t, e_.bn, eps)
            cols = op.weight.active[-1]
            col_scale = np.ones(cols) if scale is None else scale
            layout = {"conv": "conv", "dwconv": "dw", "pwconv": "pw", "linear": "pw"}[op.kind]
            k = 1 if op.kind == "linear" else op.kernel
            stride = 1 if op.kind == "linear" else op.stride
            pad = 0 if op.kind == "linear" else op.pad
            fused = {"none": ACT.NONE, "relu": ACT.RELU, "relu6": ACT.RELU6}.get(op.act)
            if fused is not None:
                y = conv8(n, x, in_shape, out_shape, q_in, op.weight, col_scale, shift, k, stride, pad, layout,
                          fused, q_out)
            elif op.act == "hswish":
                pq = QParams(*choose_qparams(*_hswish_input_range(q_out)))
                pre = conv8(f"{n}:pre", x, in_shape, out_shape, q_in, op.weight, col_scale, shift, k, stride, pad,
                            layout, ACT.NONE, pq)
                y = act8(n, out4, q_out)
                if hswish == "op":
                    b.op(OP.HARD_SWISH, [pre], [y])
                else:   # y * g, g = (y + 3) / 6 by a 1x1 depthwise conv into [0, 1] (saturation clamps it)
                    g6 = act8(f"{n}:gate", out4, QParams(1 / 255, 0))
                    ch = out_shape[2]
                    wt = b.tensor(f"{n}:gate.w", [1, 1, 1, ch], np.full(ch, 127, np.int8), np.int8,
                                  quant=(np.full(ch, (1 / 6) / 127), np.zeros(ch, np.int64), 3))
                    bsc = np.float32(pq.scale * np.float32((1 / 6) / 127))
                    bt = b.tensor(f"{n}:gate.b", [ch], np.full(ch, np.rint(0.5 / float(bsc)), np.int32), np.int32,
                                  quant=(np.full(ch, bsc), np.zeros(ch, np.int64), 0))
                    b.conv_op(pre, wt, bt, g6, True, s.Padding.VALID, 1, ACT.NONE)
                    b.op(OP.MUL, [pre, g6], [y], BO.MulOptions, s.MulOptionsT())
            else:
                raise ValueError(f"op {n!r}: no full-integer TFLite form for activation {op.act!r}")
        vals[op.output] = y
    out = vals[g.output]
    classes = g.shapes[g.output][-1]
    if g.shapes[g.output][:2] == (1, 1):              # after global pooling: logits as [N, classes]
        r = act8(f"{g.ops[-1].name}:flat", [1, classes], qp[f"v{g.output}"])
        o = s.ReshapeOptionsT()
        o.newShape = np.array([-1, classes], np.int32)
        b.op(OP.RESHAPE, [out, b.tensor("logits.shape", [2], np.array([-1, classes]), np.int32)], [r],
             BO.ReshapeOptions, o)
        out = r
    shape = list(b.tensors[out].shape)
    logits = b.tensor("logits", shape, signature=[-1, *shape[1:]])
    b.op(OP.DEQUANTIZE, [out], [logits])
    return _finish(flatbuffers, b, inp, logits, pool.space.name,
                   f"adaptive_rt space={pool.space.name} config={e_.config.id} int8 (full integer)",
                   {"adaptive_rt.version": __version__, "adaptive_rt.space": pool.space.name,
                    "adaptive_rt.config": e_.config.id, "adaptive_rt.bn": e_.bn, "adaptive_rt.precision": "int8",
                    **(metadata or {})})

def _finish(flatbuffers, b: _Builder, inp: int, logits: int, space_name: str, description: str,
            props: dict) -> bytes:
    """The model around the built subgraph: the ``serving_default`` signature
    (``input`` -> ``logits``), metadata buffers, the flatbuffer bytes."""
    s = b.s
    sg = s.SubGraphT()
    sg.tensors, sg.operators = b.tensors, b.ops
    sg.inputs, sg.outputs = np.array([inp], np.int32), np.array([logits], np.int32)
    sg.name = f"adaptive_rt_{space_name}".encode()
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
    m.metadata = []
    for k, v in props.items():
        buf = s.BufferT()
        buf.data = np.frombuffer(str(v).encode(), np.uint8)
        b.buffers.append(buf)
        md = s.MetadataT()
        md.name, md.buffer = str(k).encode(), len(b.buffers) - 1
        m.metadata.append(md)
    m.buffers = b.buffers
    m.description = description.encode()
    fb = flatbuffers.Builder(1024)
    fb.Finish(m.Pack(fb), file_identifier=b"TFL3")
    return bytes(fb.Output())


def save_tflite(data: bytes, path: str | os.PathLike) -> None:
    """Write a .tflite atomically (temp file in the same folder, then rename)."""
    from ..io.atomic import atomic_write_bytes
    atomic_write_bytes(path, data)

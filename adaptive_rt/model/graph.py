"""Graph IR: (space, config) -> the ordered ops of one subnet, and its cost.

This is the single description of "which ops, which weights, which slices"
for a subnet. Every executor follows it: the NumPy reference, the C++ engine,
the ONNX/TFLite exporters and the torch supernet. The names and shapes of the
supernet's tensors (the native layout) are in ``layout.py``.

Activations are NHWC float32, batch first. Convolutions pad ``k // 2`` on
every side (PyTorch's symmetric padding).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Iterator

from .layout import block_max_se, block_max_widths, block_prefix, last_max_width, mid_width, se_width, stage_width
from .space import SearchSpace, SubnetConfig

__all__ = ["OP_KINDS", "WeightRef", "BatchNormRef", "Op", "Graph", "Cost",
           "build_graph", "cached_graph", "subnet_cost"]

#: Kinds of op in a graph. Activations are fused into the op that produces
#: them (``Op.act``), batch norm into a per-channel scale/shift (``Op.bn``).
OP_KINDS = ("resize", "conv", "pwconv", "dwconv", "se", "add", "gap", "linear")

Shape = tuple[int, int, int]  # (H, W, C) of one image


@dataclass(frozen=True)
class WeightRef:
    """A tensor of the supernet and the prefix of each dimension a subnet uses."""

    name: str
    shape: tuple[int, ...]      # stored (full) shape
    active: tuple[int, ...]     # prefix length per dimension

    @property
    def numel(self) -> int:
        n = 1
        for a in self.active:
            n *= a
        return n


@dataclass(frozen=True)
class BatchNormRef:
    """Batch norm after a conv, folded into a scale/shift of its first ``channels``.

    gamma/beta are ``{layer}.weight`` / ``{layer}.bias`` (shared, full width);
    the statistics are ``{prefix}{layer}.mean`` / ``.var`` where ``prefix`` is
    the pool entry's ``bn`` field (``""`` names the supernet's own full-width
    running statistics).
    """

    layer: str
    channels: int
    max_channels: int

    @property
    def gamma(self) -> str:
        return f"{self.layer}.weight"

    @property
    def beta(self) -> str:
        return f"{self.layer}.bias"

    def mean(self, prefix: str = "") -> str:
        return f"{prefix}{self.layer}.mean"

    def var(self, prefix: str = "") -> str:
        return f"{prefix}{self.layer}.var"


@dataclass(frozen=True)
class Op:
    """One op of a subnet. ``inputs``/``output`` index :attr:`Graph.shapes`."""

    kind: str
    name: str
    inputs: tuple[int, ...]
    output: int
    in_shape: Shape
    out_shape: Shape
    kernel: int = 1
    stride: int = 1
    act: str = "none"
    weight: WeightRef | None = None
    bias: WeightRef | None = None
    bn: BatchNormRef | None = None
    # squeeze-excite only: reduce (w, b) and expand (w, b); gate from the space
    se: tuple[WeightRef, WeightRef, WeightRef, WeightRef] | None = None
    gate: str = ""

    @property
    def pad(self) -> int:
        return self.kernel // 2

    def weight_refs(self) -> Iterator[WeightRef]:
        for w in (self.weight, self.bias):
            if w is not None:
                yield w
        if self.se is not None:
            yield from self.se


@dataclass(frozen=True)
class Cost:
    """Cost of one subnet at batch 1."""

    macs: int                       # multiply-accumulates of conv and linear layers
    params: int                     # weights, biases, BN gamma/beta the subnet touches
    peak_activation_bytes: int      # float32 activations live at once (see Graph.cost)

    @property
    def mflops(self) -> float:
        """MFLOPs in the OFA / PSS-Net convention: millions of MACs."""
        return self.macs / 1e6


@dataclass(frozen=True)
class Graph:
    space: SearchSpace
    config: SubnetConfig
    ops: tuple[Op, ...]
    shapes: tuple[Shape, ...]       # value id -> (H, W, C); value 0 is the input
    output: int

    @property
    def input_shape(self) -> Shape:
        return self.shapes[0]

    @property
    def num_classes(self) -> int:
        return self.shapes[self.output][2]

    def bn_refs(self) -> Iterator[BatchNormRef]:
        for op in self.ops:
            if op.bn is not None:
                yield op.bn

    def cost(self) -> Cost:
        """MACs, parameters and peak activation memory (batch 1, float32).

        Peak activation is the largest, over ops, of the bytes of every value
        that is live while the op runs: its inputs, its output, and values
        produced earlier that a later op still reads (the residual input).
        """
        macs = params = 0
        for op in self.ops:
            ho, wo, co = op.out_shape
            ci = op.in_shape[2]
            if op.kind == "conv":
                macs += ho * wo * co * op.kernel * op.kernel * ci
            elif op.kind == "pwconv":
                macs += ho * wo * co * ci
            elif op.kind == "dwconv":
                macs += ho * wo * co * op.kernel * op.kernel
            elif op.kind in ("se", "linear"):
                macs += sum(w.numel for w in op.weight_refs() if len(w.shape) == 2)
            params += sum(w.numel for w in op.weight_refs())
            if op.bn is not None:
                params += 2 * op.bn.channels
        return Cost(macs, params, self._peak_activation_bytes())

    def _peak_activation_bytes(self) -> int:
        n = len(self.ops)
        last_use = {0: 0}
        for i, op in enumerate(self.ops):
            for v in op.inputs:
                last_use[v] = i
        last_use[self.output] = n
        produced = {0: -1}
        for i, op in enumerate(self.ops):
            produced[op.output] = i
        nbytes = [4 * h * w * c for h, w, c in self.shapes]
        # value v is live while op i runs for produced[v] < i <= last_use[v]: a sweep over
        # those intervals (a running sum of starts and ends), not a scan of every value per op
        delta = [0] * (n + 1)
        for v, p in produced.items():
            lo, hi = p + 1, min(last_use.get(v, -1), n - 1)
            if lo <= hi:
                delta[lo] += nbytes[v]
                delta[hi + 1] -= nbytes[v]
        peak, live = nbytes[0], 0
        for i, op in enumerate(self.ops):
            live += delta[i]
            peak = max(peak, live + nbytes[op.output])
        return peak


# ----------------------------------------------------------------------------- naming


def _conv_out(size: int, k: int, stride: int) -> int:
    return (size + 2 * (k // 2) - k) // stride + 1


class _Builder:
    def __init__(self, space: SearchSpace, in_shape: Shape):
        self.space = space
        self.ops: list[Op] = []
        self.shapes: list[Shape] = [in_shape]

    def emit(self, kind: str, name: str, inputs: tuple[int, ...], out_shape: Shape, **kw) -> int:
        self.shapes.append(out_shape)
        out = len(self.shapes) - 1
        self.ops.append(Op(kind, name, inputs, out, self.shapes[inputs[0]], out_shape, **kw))
        return out

    def bn(self, layer: str, c: int, c_max: int) -> BatchNormRef:
        return BatchNormRef(f"{layer}.bn", c, c_max)


def build_graph(space: SearchSpace, config: SubnetConfig,
                input_hw: tuple[int, int] | None = None) -> Graph:
    """The ops of subnet ``config`` for an input of ``input_hw`` (default: the
    space's ``input_size`` square). A resize op is emitted first when the input
    size differs from the config's resolution."""
    config.validate(space)
    h_in, w_in = input_hw if input_hw is not None else (space.input_size, space.input_size)
    if not (1 <= h_in <= 16384 and 1 <= w_in <= 16384):
        raise ValueError(f"input size {h_in}x{w_in} is out of range [1, 16384]")
    g = _Builder(space, (h_in, w_in, space.in_channels))
    x, r = 0, config.resolution
    if (h_in, w_in) != (r, r):
        x = g.emit("resize", "input.resize", (x,), (r, r, space.in_channels))

    # stem: full kxk conv, fixed width
    k, st, cin, cout = space.stem_kernel, space.stem_stride, space.in_channels, space.stem_channels
    h = _conv_out(r, k, st)
    x = g.emit("conv", "stem.conv", (x,), (h, h, cout), kernel=k, stride=st, act=space.stem_act,
               weight=WeightRef("stem.conv.weight", (k * k * cin, cout), (k * k * cin, cout)),
               bn=g.bn("stem.conv", cout, cout))

    for s, stage in enumerate(space.stages):
        cout = stage_width(space, s, config.widths[s])
        for b, (k, e) in enumerate(zip(config.kernels[s], config.expands[s])):
            x = _block_ops(g, space, s, b, k, e, cout, x)

    hh, ww, c = g.shapes[x]
    c_max, ch = last_max_width(space), space.head_channels
    x = g.emit("pwconv", "head.conv", (x,), (hh, ww, ch), act=space.head_act,
               weight=WeightRef("head.conv.weight", (c_max, ch), (c, ch)), bn=g.bn("head.conv", ch, ch))
    x = g.emit("gap", "head.pool", (x,), (1, 1, ch))
    if space.feature_channels:
        cf = space.feature_channels
        x = g.emit("linear", "head.mix", (x,), (1, 1, cf), act=space.feature_act,
                   weight=WeightRef("head.mix.weight", (ch, cf), (ch, cf)))
        ch = cf
    n = space.num_classes
    x = g.emit("linear", "classifier", (x,), (1, 1, n),
               weight=WeightRef("classifier.weight", (ch, n), (ch, n)),
               bias=WeightRef("classifier.bias", (n,), (n,)))
    return Graph(space, config, tuple(g.ops), tuple(g.shapes), x)


def _block_ops(g: _Builder, space: SearchSpace, s: int, b: int, k: int, e: float,
               cout: int, x: int) -> int:
    stage = space.stages[s]
    p = block_prefix(s, b)
    in_max, mid_max, out_max = block_max_widths(space, s, b)
    hh, ww, cin = g.shapes[x]
    mid = mid_width(space, cin, e)
    stride = stage.stride if b == 0 else 1
    h = x
    if stage.has_expand:
        h = g.emit("pwconv", f"{p}.expand", (h,), (hh, ww, mid), act=stage.act,
                   weight=WeightRef(f"{p}.expand.weight", (in_max, mid_max), (cin, mid)),
                   bn=g.bn(f"{p}.expand", mid, mid_max))
    ho = _conv_out(hh, k, stride)
    wo = _conv_out(ww, k, stride)
    h = g.emit("dwconv", f"{p}.dw", (h,), (ho, wo, mid), kernel=k, stride=stride, act=stage.act,
               weight=WeightRef(f"{p}.dw{k}.weight", (k, k, mid_max), (k, k, mid)),
               bn=g.bn(f"{p}.dw", mid, mid_max))
    if stage.se:
        rr, r_max = se_width(space, mid), block_max_se(space, s, b)
        refs = (WeightRef(f"{p}.se.reduce.weight", (mid_max, r_max), (mid, rr)),
                WeightRef(f"{p}.se.reduce.bias", (r_max,), (rr,)),
                WeightRef(f"{p}.se.expand.weight", (r_max, mid_max), (rr, mid)),
                WeightRef(f"{p}.se.expand.bias", (mid_max,), (mid,)))
        h = g.emit("se", f"{p}.se", (h,), (ho, wo, mid), se=refs, gate=space.se_gate)
    h = g.emit("pwconv", f"{p}.project", (h,), (ho, wo, cout),
               weight=WeightRef(f"{p}.project.weight", (mid_max, out_max), (mid, cout)),
               bn=g.bn(f"{p}.project", cout, out_max))
    if stride == 1 and cin == cout:
        h = g.emit("add", f"{p}.add", (h, x), (ho, wo, cout))
    return h


def cached_graph(space: SearchSpace, config: SubnetConfig, input_hw: tuple[int, int] | None = None) -> Graph:
    """build_graph, memoised (graphs are immutable): training asks for the
    same few subnets every step. The space's own input size and None are the
    same graph, and one cache entry (a pool's load and its plans ask both ways)."""
    if input_hw is not None:
        input_hw = tuple(input_hw)
        if input_hw == (space.input_size, space.input_size) and all(type(v) is int for v in input_hw):
            input_hw = None
    return _graph_memo(space, config, input_hw)


@functools.lru_cache(maxsize=4096)
def _graph_memo(space: SearchSpace, config: SubnetConfig, input_hw: tuple[int, int] | None) -> Graph:
    return build_graph(space, config, input_hw)


@functools.lru_cache(maxsize=65536)
def subnet_cost(space: SearchSpace, config: SubnetConfig) -> Cost:
    """The cost of a config at the space's input size (memoised: samplers and
    searches ask for the same configs many times)."""
    return build_graph(space, config).cost()

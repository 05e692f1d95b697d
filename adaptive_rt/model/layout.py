"""The native layout: names and full shapes of the supernet's tensors in a
pool file, and the channel-width arithmetic they follow.

==========================  ===================================  ===========================
tensor                      stored shape                         a subnet uses
==========================  ===================================  ===========================
``stem.conv.weight``        ``[k*k*Cin, Cout_max]`` (kh,kw,cin)  first ``Cout`` columns
``*.expand.weight``         ``[Cin_max, Cmid_max]``              top-left ``[Cin, Cmid]``
``*.dw{k}.weight``          ``[k, k, Cmid_max]`` per kernel k    first ``Cmid`` channels
``*.se.reduce.weight``      ``[Cmid_max, R_max]`` (+ bias R_max) top-left ``[Cmid, R]``
``*.se.expand.weight``      ``[R_max, Cmid_max]`` (+ bias)       top-left ``[R, Cmid]``
``*.project.weight``        ``[Cmid_max, Cout_max]``             top-left ``[Cmid, Cout]``
``head.conv.weight``        ``[Clast_max, Chead]``               first ``Clast`` rows
``head.mix.weight``         ``[Chead, Cfeat]`` (no bias)         all
``classifier.weight``       ``[Cin, classes]`` (+ bias)          all
``<layer>.bn.weight/bias``  ``[C_max]`` (gamma, beta; shared)    first ``C``
``<prefix><layer>.bn.mean``  ``[C]`` per pool entry              all
==========================  ===================================  ===========================

In memory, the native engine reads the 2-D weights of 1x1 convs, SE and the
linear layers (:func:`gemm_weight_names`) in **panels**: the stored ``[K, N]``
matrix as ``PANEL``-column blocks one after another, each ``[K, PANEL]``
row-major and the last one ``N % PANEL`` wide (when that is not 0). Every
prefix view ``[K', N']`` a subnet uses stays a view: a GEMM tile reads ``K'``
consecutive rows of one panel, a contiguous run of memory the hardware
prefetcher follows (row-major, the same tile reads ``K'`` short pieces one
stored row apart). :func:`pack_panels` / :func:`unpack_panels` convert;
``load_pool`` packs these tensors once as it loads (the file itself stays
row-major).

"""
from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import numpy as np

from .space import SearchSpace, make_divisible

if TYPE_CHECKING:
    from .graph import Graph

__all__ = ["PANEL", "gemm_weight_names", "pack_panels", "unpack_panels", "block_prefix", "stage_width", "stage_max_width", "stage_in_widths", "mid_width", "se_width",
           "block_max_widths", "block_max_se", "last_max_width", "tensor_specs", "running_stat_specs",
           "bn_stat_specs"]


def block_prefix(s: int, b: int) -> str:
    return f"s{s}.b{b}"


# ----------------------------------------------------------------------------- widths
def stage_width(space: SearchSpace, stage: int, mult: float) -> int:
    """Active output channels of ``stage`` at width multiplier ``mult``."""
    return make_divisible(space.stages[stage].channels * mult, space.channel_divisor)


def stage_max_width(space: SearchSpace, stage: int) -> int:
    return max(stage_width(space, stage, m) for m in space.stages[stage].width_mults)


def stage_in_widths(space: SearchSpace, stage: int) -> tuple[int, ...]:
    """All widths the input of ``stage`` may have."""
    if stage == 0:
        return (space.stem_channels,)
    return tuple(sorted({stage_width(space, stage - 1, m) for m in space.stages[stage - 1].width_mults}))


def mid_width(space: SearchSpace, in_width: int, expand: float) -> int:
    """Channels inside a block (after the expand conv) for an active input width."""
    if expand == 1.0:
        return in_width
    return make_divisible(round(in_width * expand), space.channel_divisor)


def se_width(space: SearchSpace, mid: int) -> int:
    """Squeeze-excite bottleneck width for ``mid`` channels."""
    return make_divisible(mid * space.se_ratio, space.channel_divisor)


@functools.lru_cache(maxsize=1024)
def block_max_widths(space: SearchSpace, stage: int, block: int) -> tuple[int, int, int]:
    """(max input, max mid, max output) channels of a block over all configs."""
    st = space.stages[stage]
    outs = {stage_width(space, stage, m) for m in st.width_mults}
    ins = set(stage_in_widths(space, stage)) if block == 0 else outs
    mids = {mid_width(space, c, e) for c in ins for e in st.expand_ratios}
    return max(ins), max(mids), max(outs)


@functools.lru_cache(maxsize=1024)
def block_max_se(space: SearchSpace, stage: int, block: int) -> int:
    st = space.stages[stage]
    outs = {stage_width(space, stage, m) for m in st.width_mults}
    ins = set(stage_in_widths(space, stage)) if block == 0 else outs
    return max(se_width(space, mid_width(space, c, e)) for c in ins for e in st.expand_ratios)


def last_max_width(space: SearchSpace) -> int:
    return stage_max_width(space, space.num_stages - 1)


# ----------------------------------------------------------------------------- tensors
def tensor_specs(space: SearchSpace) -> dict[str, tuple[int, ...]]:
    """Every shared tensor of the supernet (weights, biases, BN gamma/beta):
    name -> stored shape. This is exactly the set a pool file must hold."""
    specs: dict[str, tuple[int, ...]] = {}

    def conv(name: str, shape: tuple[int, ...], bn: int | None) -> None:
        specs[f"{name}.weight"] = shape
        if bn is not None:
            specs[f"{name}.bn.weight"] = (bn,)
            specs[f"{name}.bn.bias"] = (bn,)

    k, cin, c = space.stem_kernel, space.in_channels, space.stem_channels
    conv("stem.conv", (k * k * cin, c), c)
    for s, stage in enumerate(space.stages):
        for b in range(stage.max_depth):
            p = block_prefix(s, b)
            in_max, mid_max, out_max = block_max_widths(space, s, b)
            if stage.has_expand:
                conv(f"{p}.expand", (in_max, mid_max), mid_max)
            for kk in stage.kernel_sizes:
                specs[f"{p}.dw{kk}.weight"] = (kk, kk, mid_max)
            specs[f"{p}.dw.bn.weight"] = specs[f"{p}.dw.bn.bias"] = (mid_max,)
            if stage.se:
                r_max = block_max_se(space, s, b)
                specs[f"{p}.se.reduce.weight"] = (mid_max, r_max)
                specs[f"{p}.se.reduce.bias"] = (r_max,)
                specs[f"{p}.se.expand.weight"] = (r_max, mid_max)
                specs[f"{p}.se.expand.bias"] = (mid_max,)
            conv(f"{p}.project", (mid_max, out_max), out_max)
    ch = space.head_channels
    conv("head.conv", (last_max_width(space), ch), ch)
    if space.feature_channels:
        specs["head.mix.weight"] = (ch, space.feature_channels)
        ch = space.feature_channels
    specs["classifier.weight"] = (ch, space.num_classes)
    specs["classifier.bias"] = (space.num_classes,)
    return specs


PANEL = 32   # columns per panel (csrc/kernels/kernels.h kPanel)


def gemm_weight_names(space: SearchSpace) -> frozenset[str]:
    """The tensors the engine reads as a GEMM's B in panels: every 2-D
    weight but the stem conv's (read by the direct conv kernel row-major)."""
    return frozenset(n for n, shape in tensor_specs(space).items() if len(shape) == 2 and n != "stem.conv.weight")


def pack_panels(a: np.ndarray, out: np.ndarray) -> None:
    """Write the row-major ``[K, N]`` matrix ``a`` into the 1-D ``out`` (K*N
    values) in panels (``a`` and ``out`` must not overlap)."""
    K, N = a.shape
    full = N // PANEL * PANEL
    if full:
        out[:K * full].reshape(full // PANEL, K, PANEL)[...] = a[:, :full].reshape(K, full // PANEL, PANEL).transpose(1, 0, 2)
    if N > full:
        out[K * full:K * N].reshape(K, N - full)[...] = a[:, full:]


def unpack_panels(flat: np.ndarray, K: int, N: int, rows: int | None = None, cols: int | None = None,
                  dtype=None) -> np.ndarray:
    """The row-major ``[K, N]`` matrix (a new array) of ``flat`` in panels, or
    only its leading ``[rows, cols]`` slice, cast to ``dtype``."""
    rows = K if rows is None else rows
    cols = N if cols is None else cols
    if not (0 <= rows <= K and 0 <= cols <= N):
        raise ValueError(f"slice [{rows}, {cols}] of a [{K}, {N}] matrix")
    a = np.empty((rows, cols), flat.dtype if dtype is None else dtype)
    full = cols // PANEL * PANEL            # whole panels inside the slice
    if full:
        a[:, :full].reshape(rows, full // PANEL, PANEL)[...] = \
            flat[:K * full].reshape(full // PANEL, K, PANEL)[:, :rows].transpose(1, 0, 2)
    if cols > full:                         # part of one more panel (full width PANEL, or the last one's)
        w = min(PANEL, N - full)
        a[:, full:] = flat[K * full:K * (full + w)].reshape(K, w)[:rows, :cols - full]
    return a


def running_stat_specs(space: SearchSpace) -> dict[str, tuple[int, ...]]:
    """The supernet's own full-width BN running statistics (``<layer>.bn.mean``
    and ``.var``): optional in a pool file, which carries per-entry ones."""
    out = {}
    for name, shape in tensor_specs(space).items():
        if name.endswith(".bn.weight"):
            layer = name[: -len(".weight")]
            out[f"{layer}.mean"] = shape
            out[f"{layer}.var"] = shape
    return out


def bn_stat_specs(graph: "Graph", prefix: str) -> dict[str, tuple[int, ...]]:
    """The per-entry BN statistics a subnet needs under ``prefix``: name -> (C,)."""
    out = {}
    for bn in graph.bn_refs():
        out[bn.mean(prefix)] = (bn.channels,)
        out[bn.var(prefix)] = (bn.channels,)
    return out

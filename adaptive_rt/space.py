"""Search space and subnet configuration.

This module owns the *description* of the elastic network: :class:`SearchSpace`
(what may vary, and within which choices) and :class:`SubnetConfig` (one choice
for every elastic dimension). Both are frozen value objects; nothing here knows
about weights or how a subnet is executed (see ``graph.py``).

The space is MobileNetV3-like: a stem conv, N stages of inverted-residual
blocks (1x1 expand, kxk depthwise, optional squeeze-excite, 1x1 project,
residual when shapes match), a 1x1 head conv, global pooling, an optional
feature-mix layer and a linear classifier. Elastic dimensions: input
resolution, per-stage depth (the first ``d`` blocks of a stage), per-block
kernel size and expand ratio, and a per-stage output-width multiplier.
"""
from __future__ import annotations

import itertools
import json
import math
import random
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping

__all__ = [
    "ACTIVATIONS",
    "ConfigError",
    "SpaceError",
    "StageSpec",
    "SearchSpace",
    "SubnetConfig",
    "make_divisible",
    "register_space",
    "get_space",
    "list_spaces",
]

#: Activations a layer may use ("none" only where a layer has no activation).
ACTIVATIONS = ("relu", "relu6", "hswish")
SE_GATES = ("hsigmoid", "sigmoid")

_MAX_KERNEL = 15
_MAX_RESOLUTION = 4096
_MAX_CHANNELS = 1 << 16
_MAX_STAGES = 32
_MAX_DEPTH = 32


class SpaceError(ValueError):
    """A search space definition is invalid; the message names the field."""


class ConfigError(ValueError):
    """A subnet configuration is invalid for a space; the message names the field."""


def make_divisible(v: float, divisor: int) -> int:
    """Round ``v`` to a multiple of ``divisor`` (MobileNet's rule: never below
    ``divisor``, never more than 10% below ``v``)."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return int(new_v)


def _fmt_num(x: float) -> str:
    """Shortest text that parses back to the same float (no exponent for the
    ranges a space allows)."""
    x = float(x)
    return str(int(x)) if x.is_integer() else repr(x)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)
            and math.isfinite(v))


def _choices(field: str, values: Any, *, ints: bool, lo: float, hi: float) -> tuple:
    if not isinstance(values, (list, tuple)) or len(values) == 0:
        raise SpaceError(f"{field} must be a non-empty list, got {values!r}")
    out = []
    for i, v in enumerate(values):
        ok = _is_int(v) if ints else _is_num(v)
        if not ok or not (lo <= v <= hi):
            kind = "an integer" if ints else "a number"
            raise SpaceError(f"{field}[{i}]={v!r} must be {kind} in [{lo}, {hi}]")
        out.append(int(v) if ints else float(v))
    if len(set(out)) != len(out):
        raise SpaceError(f"{field} has duplicate values: {values!r}")
    return tuple(sorted(out))


@dataclass(frozen=True)
class StageSpec:
    """One stage of inverted-residual blocks.

    ``channels`` is the output width at multiplier 1.0; the active width is
    ``make_divisible(channels * w, divisor)`` for the chosen multiplier ``w``.
    The first block of the stage has ``stride``; the others stride 1.
    """

    channels: int
    stride: int
    depths: tuple[int, ...]
    kernel_sizes: tuple[int, ...]
    expand_ratios: tuple[float, ...]
    width_mults: tuple[float, ...] = (1.0,)
    act: str = "relu"
    se: bool = False

    @property
    def max_depth(self) -> int:
        return max(self.depths)

    @property
    def has_expand(self) -> bool:
        """An expand ratio of exactly 1 means the block has no expand conv."""
        return self.expand_ratios != (1.0,)

    def to_dict(self) -> dict:
        return {
            "channels": self.channels,
            "stride": self.stride,
            "depths": list(self.depths),
            "kernel_sizes": list(self.kernel_sizes),
            "expand_ratios": list(self.expand_ratios),
            "width_mults": list(self.width_mults),
            "act": self.act,
            "se": self.se,
        }

    @classmethod
    def from_dict(cls, d: Mapping, where: str = "stage") -> "StageSpec":
        if not isinstance(d, Mapping):
            raise SpaceError(f"{where} must be an object, got {type(d).__name__}")
        _check_keys(d, {"channels", "stride", "depths", "kernel_sizes",
                        "expand_ratios"}, {"width_mults", "act", "se"}, where, SpaceError)
        # Raw values go through; SearchSpace validates them and normalises to tuples.
        return cls(d["channels"], d["stride"], d["depths"], d["kernel_sizes"],
                   d["expand_ratios"], d.get("width_mults", (1.0,)),
                   d.get("act", "relu"), d.get("se", False))


def _check_keys(d: Mapping, required: set, optional: set, where: str, err: type) -> None:
    keys = set(d.keys())
    missing = required - keys
    if missing:
        raise err(f"{where}: missing field {sorted(missing)[0]!r}")
    unknown = keys - required - optional
    if unknown:
        raise err(f"{where}: unknown field {sorted(unknown)[0]!r}")


@dataclass(frozen=True)
class SearchSpace:
    """The elastic supernet: fixed structure plus the choices of every elastic
    dimension. Construct through :meth:`from_dict` or a preset
    (:func:`get_space`) so that every field is validated."""

    name: str
    in_channels: int
    num_classes: int
    input_size: int
    resolutions: tuple[int, ...]
    stem_channels: int
    stem_kernel: int
    stem_stride: int
    stem_act: str
    stages: tuple[StageSpec, ...]
    head_channels: int
    head_act: str
    feature_channels: int = 0      # 0: no feature-mix layer after pooling
    feature_act: str = "hswish"
    channel_divisor: int = 8
    se_ratio: float = 0.25
    se_gate: str = "hsigmoid"
    bn_eps: float = 1e-5

    def __post_init__(self) -> None:
        self._validate()

    # ---------------------------------------------------------------- validation
    def _validate(self) -> None:
        if not isinstance(self.name, str) or not re.fullmatch(r"[A-Za-z0-9_.\-]{1,64}", self.name):
            raise SpaceError(f"name={self.name!r} must be 1-64 characters of [A-Za-z0-9_.-]")
        for f, lo, hi in (("in_channels", 1, 64), ("num_classes", 1, 1 << 20),
                          ("input_size", 1, _MAX_RESOLUTION),
                          ("stem_channels", 1, _MAX_CHANNELS),
                          ("stem_kernel", 1, _MAX_KERNEL), ("stem_stride", 1, 4),
                          ("head_channels", 1, _MAX_CHANNELS),
                          ("feature_channels", 0, _MAX_CHANNELS),
                          ("channel_divisor", 1, 256)):
            v = getattr(self, f)
            if not _is_int(v) or not (lo <= v <= hi):
                raise SpaceError(f"{f}={v!r} must be an integer in [{lo}, {hi}]")
        if self.stem_kernel % 2 == 0:
            raise SpaceError(f"stem_kernel={self.stem_kernel} must be odd")
        for f in ("stem_act", "head_act", "feature_act"):
            if getattr(self, f) not in ACTIVATIONS:
                raise SpaceError(f"{f}={getattr(self, f)!r} must be one of {ACTIVATIONS}")
        if self.se_gate not in SE_GATES:
            raise SpaceError(f"se_gate={self.se_gate!r} must be one of {SE_GATES}")
        if not _is_num(self.se_ratio) or not (0 < self.se_ratio <= 1):
            raise SpaceError(f"se_ratio={self.se_ratio!r} must be a number in (0, 1]")
        if not _is_num(self.bn_eps) or not (0 < self.bn_eps < 1):
            raise SpaceError(f"bn_eps={self.bn_eps!r} must be a number in (0, 1)")
        object.__setattr__(self, "resolutions", _choices(
            "resolutions", self.resolutions, ints=True, lo=8, hi=_MAX_RESOLUTION))
        if not isinstance(self.stages, (list, tuple)) or not (1 <= len(self.stages) <= _MAX_STAGES):
            raise SpaceError(f"stages must be a list of 1-{_MAX_STAGES} stages")
        stages = []
        for i, st in enumerate(self.stages):
            if isinstance(st, Mapping):
                st = StageSpec.from_dict(st, f"stages[{i}]")
            if not isinstance(st, StageSpec):
                raise SpaceError(f"stages[{i}] must be a StageSpec")
            stages.append(self._validate_stage(i, st))
        object.__setattr__(self, "stages", tuple(stages))

    def _validate_stage(self, i: int, st: StageSpec) -> StageSpec:
        w = f"stages[{i}]"
        if not _is_int(st.channels) or not (1 <= st.channels <= _MAX_CHANNELS):
            raise SpaceError(f"{w}.channels={st.channels!r} must be an integer in [1, {_MAX_CHANNELS}]")
        if not _is_int(st.stride) or st.stride not in (1, 2):
            raise SpaceError(f"{w}.stride={st.stride!r} must be 1 or 2")
        depths = _choices(f"{w}.depths", st.depths, ints=True, lo=1, hi=_MAX_DEPTH)
        ks = _choices(f"{w}.kernel_sizes", st.kernel_sizes, ints=True, lo=1, hi=_MAX_KERNEL)
        for k in ks:
            if k % 2 == 0:
                raise SpaceError(f"{w}.kernel_sizes has even kernel size {k}; kernels must be odd")
        ers = _choices(f"{w}.expand_ratios", st.expand_ratios, ints=False, lo=1.0, hi=64.0)
        if 1.0 in ers and len(ers) > 1:
            raise SpaceError(f"{w}.expand_ratios={list(ers)}: 1 (no expand conv) must be the only choice if present")
        wms = _choices(f"{w}.width_mults", st.width_mults, ints=False, lo=0.05, hi=4.0)
        if st.act not in ACTIVATIONS:
            raise SpaceError(f"{w}.act={st.act!r} must be one of {ACTIVATIONS}")
        if not isinstance(st.se, bool):
            raise SpaceError(f"{w}.se={st.se!r} must be true or false")
        return StageSpec(st.channels, st.stride, depths, ks, ers, wms, st.act, st.se)

    # ------------------------------------------------------------- derived sizes
    @property
    def num_stages(self) -> int:
        return len(self.stages)

    def stage_width(self, stage: int, mult: float) -> int:
        """Active output channels of ``stage`` at width multiplier ``mult``."""
        return make_divisible(self.stages[stage].channels * mult, self.channel_divisor)

    def stage_max_width(self, stage: int) -> int:
        return max(self.stage_width(stage, m) for m in self.stages[stage].width_mults)

    def stage_in_widths(self, stage: int) -> tuple[int, ...]:
        """All widths the input of ``stage`` may have."""
        if stage == 0:
            return (self.stem_channels,)
        return tuple(sorted({self.stage_width(stage - 1, m) for m in self.stages[stage - 1].width_mults}))

    def mid_width(self, in_width: int, expand: float) -> int:
        """Channels inside a block (after the expand conv) for an active input width."""
        if expand == 1.0:
            return in_width
        return make_divisible(round(in_width * expand), self.channel_divisor)

    def se_width(self, mid: int) -> int:
        """Squeeze-excite bottleneck width for ``mid`` channels."""
        return make_divisible(mid * self.se_ratio, self.channel_divisor)

    def block_max_widths(self, stage: int, block: int) -> tuple[int, int, int]:
        """(max input, max mid, max output) channels of a block over all configs."""
        st = self.stages[stage]
        outs = {self.stage_width(stage, m) for m in st.width_mults}
        ins = set(self.stage_in_widths(stage)) if block == 0 else outs
        mids = {self.mid_width(c, e) for c in ins for e in st.expand_ratios}
        return max(ins), max(mids), max(outs)

    def block_max_se(self, stage: int, block: int) -> int:
        st = self.stages[stage]
        outs = {self.stage_width(stage, m) for m in st.width_mults}
        ins = set(self.stage_in_widths(stage)) if block == 0 else outs
        return max(self.se_width(self.mid_width(c, e)) for c in ins for e in st.expand_ratios)

    @property
    def last_max_width(self) -> int:
        return self.stage_max_width(self.num_stages - 1)

    # -------------------------------------------------------------- configs
    def min_config(self) -> "SubnetConfig":
        return self._extreme(min)

    def max_config(self) -> "SubnetConfig":
        return self._extreme(max)

    def _extreme(self, pick: Callable) -> "SubnetConfig":
        return SubnetConfig(
            resolution=pick(self.resolutions),
            widths=tuple(pick(s.width_mults) for s in self.stages),
            kernels=tuple((pick(s.kernel_sizes),) * pick(s.depths) for s in self.stages),
            expands=tuple((pick(s.expand_ratios),) * pick(s.depths) for s in self.stages),
        )

    def sample(self, rng: random.Random | int | None = None) -> "SubnetConfig":
        """A uniformly random config: each elastic choice drawn independently."""
        rng = rng if isinstance(rng, random.Random) else random.Random(rng)
        widths, kernels, expands = [], [], []
        for s in self.stages:
            d = rng.choice(s.depths)
            widths.append(rng.choice(s.width_mults))
            kernels.append(tuple(rng.choice(s.kernel_sizes) for _ in range(d)))
            expands.append(tuple(rng.choice(s.expand_ratios) for _ in range(d)))
        return SubnetConfig(rng.choice(self.resolutions), tuple(widths), tuple(kernels), tuple(expands))

    def neighbours(self, cfg: "SubnetConfig") -> list["SubnetConfig"]:
        """Configs one step away: one elastic choice moved to an adjacent
        allowed value (depth changes add/remove the last block of a stage,
        the added block copying the previous block's choices)."""
        cfg.validate(self)
        out: list[SubnetConfig] = []

        def adjacent(choices: tuple, v: Any) -> Iterator:
            i = choices.index(v)
            for j in (i - 1, i + 1):
                if 0 <= j < len(choices):
                    yield choices[j]

        for r in adjacent(self.resolutions, cfg.resolution):
            out.append(cfg.replace(resolution=r))
        for s, st in enumerate(self.stages):
            for w in adjacent(st.width_mults, cfg.widths[s]):
                out.append(cfg.replace(widths=_set(cfg.widths, s, w)))
            d = len(cfg.kernels[s])
            for nd in adjacent(st.depths, d):
                k = cfg.kernels[s][:nd] + (cfg.kernels[s][-1],) * max(0, nd - d)
                e = cfg.expands[s][:nd] + (cfg.expands[s][-1],) * max(0, nd - d)
                out.append(cfg.replace(kernels=_set(cfg.kernels, s, k), expands=_set(cfg.expands, s, e)))
            for b in range(d):
                for k in adjacent(st.kernel_sizes, cfg.kernels[s][b]):
                    out.append(cfg.replace(kernels=_set(cfg.kernels, s, _set(cfg.kernels[s], b, k))))
                for e in adjacent(st.expand_ratios, cfg.expands[s][b]):
                    out.append(cfg.replace(expands=_set(cfg.expands, s, _set(cfg.expands[s], b, e))))
        return out

    def mutate(self, cfg: "SubnetConfig", rng: random.Random | int | None = None,
               prob: float = 0.1) -> "SubnetConfig":
        """Resample each elastic choice independently with probability ``prob``."""
        rng = rng if isinstance(rng, random.Random) else random.Random(rng)
        cfg.validate(self)
        res = rng.choice(self.resolutions) if rng.random() < prob else cfg.resolution
        widths, kernels, expands = [], [], []
        for s, st in enumerate(self.stages):
            k, e = list(cfg.kernels[s]), list(cfg.expands[s])
            if rng.random() < prob:
                d = rng.choice(st.depths)
                k = (k + [rng.choice(st.kernel_sizes) for _ in range(d)])[:d] if d > len(k) else k[:d]
                e = (e + [rng.choice(st.expand_ratios) for _ in range(d)])[:d] if d > len(e) else e[:d]
            k = [rng.choice(st.kernel_sizes) if rng.random() < prob else v for v in k]
            e = [rng.choice(st.expand_ratios) if rng.random() < prob else v for v in e]
            widths.append(rng.choice(st.width_mults) if rng.random() < prob else cfg.widths[s])
            kernels.append(tuple(k))
            expands.append(tuple(e))
        return SubnetConfig(res, tuple(widths), tuple(kernels), tuple(expands))

    def num_configs(self) -> int:
        """Number of distinct subnets in the space (may be astronomically large)."""
        total = len(self.resolutions)
        for st in self.stages:
            per_block = len(st.kernel_sizes) * len(st.expand_ratios)
            total *= len(st.width_mults) * sum(per_block ** d for d in st.depths)
        return total

    def iter_configs(self) -> Iterator["SubnetConfig"]:
        """Every config of the space (only sensible for tiny spaces)."""
        per_stage = []
        for st in self.stages:
            opts = []
            for d in st.depths:
                for w in st.width_mults:
                    for ks in itertools.product(st.kernel_sizes, repeat=d):
                        for es in itertools.product(st.expand_ratios, repeat=d):
                            opts.append((w, ks, es))
            per_stage.append(opts)
        for r in self.resolutions:
            for combo in itertools.product(*per_stage):
                yield SubnetConfig(r, tuple(c[0] for c in combo),
                                   tuple(c[1] for c in combo), tuple(c[2] for c in combo))

    # ----------------------------------------------------------------- JSON
    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "in_channels": self.in_channels,
            "num_classes": self.num_classes,
            "input_size": self.input_size,
            "resolutions": list(self.resolutions),
            "stem_channels": self.stem_channels,
            "stem_kernel": self.stem_kernel,
            "stem_stride": self.stem_stride,
            "stem_act": self.stem_act,
            "stages": [s.to_dict() for s in self.stages],
            "head_channels": self.head_channels,
            "head_act": self.head_act,
            "feature_channels": self.feature_channels,
            "feature_act": self.feature_act,
            "channel_divisor": self.channel_divisor,
            "se_ratio": self.se_ratio,
            "se_gate": self.se_gate,
            "bn_eps": self.bn_eps,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, d: Mapping) -> "SearchSpace":
        if not isinstance(d, Mapping):
            raise SpaceError(f"space must be an object, got {type(d).__name__}")
        required = {"name", "in_channels", "num_classes", "input_size", "resolutions",
                    "stem_channels", "stem_kernel", "stem_stride", "stem_act", "stages",
                    "head_channels", "head_act"}
        optional = {"feature_channels", "feature_act", "channel_divisor", "se_ratio",
                    "se_gate", "bn_eps"}
        _check_keys(d, required, optional, "space", SpaceError)
        if not isinstance(d["stages"], list):
            raise SpaceError("space: stages must be a list")
        kw = dict(d)
        kw["stages"] = tuple(StageSpec.from_dict(s, f"stages[{i}]") for i, s in enumerate(d["stages"]))
        return cls(**kw)

    @classmethod
    def from_json(cls, text: str) -> "SearchSpace":
        return cls.from_dict(_loads(text, "space", SpaceError))


def _loads(text: str, what: str, err: type) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as e:
        raise err(f"{what} JSON is invalid: {e}") from None


def _set(t: tuple, i: int, v: Any) -> tuple:
    return t[:i] + (v,) + t[i + 1:]


# ----------------------------------------------------------------------------- config
_ID_RE = re.compile(r"r(\d+)((?:-[0-9.]+:[0-9.x_]+)+)")


@dataclass(frozen=True)
class SubnetConfig:
    """One subnet: a choice for every elastic dimension.

    ``widths[s]`` is stage ``s``'s width multiplier; ``kernels[s]`` and
    ``expands[s]`` hold one entry per *active* block of stage ``s`` (so the
    depth of stage ``s`` is ``len(kernels[s])``). Configs are hashable and
    compare by value; :attr:`id` is a compact string that round-trips through
    :meth:`from_id`, e.g. ``r28-1:3x4_5x6-0.75:3x3_7x6``.
    """

    resolution: int
    widths: tuple[float, ...]
    kernels: tuple[tuple[int, ...], ...]
    expands: tuple[tuple[float, ...], ...]

    def __post_init__(self) -> None:
        # Normalise to tuples of plain ints/floats so equal configs hash equal.
        try:
            object.__setattr__(self, "widths", tuple(_num(w, "widths") for w in self.widths))
            object.__setattr__(self, "kernels", tuple(tuple(_int(k, "kernels") for k in ks) for ks in self.kernels))
            object.__setattr__(self, "expands", tuple(tuple(_num(e, "expands") for e in es) for es in self.expands))
        except TypeError as e:
            raise ConfigError(str(e)) from None
        if not _is_int(self.resolution):
            raise ConfigError(f"resolution={self.resolution!r} must be an integer")

    @property
    def depths(self) -> tuple[int, ...]:
        return tuple(len(k) for k in self.kernels)

    def replace(self, **kw: Any) -> "SubnetConfig":
        d = {"resolution": self.resolution, "widths": self.widths,
             "kernels": self.kernels, "expands": self.expands}
        d.update(kw)
        return SubnetConfig(**d)

    # ------------------------------------------------------------ validation
    def validate(self, space: SearchSpace) -> "SubnetConfig":
        """Raise :class:`ConfigError` naming the first field not allowed by ``space``."""
        if self.resolution not in space.resolutions:
            raise ConfigError(f"resolution={self.resolution} not in allowed resolutions {list(space.resolutions)}")
        n = space.num_stages
        for f in ("widths", "kernels", "expands"):
            if len(getattr(self, f)) != n:
                raise ConfigError(f"{f} has {len(getattr(self, f))} stages, the space has {n}")
        for s, st in enumerate(space.stages):
            if self.widths[s] not in st.width_mults:
                raise ConfigError(f"widths[{s}]={_fmt_num(self.widths[s])} not in allowed width multipliers "
                                  f"{[_fmt_num(w) for w in st.width_mults]} of stage {s}")
            d = len(self.kernels[s])
            if d not in st.depths:
                raise ConfigError(f"depth of stage {s} (len(kernels[{s}]))={d} not in allowed depths {list(st.depths)}")
            if len(self.expands[s]) != d:
                raise ConfigError(f"expands[{s}] has {len(self.expands[s])} blocks but kernels[{s}] has {d}")
            for b, k in enumerate(self.kernels[s]):
                if k not in st.kernel_sizes:
                    raise ConfigError(f"kernels[{s}][{b}]={k} not in allowed kernel sizes {list(st.kernel_sizes)} of stage {s}")
            for b, e in enumerate(self.expands[s]):
                if e not in st.expand_ratios:
                    raise ConfigError(f"expands[{s}][{b}]={_fmt_num(e)} not in allowed expand ratios "
                                      f"{[_fmt_num(x) for x in st.expand_ratios]} of stage {s}")
        return self

    # ------------------------------------------------------------------ id
    @property
    def id(self) -> str:
        parts = [f"r{self.resolution}"]
        for w, ks, es in zip(self.widths, self.kernels, self.expands):
            blocks = "_".join(f"{k}x{_fmt_num(e)}" for k, e in zip(ks, es))
            parts.append(f"{_fmt_num(w)}:{blocks}")
        return "-".join(parts)

    def __str__(self) -> str:
        return self.id

    @classmethod
    def from_id(cls, text: str) -> "SubnetConfig":
        if not isinstance(text, str) or len(text) > 4096 or not _ID_RE.fullmatch(text):
            raise ConfigError(f"config id {str(text)[:80]!r} is not of the form "
                              "r<res>-<width>:<k>x<e>_<k>x<e>...-<width>:...")
        head, *stages = text.split("-")
        widths, kernels, expands = [], [], []
        try:
            for i, seg in enumerate(stages):
                w, blocks = seg.split(":")
                widths.append(float(w))
                ks, es = [], []
                for blk in blocks.split("_"):
                    k, e = blk.split("x")
                    ks.append(int(k))
                    es.append(float(e))
                kernels.append(tuple(ks))
                expands.append(tuple(es))
        except ValueError:
            raise ConfigError(f"config id {text[:80]!r}: stage {i} segment {seg!r} is malformed") from None
        return cls(int(head[1:]), tuple(widths), tuple(kernels), tuple(expands))

    # ---------------------------------------------------------------- JSON
    def to_dict(self) -> dict:
        return {"resolution": self.resolution, "widths": list(self.widths),
                "kernels": [list(k) for k in self.kernels],
                "expands": [list(e) for e in self.expands]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_dict(cls, d: Mapping) -> "SubnetConfig":
        if not isinstance(d, Mapping):
            raise ConfigError(f"config must be an object, got {type(d).__name__}")
        _check_keys(d, {"resolution", "widths", "kernels", "expands"}, set(), "config", ConfigError)
        for f in ("widths", "kernels", "expands"):
            if not isinstance(d[f], list):
                raise ConfigError(f"{f} must be a list, got {d[f]!r}")
        for f in ("kernels", "expands"):
            for s, v in enumerate(d[f]):
                if not isinstance(v, list):
                    raise ConfigError(f"{f}[{s}] must be a list, got {v!r}")
        return cls(d["resolution"], tuple(d["widths"]), tuple(tuple(k) for k in d["kernels"]),
                   tuple(tuple(e) for e in d["expands"]))

    @classmethod
    def from_json(cls, text: str) -> "SubnetConfig":
        return cls.from_dict(_loads(text, "config", ConfigError))


def _num(v: Any, field: str) -> float:
    if not _is_num(v):
        raise TypeError(f"{field} value {v!r} must be a finite number")
    return float(v)


def _int(v: Any, field: str) -> int:
    if not _is_int(v):
        raise TypeError(f"{field} value {v!r} must be an integer")
    return int(v)


# ----------------------------------------------------------------------------- presets
_SPACES: dict[str, Callable[[], SearchSpace]] = {}


def register_space(name: str) -> Callable:
    """Decorator: register a zero-argument factory of a preset space by name."""
    def deco(fn: Callable[[], SearchSpace]) -> Callable[[], SearchSpace]:
        if name in _SPACES:
            raise ValueError(f"search space {name!r} registered twice")
        _SPACES[name] = fn
        return fn
    return deco


def get_space(name: str) -> SearchSpace:
    try:
        return _SPACES[name]()
    except KeyError:
        raise SpaceError(f"unknown search space {name!r}; known: {', '.join(sorted(_SPACES))}") from None


def list_spaces() -> list[str]:
    return sorted(_SPACES)


@register_space("mbv3-tiny28")
def _tiny28() -> SearchSpace:
    """Small MobileNetV3-like space for 28x28 grey digits (MNIST, sklearn digits)."""
    return SearchSpace(
        name="mbv3-tiny28", in_channels=1, num_classes=10, input_size=28,
        resolutions=(20, 24, 28),
        stem_channels=16, stem_kernel=3, stem_stride=1, stem_act="hswish",
        stages=(
            StageSpec(16, 2, (1, 2), (3, 5), (2, 3), (0.75, 1.0), "relu", False),
            StageSpec(24, 2, (1, 2, 3), (3, 5, 7), (2, 3, 4), (0.75, 1.0), "relu", True),
            StageSpec(40, 2, (1, 2, 3), (3, 5, 7), (3, 4, 6), (0.75, 1.0), "hswish", True),
            StageSpec(48, 1, (1, 2), (3, 5), (3, 4, 6), (0.75, 1.0), "hswish", True),
        ),
        head_channels=128, head_act="hswish", feature_channels=0,
    )


@register_space("mbv3-224")
def _mbv3_224() -> SearchSpace:
    """ImageNet-size MobileNetV3-Large-like space (OFA's stage layout) with
    elastic width on top of OFA's kernel/depth/expand/resolution choices."""
    ks, er, dp = (3, 5, 7), (3, 4, 6), (2, 3, 4)
    wm = (0.75, 1.0)
    return SearchSpace(
        name="mbv3-224", in_channels=3, num_classes=1000, input_size=224,
        resolutions=tuple(range(128, 225, 16)),
        stem_channels=16, stem_kernel=3, stem_stride=2, stem_act="hswish",
        stages=(
            StageSpec(16, 1, (1,), (3,), (1.0,), (1.0,), "relu", False),
            StageSpec(24, 2, dp, ks, er, wm, "relu", False),
            StageSpec(40, 2, dp, ks, er, wm, "relu", True),
            StageSpec(80, 2, dp, ks, er, wm, "hswish", False),
            StageSpec(112, 1, dp, ks, er, wm, "hswish", True),
            StageSpec(160, 2, dp, ks, er, wm, "hswish", True),
        ),
        head_channels=960, head_act="hswish", feature_channels=1280, feature_act="hswish",
    )


# Once-for-All's OFAMobileNetV3 (mit-han-lab/once-for-all), exactly: see adaptive_rt/ofa.py
OFA_WIDTHS = (1.0, 1.2)


def _ofa_mbv3(width: float) -> SearchSpace:
    w = [make_divisible(b * width, 8) for b in (16, 16, 24, 40, 80, 112, 160, 960, 1280)]
    ks, er, dp = (3, 5, 7), (3.0, 4.0, 6.0), (2, 3, 4)
    strides, acts = (2, 2, 2, 1, 2), ("relu", "relu", "hswish", "hswish", "hswish")
    se = (False, True, False, True, True)
    return SearchSpace(
        name=f"ofa-mbv3-w{width}", in_channels=3, num_classes=1000, input_size=224,
        resolutions=tuple(range(128, 225, 4)),
        stem_channels=w[0], stem_kernel=3, stem_stride=2, stem_act="hswish",
        stages=(StageSpec(w[1], 1, (1,), (3,), (1.0,), (1.0,), "relu", False),)
        + tuple(StageSpec(w[2 + i], strides[i], dp, ks, er, (1.0,), acts[i], se[i]) for i in range(5)),
        head_channels=w[7], head_act="hswish", feature_channels=w[8], feature_act="hswish",
    )


for _w in OFA_WIDTHS:
    register_space(f"ofa-mbv3-w{_w}")(lambda _w=_w: _ofa_mbv3(_w))

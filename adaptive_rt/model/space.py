"""Search space and subnet configuration.

This module owns the *description* of the elastic network: :class:`SearchSpace`
(what may vary, and within which choices) and :class:`SubnetConfig` (one choice
for every elastic dimension). Both are frozen value objects; nothing here knows
about weights or how a subnet is executed: channel widths and tensor shapes
are in ``layout.py``, ops and costs in ``graph.py``, the named preset spaces
in ``presets.py``.

The space is MobileNetV3-like: a stem conv, N stages of inverted-residual
blocks (1x1 expand, kxk depthwise, optional squeeze-excite, 1x1 project,
residual when shapes match), a 1x1 head conv, global pooling, an optional
feature-mix layer and a linear classifier. Elastic dimensions: input
resolution, per-stage depth (the first ``d`` blocks of a stage), per-block
kernel size and expand ratio, and a per-stage output-width multiplier.
"""
from __future__ import annotations

import json
import math
import random
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping

__all__ = [
    "ACTIVATIONS",
    "ConfigError",
    "SpaceError",
    "StageSpec",
    "SearchSpace",
    "SubnetConfig",
    "make_divisible",
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

    def sample(self, rng: random.Random | int | None = None, tilt: float = 0.0) -> "SubnetConfig":
        """A random config: each elastic choice drawn independently —
        uniformly, or with ``tilt`` != 0 weighted towards the larger options
        (tilt > 0) or the smaller ones (tilt < 0): option i of n has weight
        exp(tilt * i / (n - 1)), so tilts spread samples over the whole cost
        range where uniform draws crowd its middle."""
        rng = rng if isinstance(rng, random.Random) else random.Random(rng)
        if tilt:
            def pick(opts):
                opts = sorted(opts)
                if len(opts) == 1:
                    return opts[0]
                return rng.choices(opts, [math.exp(tilt * i / (len(opts) - 1)) for i in range(len(opts))])[0]
            widths, kernels, expands = [], [], []
            for s in self.stages:
                d = pick(s.depths)
                widths.append(pick(s.width_mults))
                kernels.append(tuple(pick(s.kernel_sizes) for _ in range(d)))
                expands.append(tuple(pick(s.expand_ratios) for _ in range(d)))
            return SubnetConfig(pick(self.resolutions), tuple(widths), tuple(kernels), tuple(expands))
        widths, kernels, expands = [], [], []
        for s in self.stages:
            d = rng.choice(s.depths)
            widths.append(rng.choice(s.width_mults))
            kernels.append(tuple(rng.choice(s.kernel_sizes) for _ in range(d)))
            expands.append(tuple(rng.choice(s.expand_ratios) for _ in range(d)))
        return SubnetConfig(rng.choice(self.resolutions), tuple(widths), tuple(kernels), tuple(expands))

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

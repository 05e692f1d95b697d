"""The named search spaces: ``get_space("mbv3-224")``. Register your own
with ``@register_space("name")`` on a zero-argument factory."""
from __future__ import annotations

from typing import Callable

from ..registry import Registry, RegistryError
from .space import SearchSpace, SpaceError, StageSpec, make_divisible

__all__ = ["SPACES", "OFA_WIDTHS", "register_space", "get_space", "list_spaces"]

SPACES: Registry[Callable[[], SearchSpace]] = Registry("search space")


def register_space(name: str) -> Callable:
    """Decorator: register a zero-argument factory of a preset space by name."""
    return SPACES.register(name)


def get_space(name: str) -> SearchSpace:
    try:
        factory = SPACES.get(name)
    except RegistryError:
        raise SpaceError(f"unknown search space {name!r}; known: {', '.join(list_spaces())}") from None
    return factory()


def list_spaces() -> list[str]:
    return sorted(SPACES.names())


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


# Once-for-All's OFAMobileNetV3 (mit-han-lab/once-for-all), exactly: see adaptive_rt/train/ofa.py
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

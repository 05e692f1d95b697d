"""Serving a pool on the device: execution backends (``backends``), the
resource monitor (``monitor``), the device profile (``profile``: calibration),
the policy (``policy``) and the adaptive :class:`Runtime` that ties them.
``Runtime`` (and the C++ engine under it) is imported on first use, so the
light parts — the policy, the monitor — import without it."""
from __future__ import annotations

__all__ = ["Runtime", "InputError", "SwitchEvent"]


def __getattr__(name: str):
    if name in __all__:
        from . import runtime
        return getattr(runtime, name)
    raise AttributeError(f"module 'adaptive_rt.serve' has no attribute {name!r}")

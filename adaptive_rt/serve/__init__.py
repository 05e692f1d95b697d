"""Serving a pool on the device: execution backends (``backends``), the
resource monitor (``monitor``), the device profile (``profile``: calibration),
the policy (``policy``) and the adaptive :class:`Runtime` that ties them."""
from __future__ import annotations

from .runtime import InputError, Runtime, SwitchEvent

__all__ = ["Runtime", "InputError", "SwitchEvent"]

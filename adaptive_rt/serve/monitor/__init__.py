"""Resource monitoring: what the device has right now.

:class:`ResourceSnapshot` is one frozen reading; a *source* produces them
(registered by name: ``psutil`` reads psutil and fills in from Linux sysfs —
power_supply, thermal zones, hwmon/INA power rails — where psutil has
nothing; ``trace`` replays a scripted or recorded trace from JSON or CSV).
:class:`ResourceMonitor` samples a source on a background thread at a fixed
rate (default 10 Hz), keeps the latest snapshot and a bounded history, and
measures its own CPU cost. A sensor the machine lacks reads as None.
"""
from __future__ import annotations

from .sampler import ResourceMonitor
from .sources import SOURCES, MonitorError, PsutilSource, ResourceSnapshot, Source, Sysfs, make_source, register_source
from .trace import TraceSource

__all__ = ["ResourceSnapshot", "Source", "PsutilSource", "Sysfs", "TraceSource", "ResourceMonitor", "SOURCES",
           "register_source", "make_source", "MonitorError"]

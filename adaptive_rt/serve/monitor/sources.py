"""Live sources: one :class:`ResourceSnapshot` per ``sample()`` from psutil
and Linux sysfs (power_supply, thermal zones, hwmon/INA power rails)."""
from __future__ import annotations

import glob
import math
import os
import time
from dataclasses import asdict, dataclass
from typing import Callable

from ...registry import Registry, RegistryError

__all__ = ["ResourceSnapshot", "Source", "PsutilSource", "Sysfs", "SOURCES", "register_source", "make_source",
           "MonitorError"]


class MonitorError(ValueError):
    """A source or trace cannot be used; the message names the problem."""


@dataclass(frozen=True)
class ResourceSnapshot:
    time: float                         # seconds (monotonic for live sources, trace time for traces)
    cpu_count: int
    system_cpu_cores: float             # cores busy, all processes
    other_cpu_cores: float              # cores busy with other processes
    self_cpu_cores: float               # cores busy with this process
    mem_available_bytes: int | None
    battery_percent: float | None = None
    plugged: bool | None = None
    temperature_c: float | None = None  # hottest sensor
    power_w: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


SOURCES: Registry[Callable[..., "Source"]] = Registry("monitor source")


def register_source(name: str) -> Callable:
    """Class decorator: register a Source under ``name``."""
    return SOURCES.register(name)


def make_source(name: str, **kw) -> "Source":
    try:
        cls = SOURCES.get(name)
    except RegistryError:
        raise MonitorError(f"unknown monitor source {name!r}; known: {', '.join(sorted(SOURCES))}") from None
    return cls(**kw)


class Source:
    def sample(self) -> ResourceSnapshot:
        raise NotImplementedError


# ----------------------------------------------------------------------------- sysfs
def _read_number(path: str, limit: int = 64) -> float | None:
    """A number from a small sysfs file, or None (missing, unreadable, junk)."""
    try:
        with open(path, "rb") as f:
            raw = f.read(limit)
        v = float(raw.decode("ascii", "strict").strip())
        return v if math.isfinite(v) else None
    except (OSError, ValueError, UnicodeDecodeError):
        return None


def _read_text(path: str, limit: int = 64) -> str | None:
    try:
        with open(path, "rb") as f:
            return f.read(limit).decode("ascii", "replace").strip()
    except OSError:
        return None


class Sysfs:
    """Linux sysfs sensors under ``root`` (``/sys`` normally; tests point it
    at a folder of their own)."""

    def __init__(self, root: str = "/sys"):
        self.root = root

    def battery(self) -> tuple[float | None, bool | None]:
        for d in sorted(glob.glob(os.path.join(self.root, "class/power_supply/*"))):
            if (_read_text(os.path.join(d, "type")) or "").lower() != "battery":
                continue
            cap = _read_number(os.path.join(d, "capacity"))
            status = (_read_text(os.path.join(d, "status")) or "").lower()
            if cap is not None:
                plugged = None if not status else status in ("charging", "full", "not charging")
                return max(0.0, min(100.0, cap)), plugged
        return None, None

    def temperature(self) -> float | None:
        temps = []
        for p in glob.glob(os.path.join(self.root, "class/thermal/thermal_zone*/temp")):
            v = _read_number(p)
            if v is not None:
                temps.append(v / 1000.0 if abs(v) > 200 else v)    # millidegrees on Linux
        return max(temps) if temps else None

    def power(self) -> float | None:
        """Total power in W from hwmon power inputs (µW) or Jetson INA3221 rails (mW)."""
        total, found = 0.0, False
        for p in glob.glob(os.path.join(self.root, "class/hwmon/hwmon*/power*_input")):
            v = _read_number(p)
            if v is not None:
                total, found = total + v / 1e6, True
        for p in glob.glob(os.path.join(self.root, "bus/i2c/drivers/ina3221x/*/iio:device*/in_power*_input")):
            v = _read_number(p)
            if v is not None:
                total, found = total + v / 1e3, True
        return total if found else None


# ----------------------------------------------------------------------------- psutil
@register_source("psutil")
class PsutilSource(Source):
    """The live machine: psutil for CPU and memory (and battery/temperature
    where psutil reports them), Linux sysfs for what psutil leaves out."""

    def __init__(self, sysfs_root: str = "/sys", sensors_every_s: float = 1.0):
        import psutil
        self._ps = psutil
        self._sysfs = Sysfs(sysfs_root)
        self._ncpu = psutil.cpu_count() or 1
        self._last = self._times()
        # battery, temperature and power change slowly and cost most of a
        # sample (hwmon and power_supply scans): read at most this often
        self.sensors_every_s = sensors_every_s
        self._sensors: tuple | None = None
        self._sensors_at = -math.inf
        self._meminfo = os.path.exists("/proc/meminfo")

    def _times(self) -> tuple[float, float, float]:
        t = self._ps.cpu_times()
        busy = sum(getattr(t, f, 0.0) for f in ("user", "system", "nice", "irq", "softirq", "steal"))
        own = sum(os.times()[:2])   # this process, all threads (cheaper than psutil's)
        return time.monotonic(), busy, own

    def sample(self) -> ResourceSnapshot:
        now, busy, own = self._times()
        t0, b0, o0 = self._last
        self._last = (now, busy, own)
        dt = max(now - t0, 1e-6)
        system = max(0.0, min(float(self._ncpu), (busy - b0) / dt))
        mine = max(0.0, min(float(self._ncpu), (own - o0) / dt))
        if self._sensors is None or now - self._sensors_at >= self.sensors_every_s:
            self._sensors, self._sensors_at = self._read_sensors(), now
        battery, plugged, temp, power = self._sensors
        avail = self._mem_available()
        return ResourceSnapshot(now, self._ncpu, system, max(0.0, system - mine), mine, avail, battery, plugged,
                                temp, power)

    def _mem_available(self) -> int | None:
        """MemAvailable straight from /proc/meminfo on Linux (a fifth of
        psutil's cost), psutil elsewhere."""
        if self._meminfo:
            try:
                with open("/proc/meminfo", "rb") as f:
                    for line in f:
                        if line.startswith(b"MemAvailable:"):
                            return int(line.split()[1]) * 1024
            except (OSError, ValueError, IndexError):
                pass
            self._meminfo = False
        try:
            return int(self._ps.virtual_memory().available)
        except (OSError, RuntimeError):
            return None

    def _read_sensors(self) -> tuple:
        battery, plugged = None, None
        try:
            b = self._ps.sensors_battery()
            if b is not None:
                battery, plugged = float(b.percent), b.power_plugged
        except (AttributeError, OSError, RuntimeError):
            pass
        if battery is None:
            battery, plugged = self._sysfs.battery()
        temp = None
        try:
            readings = [s.current for v in (self._ps.sensors_temperatures() or {}).values() for s in v
                        if s.current is not None]
            temp = max(readings) if readings else None
        except (AttributeError, OSError, RuntimeError):
            pass
        if temp is None:
            temp = self._sysfs.temperature()
        return battery, plugged, temp, self._sysfs.power()

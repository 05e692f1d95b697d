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

import csv
import glob
import json
import math
import os
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, fields
from typing import Callable, Iterable, Mapping

__all__ = ["ResourceSnapshot", "Source", "PsutilSource", "TraceSource", "ResourceMonitor", "SOURCES",
           "register_source", "make_source", "MonitorError"]


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


SOURCES: dict[str, Callable[..., "Source"]] = {}


def register_source(name: str) -> Callable:
    def deco(cls):
        SOURCES[name] = cls
        return cls
    return deco


def make_source(name: str, **kw) -> "Source":
    if name not in SOURCES:
        raise MonitorError(f"unknown monitor source {name!r}; known: {', '.join(sorted(SOURCES))}")
    return SOURCES[name](**kw)


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


# ----------------------------------------------------------------------------- traces
_FIELDS = {f.name for f in fields(ResourceSnapshot)}
_REQUIRED = {"time", "other_cpu_cores"}


@register_source("trace")
class TraceSource(Source):
    """Replays a trace: a list of readings ordered by ``time`` (seconds from
    the start). Each reading holds ``time`` and ``other_cpu_cores`` at least;
    missing fields take defaults (no sensor: None). ``sample()`` returns the
    reading in force now (step function) on the trace's clock, which starts
    at the first sample or is driven explicitly with ``at(t)``; ``loop=True``
    repeats the trace every ``period`` seconds."""

    def __init__(self, readings: Iterable[Mapping] | None = None, path: str | None = None, cpu_count: int = 2,
                 loop: bool = False, clock: Callable[[], float] = time.monotonic):
        if (readings is None) == (path is None):
            raise MonitorError("a trace needs readings or a path, not both")
        rows = list(readings) if readings is not None else self._load(path)
        self.readings = [self._reading(i, r, cpu_count) for i, r in enumerate(rows)]
        if not self.readings:
            raise MonitorError("trace has no readings")
        times = [r.time for r in self.readings]
        if times != sorted(times):
            raise MonitorError("trace readings must be ordered by time")
        self.loop = loop
        self._clock = clock
        self._t0: float | None = None

    @property
    def duration(self) -> float:
        return self.readings[-1].time

    @staticmethod
    def _load(path: str) -> list[dict]:
        try:
            if path.endswith(".json"):
                with open(path) as f:
                    data = json.load(f)
                if not isinstance(data, list):
                    raise MonitorError(f"{path}: a JSON trace is a list of readings")
                return data
            with open(path, newline="") as f:
                return [{k: v for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(f)]
        except OSError as e:
            raise MonitorError(f"{path}: cannot read trace: {e.strerror or e}") from None
        except ValueError as e:
            raise MonitorError(f"{path}: invalid trace: {e}") from None

    @staticmethod
    def _reading(i: int, r: Mapping, cpu_count: int) -> ResourceSnapshot:
        if not isinstance(r, Mapping):
            raise MonitorError(f"trace reading {i} is not an object")
        unknown = set(r) - _FIELDS
        if unknown:
            raise MonitorError(f"trace reading {i}: unknown field {sorted(unknown)[0]!r}")
        missing = _REQUIRED - set(r)
        if missing:
            raise MonitorError(f"trace reading {i}: missing field {sorted(missing)[0]!r}")

        def num(k: str, default=None):
            v = r.get(k, default)
            if v is None:
                return None
            try:
                v = float(v)
            except (TypeError, ValueError):
                raise MonitorError(f"trace reading {i}: {k}={v!r} is not a number") from None
            if not math.isfinite(v) or v < 0:
                raise MonitorError(f"trace reading {i}: {k}={v!r} must be a finite non-negative number")
            return v

        plugged = r.get("plugged")
        if isinstance(plugged, str):
            plugged = {"true": True, "1": True, "false": False, "0": False}.get(plugged.lower())
        other = num("other_cpu_cores")
        mine = num("self_cpu_cores", 0.0)
        ncpu = int(num("cpu_count", cpu_count))
        mem = num("mem_available_bytes")
        return ResourceSnapshot(num("time"), ncpu, num("system_cpu_cores", other + mine), other, mine,
                                None if mem is None else int(mem), num("battery_percent"),
                                plugged if isinstance(plugged, bool) else None, num("temperature_c"),
                                num("power_w"))

    @property
    def period(self) -> float:
        """Length of one pass when looping: the last reading holds as long as
        the gap before it (1 s for a single reading)."""
        times = [r.time for r in self.readings]
        gap = times[-1] - times[-2] if len(times) > 1 else 1.0
        return times[-1] + (gap if gap > 0 else 1.0)

    def at(self, t: float) -> ResourceSnapshot:
        if self.loop:
            t = t % self.period
        current = self.readings[0]
        for r in self.readings:
            if r.time > t:
                break
            current = r
        return current

    def sample(self) -> ResourceSnapshot:
        now = self._clock()
        if self._t0 is None:
            self._t0 = now
        return self.at(now - self._t0)


# ----------------------------------------------------------------------------- monitor
class ResourceMonitor:
    """Samples ``source`` every 1/``hz`` seconds on a daemon thread.

    ``latest()`` is the newest snapshot (taken once at start, so never None
    after ``start()``); ``history()`` up to ``keep`` of the newest ones;
    ``overhead_pct()`` the CPU the sampling thread itself used, as a
    percentage of one core over its running time."""

    def __init__(self, source: Source | str = "psutil", hz: float = 10.0, keep: int = 600):
        if not (0.1 <= hz <= 1000):
            raise MonitorError(f"monitor rate {hz} Hz must be in [0.1, 1000]")
        self.source = make_source(source) if isinstance(source, str) else source
        self.period = 1.0 / hz
        self._latest: ResourceSnapshot | None = None
        self._history: deque = deque(maxlen=max(1, keep))
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._cpu = 0.0
        self._wall0 = 0.0
        self._wall = 0.0
        self.errors = 0

    def _take(self) -> None:
        snap = self.source.sample()
        with self._lock:
            self._latest = snap
            self._history.append(snap)

    def _run(self) -> None:
        c0 = time.thread_time()
        nxt = time.monotonic()
        while not self._stop.is_set():
            try:
                self._take()
            except Exception:   # a sensor failing mid-run must not stop monitoring
                self.errors += 1
            self._cpu = time.thread_time() - c0
            self._wall = time.monotonic() - self._wall0
            nxt += self.period
            self._stop.wait(max(0.0, nxt - time.monotonic()))

    def start(self) -> "ResourceMonitor":
        if self._thread is not None:
            return self
        self._take()
        self._wall0 = time.monotonic()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="adaptive-rt-monitor", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._thread = None

    def __enter__(self) -> "ResourceMonitor":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def latest(self) -> ResourceSnapshot | None:
        with self._lock:
            return self._latest

    def history(self) -> list[ResourceSnapshot]:
        with self._lock:
            return list(self._history)

    def overhead_pct(self) -> float:
        return 100.0 * self._cpu / self._wall if self._wall > 0 else 0.0

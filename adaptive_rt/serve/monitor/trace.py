"""Trace replay: a scripted or recorded resource trace (JSON or CSV) as a
source, on its own clock or driven explicitly with ``at(t)``."""
from __future__ import annotations

import csv
import io
import math
import time
from dataclasses import fields
from typing import Callable, Iterable, Mapping

from ...io.jsonio import read_bounded, read_json_file
from .sources import MonitorError, ResourceSnapshot, Source, register_source

__all__ = ["TraceSource", "MAX_TRACE_BYTES"]

MAX_TRACE_BYTES = 64 << 20


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
        if path.endswith(".json"):
            data = read_json_file(path, "trace", MonitorError, MAX_TRACE_BYTES)
            if not isinstance(data, list):
                raise MonitorError(f"{path}: a JSON trace is a list of readings")
            return data
        try:
            text = read_bounded(path, MAX_TRACE_BYTES).decode("utf-8")
            rows = []
            for i, row in enumerate(csv.DictReader(io.StringIO(text, newline=""))):
                if None in row:
                    raise MonitorError(f"{path}: row {i + 1} has more fields than the header")
                rows.append({k: v for k, v in row.items() if v not in ("", None)})
            return rows
        except OSError as e:
            raise MonitorError(f"{path}: cannot read trace: {e.strerror or e}") from None
        except (ValueError, csv.Error) as e:   # UnicodeDecodeError is a ValueError
            raise MonitorError(f"{path}: invalid trace: {e}") from None

    @staticmethod
    def _reading(i: int, r: Mapping, cpu_count: int) -> ResourceSnapshot:
        if not isinstance(r, Mapping):
            raise MonitorError(f"trace reading {i} is not an object")
        unknown = set(r) - _FIELDS
        if unknown:
            raise MonitorError(f"trace reading {i}: unknown field {sorted(map(str, unknown))[0]!r}")
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

"""Prometheus text exposition of the daemon's counters — no dependency.

Counters and histograms are plain integers under one lock; ``render()``
writes the text format (version 0.0.4) with Prometheus' naming: base units
(seconds, bytes, ratios in 0..1), ``_total`` counters, a histogram per entry
(``adaptive_rt_inference_duration_seconds``)."""
from __future__ import annotations

import math
import threading

import numpy as np

__all__ = ["Metrics", "LATENCY_BUCKETS_MS", "CONTENT_TYPE"]

LATENCY_BUCKETS_MS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 1000)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_EDGES = np.array(LATENCY_BUCKETS_MS, np.float64)


def _label(v: str) -> str:
    return str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Metrics:
    def __init__(self):
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str], int] = {}     # (transport, outcome) -> count
        self.errors: dict[str, int] = {}                   # kind -> count
        self.hist: dict[str, list[int]] = {}               # entry -> bucket counts (+Inf last)
        self.hist_sum: dict[str, float] = {}
        self.reloads = 0
        self.reload_failures = 0

    def request(self, transport: str, outcome: str, n: int = 1) -> None:
        with self._lock:
            k = (transport, outcome)
            self.requests[k] = self.requests.get(k, 0) + n

    def error(self, kind: str) -> None:
        with self._lock:
            self.errors[kind] = self.errors.get(kind, 0) + 1

    def latency(self, entry: str, ms: float) -> None:
        with self._lock:
            h = self.hist.setdefault(entry, [0] * (len(LATENCY_BUCKETS_MS) + 1))
            for i, b in enumerate(LATENCY_BUCKETS_MS):
                if ms <= b:
                    h[i] += 1
                    break
            else:
                h[-1] += 1
            self.hist_sum[entry] = self.hist_sum.get(entry, 0.0) + ms

    def latency_many(self, entry: str, ms) -> None:
        """:meth:`latency` for many requests of one entry at once."""
        counts = np.bincount(np.searchsorted(_EDGES, np.asarray(ms, np.float64), side="left"),
                             minlength=len(LATENCY_BUCKETS_MS) + 1)
        with self._lock:
            h = self.hist.setdefault(entry, [0] * (len(LATENCY_BUCKETS_MS) + 1))
            for i, c in enumerate(counts.tolist()):
                h[i] += c
            self.hist_sum[entry] = self.hist_sum.get(entry, 0.0) + float(np.sum(ms, dtype=np.float64))

    def reload(self, ok: bool) -> None:
        with self._lock:
            if ok:
                self.reloads += 1
            else:
                self.reload_failures += 1

    def render(self, gauges: dict[str, float | None], active_entry: str | None, switches: int,
               inflight: int, queued: int) -> str:
        out = []

        def metric(name: str, kind: str, help_: str, rows: list[tuple[str, float]]):
            out.append(f"# HELP {name} {help_}")
            out.append(f"# TYPE {name} {kind}")
            for labels, v in rows:
                out.append(f"{name}{labels} {v:.17g}" if isinstance(v, float) else f"{name}{labels} {v}")

        with self._lock:
            metric("adaptive_rt_requests_total", "counter", "Requests by transport and outcome.",
                   [(f'{{transport="{_label(t)}",outcome="{_label(o)}"}}', n)
                    for (t, o), n in sorted(self.requests.items())])
            metric("adaptive_rt_errors_total", "counter", "Refused or failed requests by kind.",
                   [(f'{{kind="{_label(k)}"}}', n) for k, n in sorted(self.errors.items())])
            rows = []
            for entry, h in sorted(self.hist.items()):
                acc = 0
                for b, n in zip(LATENCY_BUCKETS_MS, h):
                    acc += n
                    rows.append((f'_bucket{{entry="{_label(entry)}",le="{b / 1e3:g}"}}', acc))
                acc += h[-1]
                rows.append((f'_bucket{{entry="{_label(entry)}",le="+Inf"}}', acc))
                rows.append((f'_sum{{entry="{_label(entry)}"}}', float(self.hist_sum[entry]) / 1e3))
                rows.append((f'_count{{entry="{_label(entry)}"}}', acc))
            name = "adaptive_rt_inference_duration_seconds"
            out.append(f"# HELP {name} Inference time per request, by the entry that answered.")
            out.append(f"# TYPE {name} histogram")
            out.extend(f"{name}{lab} {v:.17g}" if isinstance(v, float) else f"{name}{lab} {v}" for lab, v in rows)
            metric("adaptive_rt_reloads_total", "counter", "Pool reloads that took effect.", [("", self.reloads)])
            metric("adaptive_rt_reload_failures_total", "counter", "Pool reloads refused (old pool kept).",
                   [("", self.reload_failures)])
        metric("adaptive_rt_switches_total", "counter", "Subnet switches of the current runtime.", [("", switches)])
        if active_entry is not None:
            metric("adaptive_rt_active_entry", "gauge", "The pool entry now serving (value 1).",
                   [(f'{{entry="{_label(active_entry)}"}}', 1)])
        metric("adaptive_rt_inflight_requests", "gauge", "Inferences running now.", [("", inflight)])
        metric("adaptive_rt_queued_requests", "gauge", "Inferences waiting for a slot.", [("", queued)])
        for name, v in sorted(gauges.items()):
            if v is not None and math.isfinite(v):
                metric(f"adaptive_rt_{name}", "gauge", f"Latest resource reading: {name.replace('_', ' ')}.",
                       [("", float(v))])
        return "\n".join(out) + "\n"

"""``adaptive-rt demo`` and the contention schedule ``bench_adapt`` shares.

The shipped MNIST pool serves the shipped test digits through a Runtime, a
request of ``batch`` digits every ``interval`` seconds, while a real CPU-hog
child process (a busy loop in another Python) takes a core for the middle
phase. Each second one line: active entry, p95 vs SLO, accuracy so far,
switches, the other processes' CPU. Then a summary and a PNG timeline.
Runtime only: no torch, no matplotlib needed (``bench/plot.py`` draws the
timeline, axes and labels included, when matplotlib is absent).
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from ..assets import SHIPPED_POOL, demo_images, shipped_path
from ..io.poolfile import PoolFile, load_pool
from ..serve.runtime import Runtime

#: The dataset of the shipped test digits (and of the shipped pool)
DEMO_DATASET = "mnist5k"

__all__ = ["Hog", "Phase", "default_schedule", "stream", "summarize", "write_timeline_png", "run_demo"]

_HOG = "import time\nwhile True:\n    pass\n"


class Hog:
    """``n`` busy-loop child processes (each takes one core) while active."""

    def __init__(self, n: int):
        self.n = n
        self._procs: list[subprocess.Popen] = []

    def start(self) -> None:
        if not self._procs:
            self._procs = [subprocess.Popen([sys.executable, "-c", _HOG], stdin=subprocess.DEVNULL,
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                           for _ in range(self.n)]

    def stop(self) -> None:
        for p in self._procs:
            p.kill()
        for p in self._procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:  # pragma: no cover
                pass
        self._procs = []

    def __enter__(self) -> "Hog":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


@dataclass(frozen=True)
class Phase:
    name: str
    start_s: float
    end_s: float
    hogs: int


def default_schedule(seconds: float, hogs: int = 1, calm_frac: float = 0.3) -> list[Phase]:
    """Calm for the first ``calm_frac`` (default 30%), ``hogs`` busy processes
    in the middle, calm again for the last ``calm_frac``."""
    a, b = calm_frac * seconds, (1 - calm_frac) * seconds
    return [Phase("calm", 0.0, a, 0), Phase("contended", a, b, hogs), Phase("calm", b, seconds, 0)]


@dataclass
class Record:
    t: float          # seconds since the stream started
    ms: float
    entry: str
    correct: int
    n: int
    phase: int


def stream(rt, x: np.ndarray, y: np.ndarray, schedule: Sequence[Phase], batch: int, interval_s: float,
           every_second: Callable[[float, list[Record]], None] | None = None) -> list[Record]:
    """Stream ``x`` through ``rt`` in requests of ``batch`` images, one every
    ``interval_s`` (or back to back when a request takes longer), following
    ``schedule``'s hog phases. Returns one Record per request."""
    end = schedule[-1].end_s
    records: list[Record] = []
    hog = Hog(0)
    phase_i = -1
    i = 0
    t0 = time.monotonic()
    next_req = t0
    next_report = 1.0
    try:
        while True:
            now = time.monotonic() - t0
            if now >= end:
                break
            p = next(k for k, ph in enumerate(schedule) if ph.start_s <= now < ph.end_s or k == len(schedule) - 1)
            if p != phase_i:
                hog.stop()
                hog = Hog(schedule[p].hogs)
                hog.start()
                phase_i = p
            idx = np.arange(i, i + batch) % len(x)
            i += batch
            xb = x[idx]
            s = time.perf_counter()
            logits, entry = rt.infer(xb)
            ms = (time.perf_counter() - s) * 1e3
            correct = int((logits.argmax(1) == y[idx]).sum())
            records.append(Record(now, ms, entry, correct, batch, p))
            if every_second is not None and now >= next_report:
                every_second(now, records)
                next_report += 1.0
            next_req += interval_s
            delay = next_req - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                next_req = time.monotonic()
    finally:
        hog.stop()
    return records


def summarize(records: Sequence[Record], slo_ms: float, schedule: Sequence[Phase], pool=None,
              timeline: Sequence[dict] = ()) -> dict:
    def block(rs: Sequence[Record]) -> dict:
        if not rs:
            return {"requests": 0}
        ms = np.array([r.ms for r in rs])
        counts: dict[str, int] = {}
        for r in rs:
            counts[r.entry] = counts.get(r.entry, 0) + 1
        out = {"requests": len(rs), "images": int(sum(r.n for r in rs)),
               "slo_violation_rate": float((ms > slo_ms).mean()),
               "accuracy": float(sum(r.correct for r in rs) / sum(r.n for r in rs)),
               "latency_ms": {"p50": float(np.percentile(ms, 50)), "p95": float(np.percentile(ms, 95)),
                              "p99": float(np.percentile(ms, 99))},
               "entries": counts}
        if pool is not None:
            mf = {e.id: e.mflops for e in pool.entries}
            out["mean_mflops"] = float(np.mean([mf[r.entry] for r in rs]))
        return out
    switches = sum(1 for a, b in zip(records, records[1:]) if a.entry != b.entry)
    def other_cpu(ph: Phase) -> float | None:
        v = [r["other_cpu_cores"] for r in timeline
             if ph.start_s <= r["t"] < ph.end_s and r.get("other_cpu_cores") is not None]
        return float(np.mean(v)) if v else None
    return {"slo_ms": slo_ms, **block(records), "switches_seen": switches,
            "phases": [{"name": ph.name, "start_s": ph.start_s, "end_s": ph.end_s, "hogs": ph.hogs,
                        "other_cpu_cores_mean": other_cpu(ph), **block([r for r in records if r.phase == k])}
                       for k, ph in enumerate(schedule)]}


# ----------------------------------------------------------------------------- timeline PNG
def write_timeline_png(path: str, records: Sequence[Record], timeline: Sequence[dict], slo_ms: float,
                       schedule: Sequence[Phase], entry_order: Sequence[str], title: str = "") -> str:
    """Latency per request (with the SLO), active entry and the other
    processes' CPU over time. Returns "matplotlib" or "builtin"."""
    t_end = schedule[-1].end_s
    shade = [(ph.start_s, ph.end_s) for ph in schedule if ph.hogs]
    rank = {e: i for i, e in enumerate(entry_order)}
    rt = [r.t for r in records]
    lat = [r.ms for r in records]
    er = [rank[r.entry] for r in records]
    tt = [row["t"] for row in timeline if row.get("other_cpu_cores") is not None]
    oc = [row["other_cpu_cores"] for row in timeline if row.get("other_cpu_cores") is not None]
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        from .plot import Panel, Series, plot_panels
        slo_line = Series([0.0, t_end], [slo_ms, slo_ms], (0, 0, 0), "line", f"SLO {slo_ms:.2f} ms")
        plot_panels(path, [
            Panel("latency (ms)", (0.0, max(3 * slo_ms, 1e-3)),
                  [Series(rt, lat, (200, 30, 30), "points", "request latency"), slo_line]),
            Panel("active entry", (0.0, max(1.0, len(entry_order) - 1.0)),
                  [Series(rt, er, (30, 90, 200), "step")], yticks=[(float(i), e) for i, e in enumerate(entry_order)]),
            Panel("other CPU (cores)", (0.0, max(2.0, max(oc, default=0.0))), [Series(tt, oc, (30, 150, 60), "line")])],
            t_end, xlabel="time (s); shaded: CPU-hog child running", title=title, shade=shade)
        return "builtin"
    fig, ax = plt.subplots(3, 1, figsize=(10, 7), sharex=True)
    for a in ax:
        for s, e in shade:
            a.axvspan(s, e, color="#e0e0f5", lw=0)
    ax[0].plot(rt, lat, ".", ms=2, color="#c03030", label="request latency")
    ax[0].axhline(slo_ms, color="k", lw=1, ls="--", label=f"SLO {slo_ms:.2f} ms")
    ax[0].set_ylabel("latency (ms)")
    ax[0].set_ylim(0, max(3 * slo_ms, 1e-3))
    ax[0].legend(loc="upper right", fontsize=8)
    ax[1].step(rt, er, where="post", color="#3060c0")
    ax[1].set_yticks(range(len(entry_order)))
    ax[1].set_yticklabels(entry_order)
    ax[1].set_ylabel("active entry")
    ax[2].plot(tt, oc, color="#30a050")
    ax[2].set_ylabel("other processes\nCPU (cores)")
    ax[2].set_xlabel("time (s); shaded: CPU-hog child running")
    if title:
        ax[0].set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return "matplotlib"


# ----------------------------------------------------------------------------- the demo
def auto_slo_ms(rt, factor: float = 1.3) -> float:
    """``factor`` x the most expensive entry's calibrated p95 at its fastest thread count."""
    p = max(rt.profiles, key=lambda p: (p.mflops, p.id))
    return factor * min(p.latency_ms.values())


def run_demo(seconds: float = 30.0, hogs: int = 1, batch: int = 16, interval_ms: float = 0.0,
             slo_ms: float | None = None, pool: str | PoolFile | None = None, png: str | None = "adaptive-rt-demo.png",
             json_path: str | None = None, out: Callable[[str], None] = print) -> dict:
    if not isinstance(pool, PoolFile):
        pool = load_pool(pool or shipped_path(SHIPPED_POOL))
    x, y = demo_images()
    shape = pool.input_shape
    if tuple(x.shape[1:]) != shape:
        raise ValueError(f"the demo images are {tuple(x.shape[1:])} but the pool takes {shape}")
    trained_on = {e.dataset for e in pool.entries} - {None}
    if trained_on != {DEMO_DATASET}:
        out(f"note: the demo serves the shipped {DEMO_DATASET} test digits, but this pool's entries were "
            f"{'measured on ' + ', '.join(sorted(trained_on)) if trained_on else 'not measured on any dataset'}: "
            "the accuracy shown is of a model on data it was not made for")
    with Runtime.open(pool, batch=batch) as rt:
        slo = slo_ms if slo_ms is not None else auto_slo_ms(rt)
        rt.set_budget(slo_ms=slo)
        entries = [e.id for e in sorted(rt.pool.entries, key=lambda e: e.mflops)]
        acc = {e.id: e.accuracy for e in rt.pool.entries}
        out(f"pool {pool.path}: {len(entries)} entries, {rt.pool.entries[0].mflops:.2f}-"
            f"{max(e.mflops for e in rt.pool.entries):.2f} MFLOPs; {len(x)} test digits, {batch} per request "
            f"every {interval_ms:g} ms")
        out(f"SLO p95 {slo:.2f} ms{'' if slo_ms is not None else ' (auto: 1.3 x the largest entry, calibrated)'}; "
            f"a CPU-hog child takes {hogs} core(s) from {0.3 * seconds:.0f} s to {0.7 * seconds:.0f} s")
        schedule = default_schedule(seconds, hogs)
        last = [0]

        def report(now: float, recs: list[Record]) -> None:
            window = [r for r in recs[last[0]:]]
            last[0] = len(recs)
            p95 = float(np.percentile([r.ms for r in window], 95)) if window else float("nan")
            a = sum(r.correct for r in recs) / max(1, sum(r.n for r in recs))
            snap = rt.monitor.latest()
            st = rt.stats()
            out(f"{now:5.1f}s  {schedule[recs[-1].phase].name:9s}  entry {rt.active} t{rt.threads}"
                f" ({acc.get(rt.active) and 100 * acc[rt.active]:.1f}%)  p95 {p95:6.2f} ms / SLO {slo:.2f}"
                f"{' !' if p95 > slo else '  '}  accuracy {100 * a:5.1f}%  switches {st['switches']:3d}"
                f"  other CPU {snap.other_cpu_cores:4.2f} cores")

        records = stream(rt, x, y, schedule, batch, interval_ms / 1e3, report)
        stats = rt.stats()
        timeline = rt.timeline()
        summary = summarize(records, slo, schedule, rt.pool, timeline)
        summary.update(switches=stats["switches"], monitor_cpu_overhead_pct=stats["monitor_cpu_overhead_pct"],
                       policy=stats["policy"], batch=batch, interval_ms=interval_ms, pool=pool.path)
    out("")
    out(f"served {summary['requests']} requests ({summary['images']} digits): accuracy "
        f"{100 * summary['accuracy']:.2f}%, p95 {summary['latency_ms']['p95']:.2f} ms, SLO violations "
        f"{100 * summary['slo_violation_rate']:.1f}%, {summary['switches']} switches, monitor CPU "
        f"{summary['monitor_cpu_overhead_pct']:.2f}% of a core")
    for ph in summary["phases"]:
        if ph["requests"]:
            used = ", ".join(f"{e} {100 * n / ph['requests']:.0f}%" for e, n in sorted(ph["entries"].items()))
            out(f"  {ph['name']:9s} {ph['start_s']:5.1f}-{ph['end_s']:5.1f} s  hogs {ph['hogs']}  "
                f"violations {100 * ph['slo_violation_rate']:5.1f}%  accuracy {100 * ph['accuracy']:.2f}%  "
                f"mean {ph['mean_mflops']:.2f} MFLOPs  entries: {used}")
    if png:
        how = write_timeline_png(png, records, timeline, slo, schedule, entries,
                                 f"adaptive-rt demo: {len(entries)}-entry pool, SLO {slo:.2f} ms")
        out(f"timeline: {png}" + ("" if how == "matplotlib" else " (built-in plot writer; matplotlib draws a finer one)"))
        summary["png"] = png
    if json_path:
        with open(json_path, "w") as f:
            json.dump(summary, f, indent=1, default=lambda o: None if isinstance(o, float) and math.isnan(o) else o)
    return summary

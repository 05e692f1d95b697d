"""adaptive-rt demo and adaptive-rt bench."""
from __future__ import annotations

import argparse
import os

from .common import UsageError, arguments, command, open_pool, pool_argument


def _demo_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seconds", type=float, default=30.0, help="length of the run (default 30)")
    p.add_argument("--hogs", type=int, default=1, help="CPU-hog child processes in the middle phase (default 1)")
    p.add_argument("--batch", type=int, default=16, help="digits per request (default 16)")
    p.add_argument("--interval-ms", type=float, default=0.0,
                   help="time between request starts (default 0: back to back, as fast as served)")
    p.add_argument("--slo-ms", type=float, default=None,
                   help="p95 latency target per request (default: 1.3 x the largest entry's calibrated p95)")
    pool_argument(p, required=False, help="pool file or shipped pool's name (default: the shipped MNIST pool)")
    p.add_argument("--png", default="adaptive-rt-demo.png", help="timeline plot to write ('' for none)")
    p.add_argument("--json", default=None, help="write the summary as JSON here")


@command("demo", "serve the shipped pool under a changing CPU load and show it adapt")
@arguments(_demo_args)
def cmd_demo(a: argparse.Namespace) -> int:
    from ..bench.demo import run_demo
    if not (1.0 <= a.seconds <= 3600):
        raise UsageError("--seconds must be in 1..3600")
    if not (0 <= a.hogs <= 64):
        raise UsageError("--hogs must be in 0..64")
    if not (1 <= a.batch <= 4096):
        raise UsageError("--batch must be in 1..4096")
    if not (0 <= a.interval_ms <= 10_000):
        raise UsageError("--interval-ms must be in 0..10000")
    if a.slo_ms is not None and not (a.slo_ms > 0):
        raise UsageError("--slo-ms must be positive")
    pool = open_pool(a.pool) if a.pool is not None else None   # a clear error for a bad file
    try:
        run_demo(a.seconds, a.hogs, a.batch, a.interval_ms, a.slo_ms, pool, a.png or None, a.json,
                 out=lambda line: print(line, flush=True))
    except (OSError, ValueError) as e:
        raise UsageError(str(e)) from None
    return 0


def _bench_args(p: argparse.ArgumentParser) -> None:
    from ..bench.report import BENCHES
    pool_argument(p, required=False, help="pool file (default: each benchmark's own test pools / the shipped pool)")
    p.add_argument("--out", default="adaptive-rt-bench", help="folder for the JSON results, logs, report.md and plots")
    p.add_argument("--quick", action="store_true", help="short runs on small pools (about 2 minutes on an idle 2-core machine; indicative figures)")
    p.add_argument("--only", default=None, help=f"comma-separated subset of: {', '.join(BENCHES)}")


@command("bench", "run the benchmarks that apply on this device and write a report (tables and plots)")
@arguments(_bench_args)
def cmd_bench(a: argparse.Namespace) -> int:
    from ..bench.report import BENCHES, run_benches, write_report
    only = [s.strip() for s in a.only.split(",")] if a.only else None
    if only and (bad := [s for s in only if s not in BENCHES]):
        raise UsageError(f"--only: unknown benchmark {bad[0]!r}; choose from {', '.join(BENCHES)}")
    if a.pool is not None:
        open_pool(a.pool)
    try:
        os.makedirs(a.out, exist_ok=True)
    except OSError as e:
        raise UsageError(f"cannot write to --out {a.out}: {e.strerror or e}") from None
    status = run_benches(a.out, a.pool, a.quick, only, say=lambda m: print(m, flush=True))
    path = write_report(a.out, status, a.quick)
    print(f"wrote {path}")
    return 0 if all(st == "ok" or st.startswith("skipped") for st in status.values()) else 1

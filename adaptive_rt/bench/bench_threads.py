"""Native engine alone (no other runtime in the process): latency per entry
at 1 and 2 threads, and (``batch16``) 16 images per request on the shipped
pool's largest entry, back to back and paced every 5 ms. Run it once against the default build and once against
an OpenMP build (ADAPTIVE_RT_OPENMP=1 pip install -e .) to compare the
engine's own thread pool with OpenMP on this device.

    python -m adaptive_rt.bench.bench_threads --json PATH [--pool P] [--quick]
"""
from __future__ import annotations

import sys
import time

import numpy as np

from adaptive_rt.engine import BUILT_WITH_OPENMP, Engine

from .common import parse_args, OtherCPU, machine, pct, pools_for, write_json


def batch16(quick: bool) -> list[dict]:
    """The shipped pool's largest entry on 16 digits per request (split by
    image across threads), back to back and paced every 5 ms (the process
    idle between requests, as an app serving a stream is)."""
    from adaptive_rt.assets import SHIPPED_POOL, shipped_path
    eng = Engine.open(shipped_path(SHIPPED_POOL), max_threads=2)
    e = max(eng.pool.entries, key=lambda e: e.mflops)
    p = eng.plan(e.id)
    x = np.random.default_rng(0).random((16,) + p.input_shape, dtype=np.float32)
    out = np.empty((16, p.num_classes), np.float32)
    rows = []
    for pace_ms in (0.0, 5.0):
        for th in (1, 2):
            for _ in range(5):
                eng.run(p, x, threads=th, out=out)
            ts = []
            for _ in range(60 if quick else 400):
                t = time.perf_counter()
                eng.run(p, x, threads=th, out=out)
                ts.append((time.perf_counter() - t) * 1e3)
                if pace_ms:
                    time.sleep(pace_ms / 1e3)
            rows.append({"entry": e.id, "batch": 16, "threads": th, "paced_ms": pace_ms,
                         "native_ms_p50": pct(ts, 50), "native_ms_p95": pct(ts, 95)})
            print(f"shipped {e.id} x16 t{th} paced {pace_ms:g} ms: p50 {pct(ts, 50):.3f} p95 {pct(ts, 95):.3f} ms",
                  file=sys.stderr)
    return rows


def main(argv: list[str] | None = None) -> int:
    a = parse_args(__doc__, argv)
    openmp = BUILT_WITH_OPENMP
    other = OtherCPU().start()
    rows = []
    with pools_for(a) as pools:
        for name, path in pools.items():
            eng = Engine.open(path, max_threads=2)
            for e in eng.pool.entries:
                p = eng.plan(e.id)
                x = np.random.default_rng(0).random((1,) + p.input_shape, dtype=np.float32)
                out = np.empty((1, p.num_classes), np.float32)
                for th in (1, 2):
                    for _ in range(5):
                        eng.run(p, x, threads=th, out=out)
                    ts = []
                    t_end = time.perf_counter() + (0.3 if a.quick else 2.0)
                    while time.perf_counter() < t_end or len(ts) < 10:
                        t = time.perf_counter()
                        eng.run(p, x, threads=th, out=out)
                        ts.append((time.perf_counter() - t) * 1e3)
                    rows.append({"pool": name, "entry": e.id, "mflops": e.mflops, "threads": th,
                                 "native_ms_p50": pct(ts, 50), "native_ms_p99": pct(ts, 99)})
                    print(f"{name} {e.id} t{th}: {pct(ts, 50):.3f} ms", file=sys.stderr)
    batch = batch16(a.quick)
    write_json(a.json, {"entries": rows, "batch16": batch, "openmp_build": openmp,
                        "other_processes_cpu_cores": other.stop(), "machine": machine()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

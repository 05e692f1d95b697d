"""Daemon throughput and latency against in-process calls.

The same pool entry (pinned, 1 thread per inference, one image per request)
served four ways — ``Runtime.infer`` in this process, and a real
``adaptive-rt serve`` process over its Unix socket with shared-memory
tensors (``unix``: ``Client``'s default), over the same socket with the
tensors in frames (``frames``: ``Client(shm=False)``) and over loopback HTTP
(.npy bodies) — with 1 and 4 client threads. Modes alternate in rounds; the
median round is reported. Two pools: the shipped MNIST pool's largest entry
(0.2 ms: the daemon's own overhead dominates) and the smallest entry of a
random mbv3-224 pool (~1.3 ms, 600 KB inputs; skipped with --quick). The
top-level keys are the first pool's; ``pools`` holds both.

    python -m adaptive_rt.bench.bench_daemon --json PATH [--pool P] [--quick]

Keys: <mode>_rps_c{1,4} for mode in inproc, unix, frames, http;
<mode>_ms_p50_c*, <mode>_ms_p99_c*; <mode>_daemon_cpu_us_c* and
<mode>_client_cpu_us_c* (CPU time per request of the daemon process and of
this process — the clients, and for inproc the inference itself);
unix_over_inproc_c4, frames_over_inproc_c4, http_over_inproc_c4.
"""
from __future__ import annotations

import http.client
import json
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import psutil

from adaptive_rt.assets import SHIPPED_POOL, shipped_path
from adaptive_rt.daemon import Client
from adaptive_rt.io.poolfile import write_pool
from adaptive_rt.serve.runtime import Runtime
from adaptive_rt.model.presets import get_space
from adaptive_rt.io.randompool import random_pool

from .common import OtherCPU, machine, parse_args, write_json


def _load(fn_factory, clients: int, seconds: float) -> tuple[float, list[float]]:
    """Requests/s and per-request ms of ``clients`` threads, each calling its
    own ``fn`` back to back for ``seconds``."""
    lat: list[list[float]] = [[] for _ in range(clients)]
    fns = [fn_factory() for _ in range(clients)]
    for f in fns:
        f()
    barrier = threading.Barrier(clients + 1)
    stop = time.perf_counter() + seconds + 0.05

    def work(k):
        f, out = fns[k], lat[k]
        barrier.wait()
        while True:
            t0 = time.perf_counter()
            if t0 >= stop:
                return
            f()
            out.append((time.perf_counter() - t0) * 1e3)

    ts = [threading.Thread(target=work, args=(k,)) for k in range(clients)]
    for t in ts:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in ts:
        t.join()
    wall = time.perf_counter() - t0
    allv = [v for x in lat for v in x]
    return len(allv) / wall, allv


def bench_pool(pool: str, pick, seconds: float, rounds: int) -> dict:
    with tempfile.TemporaryDirectory() as d:
        sock, log = os.path.join(d, "d.sock"), os.path.join(d, "log")
        f = open(log, "w")
        p = subprocess.Popen([sys.executable, "-m", "adaptive_rt", "serve", "--pool", pool, "--socket", sock,
                              "--http", "127.0.0.1:0", "--enable-admin", "--max-concurrent", "4"],
                             stdout=f, stderr=subprocess.STDOUT)
        try:
            t0 = time.monotonic()
            while "ready" not in open(log).read():
                if p.poll() is not None or time.monotonic() - t0 > 120:
                    raise RuntimeError(open(log).read())
                time.sleep(0.05)
            port = int(re.search(r'transport="http" host="127.0.0.1" port=(\d+)', open(log).read()).group(1))
            daemon = psutil.Process(p.pid)
            rt = Runtime.open(pool, max_threads=4)
            entry = pick(rt.pool.entries).id
            rt.pin(entry, threads=1)
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.request("POST", "/v1/pin", body=json.dumps({"entry": entry, "threads": 1}),
                      headers={"Content-Type": "application/json"})
            r = c.getresponse()
            r.read()
            c.close()
            if r.status != 200:
                raise RuntimeError(f"pin failed: {r.status}")
            x = np.random.default_rng(0).random(rt.input_shape, dtype=np.float32)

            def inproc():
                return lambda: rt.infer(x)

            def unix():
                cl = Client(unix=sock)
                return lambda: cl.infer(x)

            def frames():
                cl = Client(unix=sock, shm=False)
                return lambda: cl.infer(x)

            def http_():
                cl = Client(http=f"127.0.0.1:{port}")
                return lambda: cl.infer(x)

            modes = {"inproc": inproc, "unix": unix, "frames": frames, "http": http_}
            runs: dict = {}
            for rnd in range(rounds):
                for clients in (1, 4):
                    for name, fac in (modes.items() if rnd % 2 == 0 else list(modes.items())[::-1]):
                        d0, c0 = daemon.cpu_times(), resource.getrusage(resource.RUSAGE_SELF)
                        rps, lat = _load(fac, clients, seconds)
                        d1, c1 = daemon.cpu_times(), resource.getrusage(resource.RUSAGE_SELF)
                        n = max(1, len(lat))
                        cpu = ((d1.user + d1.system - d0.user - d0.system) / n * 1e6,
                               (c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime) / n * 1e6)
                        runs.setdefault((name, clients), []).append((rps, lat, cpu))
                        print(f"{os.path.basename(pool)} {entry} round {rnd + 1} {name:6s} c{clients}: {rps:8.0f} "
                              f"req/s  p50 {np.percentile(lat, 50):.3f} ms  p99 {np.percentile(lat, 99):.3f} ms",
                              file=sys.stderr)
            rt.close()
        finally:
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=30)
            f.close()
    out = {"pool": os.path.basename(pool), "entry": entry, "input_shape": list(x.shape)}
    for (name, clients), rs in runs.items():
        rps, lat, cpu = sorted(rs, key=lambda t: t[0])[len(rs) // 2]   # the median round
        out[f"{name}_daemon_cpu_us_c{clients}"], out[f"{name}_client_cpu_us_c{clients}"] = cpu
        out[f"{name}_rps_c{clients}"] = rps
        out[f"{name}_ms_p50_c{clients}"] = float(np.percentile(lat, 50))
        out[f"{name}_ms_p99_c{clients}"] = float(np.percentile(lat, 99))
    out["unix_over_inproc_c4"] = out["unix_rps_c4"] / out["inproc_rps_c4"]
    out["frames_over_inproc_c4"] = out["frames_rps_c4"] / out["inproc_rps_c4"]
    out["http_over_inproc_c4"] = out["http_rps_c4"] / out["inproc_rps_c4"]
    return out


def main(argv: list[str] | None = None) -> int:
    a = parse_args(__doc__, argv)
    seconds, rounds = (1.0, 1) if a.quick else (3.0, 3)
    other = OtherCPU().start()
    results = {}
    with tempfile.TemporaryDirectory() as d:
        if a.pool:
            pools = {"given": (a.pool, lambda es: max(es, key=lambda e: e.mflops))}
        else:
            big = os.path.join(d, "mbv3-224.safetensors")
            space = get_space("mbv3-224")
            entries, tensors = random_pool(space, 2, seed=0)
            write_pool(big, space, entries, tensors)
            pools = {"shipped": (shipped_path(SHIPPED_POOL), lambda es: max(es, key=lambda e: e.mflops)),
                     "mbv3-224": (big, lambda es: min(es, key=lambda e: e.mflops))}
            if a.quick:
                pools.pop("mbv3-224")
        for name, (path, pick) in pools.items():
            results[name] = bench_pool(path, pick, seconds, rounds)
    first = next(iter(results.values()))
    out = {**{k: v for k, v in first.items()}, "pools": results, "seconds": seconds, "rounds": rounds,
           "machine": machine(), "other_processes_cpu_cores_incl_daemon": other.stop()}
    write_json(a.json, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

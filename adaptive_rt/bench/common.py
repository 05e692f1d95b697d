"""Helpers shared by the benchmarks: test pools, timing, percentiles, and the
CPU other processes used while a benchmark ran (the machine is shared)."""
from __future__ import annotations

import json
import math
import os
import tempfile
import time
from contextlib import contextmanager
from typing import Callable, Iterator

import numpy as np

from adaptive_rt.io.poolfile import write_pool
from adaptive_rt.model.presets import get_space
from adaptive_rt.io.randompool import random_pool

# The default test pools when no --pool is given: the small preset and the
# 224x224 preset, random weights, entries spread over MFLOPs.
DEFAULT_POOLS = {"mbv3-tiny28": 6, "mbv3-224": 4}


def make_test_pools(folder: str, quick: bool) -> dict[str, str]:
    paths = {}
    for name, k in DEFAULT_POOLS.items():
        if quick:
            k = min(k, 3)
        path = os.path.join(folder, f"{name}-k{k}.safetensors")
        space = get_space(name)
        entries, tensors = random_pool(space, k, seed=0)
        write_pool(path, space, entries, tensors, {"adaptive_rt.note": "benchmark test pool, random weights"})
        paths[name] = path
    return paths


@contextmanager
def pools_for(args) -> Iterator[dict[str, str]]:
    """The pool given with --pool, or freshly written test pools."""
    if getattr(args, "pool", None):
        from adaptive_rt.assets import pool_path
        path = pool_path(args.pool)     # a shipped pool's name works too
        yield {os.path.basename(path): path}
        return
    with tempfile.TemporaryDirectory() as d:
        yield make_test_pools(d, args.quick)


def parse_args(doc: str, argv: list[str] | None, extra: Callable | None = None):
    """The benchmark contract's arguments: --json PATH [--pool P] [--quick]
    (and a benchmark's own, added by ``extra(parser)``)."""
    import argparse
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", required=True, help="where to write the results")
    ap.add_argument("--pool", help="pool file (default: random test pools of both presets)")
    ap.add_argument("--quick", action="store_true", help="finish in under a minute")
    if extra is not None:
        extra(ap)
    return ap.parse_args(argv)


def quantized_copy(path: str, folder: str, images: int = 8) -> str:
    """``path`` with an int8 entry per float32 entry (the existing ones if it
    has them), calibrated on random normal images (enough for timing: the
    weights of the test pools are random too)."""
    from adaptive_rt.io.poolfile import load_pool
    from adaptive_rt.quant.calibrate import quantize_pool
    pool = load_pool(path)
    if any(e.is_int8 for e in pool.entries):
        return path
    x = np.random.default_rng(0).standard_normal((images,) + pool.input_shape).astype(np.float32)
    out = os.path.join(folder, os.path.basename(path).replace(".safetensors", "") + "-int8.safetensors")
    quantize_pool(pool, x, out)
    return out


def quick_subset(data, n: int = 480):
    """The first ``n`` training images only: a --quick run checks the code paths
    in seconds (its figures are not measurements)."""
    from dataclasses import replace
    return replace(data, x_train=data.x_train[:n], y_train=data.y_train[:n])


def pct(xs, q: float) -> float:
    return float(np.percentile(np.asarray(xs, dtype=np.float64), q))


def geomean(xs) -> float | None:
    xs = [x for x in xs if x is not None and x > 0]
    return float(math.exp(sum(math.log(x) for x in xs) / len(xs))) if xs else None


def interleaved(fns: dict[str, Callable[[], object]], rounds: int, warmup: int = 3,
                budget_s: float | None = None, block: int = 10, settle_s: float = 0.0) -> dict[str, list[float]]:
    """Time the callables in alternating blocks of ``block`` calls, so that
    load changes on the shared machine hit all of them alike, while one
    runtime's idle spinning threads do not land on the other's every call.
    The first call of each block is a warm-up and is not kept. ``settle_s``:
    a pause before each block, so the previous runtime's worker threads have
    stopped spinning (ONNX Runtime's and XNNPACK's keep a core busy for
    milliseconds after a multi-threaded run: a 2-thread run started in that
    time measured up to 1.6x slower). Milliseconds per call."""
    for _ in range(warmup):
        for f in fns.values():
            f()
    out: dict[str, list[float]] = {k: [] for k in fns}
    t_end = None if budget_s is None else time.perf_counter() + budget_s
    for _ in range(max(1, rounds // block)):
        for k, f in fns.items():
            if settle_s:
                time.sleep(settle_s)
            f()
            for _ in range(block):
                t = time.perf_counter()
                f()
                out[k].append((time.perf_counter() - t) * 1e3)
        if t_end is not None and time.perf_counter() > t_end and len(out[k]) >= 10:
            break
    return out


class OtherCPU:
    """CPU (in cores) used by other processes between start() and stop()."""

    def start(self) -> "OtherCPU":
        import psutil
        self._proc = psutil.Process()
        self._t = time.monotonic()
        self._sys = self._busy()
        self._own = sum(self._proc.cpu_times()[:2])
        return self

    @staticmethod
    def _busy() -> float:
        import psutil
        t = psutil.cpu_times()
        return t.user + t.system + getattr(t, "nice", 0.0) + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0)

    def stop(self) -> float:
        dt = time.monotonic() - self._t
        own = sum(self._proc.cpu_times()[:2]) - self._own
        return max(0.0, (self._busy() - self._sys - own) / max(dt, 1e-9))


def machine() -> dict:
    import platform
    from ..serve.latency import device_info
    return {"machine": platform.machine(), "processor": platform.processor() or platform.machine(),
            "cpu": device_info()["cpu"], "cpus": os.cpu_count(), "python": platform.python_version()}


def write_json(path: str, data: dict) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(data, f, indent=2)

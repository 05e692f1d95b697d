"""Cost of switching subnet: the native engine swaps between prebuilt plans
(one shared copy of the weights): what ``Runtime`` does on a switch is timed
here — the entry's prepared runner looked up and one (runner, threads) tuple
replaced; ONNX Runtime and LiteRT must create a session / interpreter for the
entry they switch to. Also the native first-inference penalty after a switch
(cold caches for the new subnet's weights), against steady-state runs.

With --int8 the pools get an int8 entry after each float32 one (quantized
first where they have none) and every native switch goes between an int8
and a float32 plan.

    python -m adaptive_rt.bench.bench_switch --json PATH [--pool P] [--quick] [--int8]
"""
from __future__ import annotations

import sys
import tempfile
import time

import numpy as np

from adaptive_rt.io.poolfile import load_pool
from adaptive_rt.serve.backends import make_backend

from .common import parse_args, OtherCPU, machine, pct, pools_for, quantized_copy, write_json


def main(argv: list[str] | None = None) -> int:
    a = parse_args(__doc__, argv, lambda ap: ap.add_argument(
        "--int8", action="store_true", help="switch between the int8 and float32 entries of quantized pools"))
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731

    other = OtherCPU().start()
    switch_us, penalty_us, ort_ms, litert_ms, build_ms = [], [], [], [], []
    per_pool = {}
    with pools_for(a) as pools, tempfile.TemporaryDirectory() as qd:
        for name, path in pools.items():
            pool = load_pool(quantized_copy(path, qd) if a.int8 else path)
            native = make_backend("native", pool, 1)
            ids = [e.id for e in pool.entries]
            t0 = time.perf_counter()
            runners = {i: native.prepare(i) for i in ids}
            build_ms.append((time.perf_counter() - t0) * 1e3 / len(ids))
            # 1. the switch itself, as the Runtime does it (the entry's prepared
            #    runner looked up, one (runner, threads) tuple replaced), alternating over all entries
            n = 2000 if a.quick else 20000
            s_us = []
            active = (runners[ids[0]], 1)
            for i in range(n):
                target = ids[i % len(ids)]
                t = time.perf_counter_ns()
                active = (native.prepare(target), 1)
                s_us.append((time.perf_counter_ns() - t) / 1e3)
            switch_us += s_us
            # 2. first inference after a switch vs a steady-state run of the same plan
            xs = {i: np.random.default_rng(0).random((1,) + runners[i].plan.input_shape, dtype=np.float32)
                  for i in ids}
            pen = []
            for r in range(20 if a.quick else 100):
                for i in ids:
                    prev = ids[(ids.index(i) - 1) % len(ids)]
                    active = (native.prepare(prev), 1)
                    active[0](xs[prev], 1)
                    t = time.perf_counter()
                    active = (native.prepare(i), 1)
                    active[0](xs[i], 1)
                    first = time.perf_counter() - t
                    t = time.perf_counter()
                    active[0](xs[i], 1)
                    steady = time.perf_counter() - t
                    pen.append((first - steady) * 1e6)
            penalty_us += pen
            # 3. ONNX Runtime and LiteRT: a session / interpreter per entry they switch to
            created = {}
            float_ids = [e.id for e in pool.entries if not e.is_int8]   # the peers run float32 entries
            for kind in ("onnxruntime", "litert"):
                be = make_backend(kind, pool, 1)
                for i in float_ids:
                    be.model(i)      # exported beforehand: only the creation is timed
                c_ms = []
                for r in range(2 if a.quick else 5):
                    for i in float_ids:
                        t = time.perf_counter()
                        runner = be._build(i)
                        c_ms.append((time.perf_counter() - t) * 1e3)
                        del runner
                created[kind] = c_ms
            ort_ms += created["onnxruntime"]
            litert_ms += created["litert"]
            per_pool[name] = {"native_switch_us_p50": pct(s_us, 50), "native_switch_us_p99": pct(s_us, 99),
                              "native_first_run_penalty_us_p50": pct(pen, 50),
                              "ort_create_ms_p50": pct(created["onnxruntime"], 50),
                              "litert_create_ms_p50": pct(created["litert"], 50)}
            log(f"{name}: switch p50 {pct(s_us, 50):.2f} us p99 {pct(s_us, 99):.2f} us; first-run penalty "
                f"p50 {pct(pen, 50):.1f} us; ORT session create p50 {pct(created['onnxruntime'], 50):.2f} ms; "
                f"LiteRT interpreter p50 {pct(created['litert'], 50):.2f} ms")
    result = {
        "native_switch_us_p50": pct(switch_us, 50),
        "native_switch_us_p99": pct(switch_us, 99),
        "native_first_run_penalty_us_p50": pct(penalty_us, 50),
        "native_plan_build_ms_mean": float(np.mean(build_ms)),
        "ort_create_ms_p50": pct(ort_ms, 50),
        "litert_create_ms_p50": pct(litert_ms, 50),
        "by_pool": per_pool,
        "other_processes_cpu_cores": other.stop(),
        "machine": machine(),
    }
    write_json(a.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

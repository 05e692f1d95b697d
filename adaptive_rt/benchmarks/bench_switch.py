"""Cost of switching subnet: the native engine swaps between prebuilt plans
(one shared copy of the weights); ONNX Runtime must create a session for the
entry it switches to. Also the native first-inference penalty after a switch
(cold caches for the new subnet's weights), against steady-state runs.

    python -m benchmarks.bench_switch --json PATH [--pool P] [--quick]
"""
from __future__ import annotations

import sys
import time

import numpy as np

from adaptive_rt.engine import Engine, PlanSwitch
from adaptive_rt.backends import make_backend

from .common import parse_args, OtherCPU, machine, pct, pools_for, write_json


def main(argv: list[str] | None = None) -> int:
    a = parse_args(__doc__, argv)
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731

    other = OtherCPU().start()
    switch_us, penalty_us, ort_ms, litert_ms, build_ms = [], [], [], [], []
    per_pool = {}
    with pools_for(a) as pools:
        for name, path in pools.items():
            eng = Engine.open(path, max_threads=1)
            ids = [e.id for e in eng.pool.entries]
            t0 = time.perf_counter()
            plans = eng.plans()
            build_ms.append((time.perf_counter() - t0) * 1e3 / len(ids))
            sw = PlanSwitch(plans, ids[0])
            # 1. the switch itself, alternating over all entries
            n = 2000 if a.quick else 20000
            s_us = []
            for i in range(n):
                target = ids[i % len(ids)]
                t = time.perf_counter_ns()
                sw.switch(target)
                s_us.append((time.perf_counter_ns() - t) / 1e3)
            switch_us += s_us
            # 2. first inference after a switch vs a steady-state run of the same plan
            xs = {i: np.random.default_rng(0).random((1,) + plans[i].input_shape, dtype=np.float32) for i in ids}
            pen = []
            for r in range(20 if a.quick else 100):
                for i in ids:
                    prev = ids[(ids.index(i) - 1) % len(ids)]
                    eng.run(sw.switch(prev), xs[prev])
                    t = time.perf_counter()
                    eng.run(sw.switch(i), xs[i])
                    first = time.perf_counter() - t
                    t = time.perf_counter()
                    eng.run(sw.current(), xs[i])
                    steady = time.perf_counter() - t
                    pen.append((first - steady) * 1e6)
            penalty_us += pen
            # 3. ONNX Runtime and LiteRT: a session / interpreter per entry they switch to
            created = {}
            for kind in ("onnxruntime", "litert"):
                be = make_backend(kind, eng.pool, 1)
                for i in ids:
                    be.model(i)      # exported beforehand: only the creation is timed
                c_ms = []
                for r in range(2 if a.quick else 5):
                    for i in ids:
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

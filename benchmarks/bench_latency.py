"""Latency per pool entry: the native engine against ONNX Runtime on the same
subnet (exported by adaptive_rt.export.onnx), batch 1, 1 and 2 threads,
interleaved in one process. Medians, p99 and the native/ORT ratio.

    python -m benchmarks.bench_latency --json PATH [--pool P] [--quick]
"""
from __future__ import annotations

import sys

import numpy as np

from adaptive_rt.engine import Engine
from adaptive_rt.export.onnx import to_onnx

from .common import parse_args, OtherCPU, geomean, interleaved, machine, pct, pools_for, write_json


def ort_session(model, threads: int):
    import onnxruntime as ort
    o = ort.SessionOptions()
    o.intra_op_num_threads = threads
    o.inter_op_num_threads = 1
    o.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(model.SerializeToString(), o, providers=["CPUExecutionProvider"])


def bench_pool(name: str, path: str, quick: bool, log) -> list[dict]:
    eng = Engine.open(path, max_threads=2)
    rows = []
    for e in eng.pool.entries:
        plan = eng.plan(e.id)
        x = np.random.default_rng(0).random((1,) + plan.input_shape, dtype=np.float32)
        model = to_onnx(eng.pool.space, e.config, eng.pool.tensors, e.bn)
        for threads in (1, 2):
            sess = ort_session(model, threads)
            out = np.empty((1, plan.num_classes), np.float32)
            fns = {"native": lambda: eng.run(plan, x, threads=threads, out=out),
                   "ort": lambda: sess.run(None, {"input": x})}
            budget = 1.5 if quick else 6.0
            t = interleaved(fns, rounds=2000, warmup=5, budget_s=budget)
            row = {"pool": name, "entry": e.id, "config": e.config.id, "mflops": round(e.mflops, 3),
                   "threads": threads, "samples": len(t["native"])}
            for k, v in t.items():
                row[f"{k}_ms_p50"] = pct(v, 50)
                row[f"{k}_ms_p99"] = pct(v, 99)
            row["native_over_ort"] = row["native_ms_p50"] / row["ort_ms_p50"]
            rows.append(row)
            log(f"{name} {e.id:>4} {e.mflops:8.2f} MFLOPs t{threads}: native {row['native_ms_p50']:.3f} ms, "
                f"ORT {row['ort_ms_p50']:.3f} ms, ratio {row['native_over_ort']:.2f}")
    return rows


def main(argv: list[str] | None = None) -> int:
    a = parse_args(__doc__, argv)
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    other = OtherCPU().start()
    entries = []
    with pools_for(a) as pools:
        for name, path in pools.items():
            entries += bench_pool(name, path, a.quick, log)
    other_cores = other.stop()

    def gm(rows, threads):
        return geomean(r["native_over_ort"] for r in rows if r["threads"] == threads)

    by_pool = {p: {"geomean_native_over_ort_t1": gm([r for r in entries if r["pool"] == p], 1),
                   "geomean_native_over_ort_t2": gm([r for r in entries if r["pool"] == p], 2)}
               for p in dict.fromkeys(r["pool"] for r in entries)}
    from adaptive_rt.engine import default_isa
    result = {
        "entries": entries,
        "geomean_native_over_ort_t1": gm(entries, 1),
        "geomean_native_over_ort_t2": gm(entries, 2),
        "geomean_native_over_litert_t1": None,   # the LiteRT backend arrives with the backends issue
        "by_pool": by_pool,
        "native_isa": default_isa(),
        "other_processes_cpu_cores": other_cores,
        "machine": machine(),
    }
    write_json(a.json, result)
    log(f"geomean native/ORT: t1 {result['geomean_native_over_ort_t1']:.3f}, "
        f"t2 {result['geomean_native_over_ort_t2']:.3f}; other processes used {other_cores:.2f} cores")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

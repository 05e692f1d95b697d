"""Latency per pool entry: the native engine against ONNX Runtime and LiteRT
(XNNPACK) on the same subnet (exported by adaptive_rt.export.onnx / .tflite),
batch 1, 1 and 2 threads, interleaved in one process. Medians, p99 and the
native/ORT and native/LiteRT ratios.

With --int8: each float32 entry against its int8 entry on the native engine,
against ONNX Runtime on the int8 entry's QDQ export and against LiteRT
(XNNPACK delegate) on its full-integer TFLite export (the pools quantized
first where they have no int8 entries), batch 1, 1 and 2 threads,
interleaved.

Batch 8 as well on pools of inputs of 160 pixels and more (the 224-class
pools; a quick run: their first entry only), reported per entry and as
by_pool geomeans with a ``_b8`` key; the top-level geomeans are batch 1.

    python -m adaptive_rt.bench.bench_latency --json PATH [--pool P] [--quick] [--int8]
"""
from __future__ import annotations

import sys
import tempfile

import numpy as np

from adaptive_rt.serve.backends import available_backends, make_backend
from adaptive_rt.serve.latency import LatencyTable
from adaptive_rt.io.poolfile import load_pool

from .common import parse_args, OtherCPU, geomean, interleaved, machine, pct, pools_for, quantized_copy, write_json


def _litert_builtin(model: bytes, x: np.ndarray):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    it = Interpreter(model_content=model, num_threads=1,
                     experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
    i = it.get_input_details()[0]["index"]

    def run():
        it.set_tensor(i, x)
        it.invoke()
    return run


#: batch 8 is measured on pools whose input is at least this big (the 224-class pools, where batching is real)
BATCH8_MIN_HW = 160


def bench_pool(name: str, path: str, quick: bool, log, batch8: bool | None = None) -> list[dict]:
    """Rows of one pool: every float32 entry at batch 1, and at batch 8 where
    ``batch8`` (default: a pool of inputs >= BATCH8_MIN_HW); a quick run
    times batch 8 on the first entry only."""
    pool = load_pool(path)
    if batch8 is None:
        batch8 = min(pool.input_shape[:2]) >= BATCH8_MIN_HW
    native = make_backend("native", pool, 2)
    kinds = [("ort", "onnxruntime"), ("litert", "litert")] + ([("torch", "torch")] if "torch" in available_backends()
                                                               else [])
    peers = {(k, t): make_backend(b, pool, t) for k, b in kinds for t in (1, 2)}
    for (k, t), be in peers.items():   # export each entry once per format
        if hasattr(be, "_models"):
            be._models = peers[(k, 1)]._models
    rows = []
    floats = [e for e in pool.entries if not e.is_int8]   # bench_int8 compares the int8 ones
    cases = [(e, 1) for e in floats] + [(e, 8) for e in (floats[:1] if quick else floats) if batch8]
    for e, batch in cases:
        run = native.prepare(e.id)
        x = np.random.default_rng(0).random((batch,) + run.plan.input_shape, dtype=np.float32)
        out = np.empty((batch, run.plan.num_classes), np.float32)
        for threads in (1, 2):
            ort = peers[("ort", threads)].prepare(e.id)
            lit = peers[("litert", threads)].prepare(e.id)
            fns = {"native": lambda: native.engine.run(run.plan, x, threads=threads, out=out),
                   "ort": lambda: ort(x, threads), "litert": lambda: lit(x, threads)}
            if ("torch", threads) in peers:
                fns["torch"] = (lambda tr: lambda: tr(x, threads))(peers[("torch", threads)].prepare(e.id))
            if threads == 1 and batch == 1:   # LiteRT on its own builtin kernels, without the XNNPACK delegate
                fns["litert_builtin"] = _litert_builtin(peers[("litert", 1)].model(e.id), x)
            # at 2 threads each block starts once the previous runtime's workers stopped spinning
            settle = 0.05 if threads > 1 else 0.0
            if batch == 1:
                t = interleaved(fns, rounds=2000, warmup=5, budget_s=0.3 if quick else 6.0, settle_s=settle)
            else:   # calls of up to a second (LiteRT on 7x7 kernels): shorter blocks, at least 10 samples each
                t = interleaved(fns, rounds=400, warmup=1, budget_s=0.3 if quick else 10.0, block=5,
                                settle_s=settle)
            row = {"pool": name, "entry": e.id, "config": e.config.id, "mflops": round(e.mflops, 3),
                   "batch": batch, "threads": threads, "samples": len(t["native"])}
            for k, v in t.items():
                row[f"{k}_ms_p50"] = pct(v, 50)
                row[f"{k}_ms_p99"] = pct(v, 99)
            row["native_over_ort"] = row["native_ms_p50"] / row["ort_ms_p50"]
            row["native_over_litert"] = row["native_ms_p50"] / row["litert_ms_p50"]
            if "torch_ms_p50" in row:
                row["native_over_torch"] = row["native_ms_p50"] / row["torch_ms_p50"]
            rows.append(row)
            log(f"{name} {e.id:>4} {e.mflops:8.2f} MFLOPs b{batch} t{threads}: native {row['native_ms_p50']:.3f} ms, "
                f"ORT {row['ort_ms_p50']:.3f} ms, LiteRT {row['litert_ms_p50']:.3f} ms; native/ORT "
                f"{row['native_over_ort']:.2f}, native/LiteRT {row['native_over_litert']:.2f}")
    return rows


def bench_int8(name: str, path: str, quick: bool, log) -> list[dict]:
    """Each float32 entry against its int8 entry, native engine, interleaved."""
    from adaptive_rt.engine import Engine
    pool = load_pool(path)
    eng = Engine(pool, max_threads=2)
    ort = {t: make_backend("onnxruntime", pool, t) for t in (1, 2)}
    lit = {t: make_backend("litert", pool, t) for t in (1, 2)}
    ort[2]._models = ort[1]._models   # export each entry once
    lit[2]._models = lit[1]._models
    rows = []
    for e in pool.entries:
        q = next((x for x in pool.entries if x.is_int8 and x.config == e.config and x.bn == e.bn), None)
        if e.is_int8 or q is None:
            continue
        pf, pq = eng.plan(e), eng.plan(q)
        x = np.random.default_rng(0).random((1,) + pf.input_shape, dtype=np.float32)
        out = np.empty((1, pf.num_classes), np.float32)
        for threads in (1, 2):
            o8, l8 = ort[threads].prepare(q.id), lit[threads].prepare(q.id)
            fns = {"float32": lambda: eng.run(pf, x, threads=threads, out=out),
                   "int8": lambda: eng.run(pq, x, threads=threads, out=out),
                   "ort_int8": lambda: o8(x, threads), "litert_int8": lambda: l8(x, threads)}
            t = interleaved(fns, rounds=2000, warmup=5, budget_s=0.6 if quick else 6.0,
                            settle_s=0.05 if threads > 1 else 0.0)
            row = {"pool": name, "entry": e.id, "int8_entry": q.id, "config": e.config.id,
                   "mflops": round(e.mflops, 3), "threads": threads, "samples": len(t["int8"]),
                   "float32_ms_p50": pct(t["float32"], 50), "float32_ms_p99": pct(t["float32"], 99),
                   "int8_ms_p50": pct(t["int8"], 50), "int8_ms_p99": pct(t["int8"], 99),
                   "ort_int8_ms_p50": pct(t["ort_int8"], 50), "ort_int8_ms_p99": pct(t["ort_int8"], 99),
                   "litert_int8_ms_p50": pct(t["litert_int8"], 50), "litert_int8_ms_p99": pct(t["litert_int8"], 99)}
            row["int8_speedup"] = row["float32_ms_p50"] / row["int8_ms_p50"]
            row["int8_over_ort_int8"] = row["int8_ms_p50"] / row["ort_int8_ms_p50"]
            row["int8_over_litert_int8"] = row["int8_ms_p50"] / row["litert_int8_ms_p50"]
            row["int8_over_best_peer"] = row["int8_ms_p50"] / min(row["ort_int8_ms_p50"], row["litert_int8_ms_p50"])
            rows.append(row)
            log(f"{name} {e.id:>4} {e.mflops:8.2f} MFLOPs t{threads}: float32 {row['float32_ms_p50']:.3f} ms, "
                f"int8 {row['int8_ms_p50']:.3f} ms (speed-up {row['int8_speedup']:.2f}x), ORT int8 (QDQ) "
                f"{row['ort_int8_ms_p50']:.3f} ms, LiteRT int8 {row['litert_int8_ms_p50']:.3f} ms "
                f"(native/min(ORT, LiteRT) {row['int8_over_best_peer']:.2f})")
    return rows


def main_int8(a, log) -> int:
    from adaptive_rt.engine import default_isa8
    other = OtherCPU().start()
    rows = []
    with pools_for(a) as pools, tempfile.TemporaryDirectory() as d:
        for name, path in pools.items():
            rows += bench_int8(name, quantized_copy(path, d), a.quick, log)
    other_cores = other.stop()
    by_pool = {p: {f"geomean_{k}_t{t}": geomean(r[k] for r in rows if r["pool"] == p and r["threads"] == t)
                   for k in ("int8_speedup", "int8_over_ort_int8", "int8_over_litert_int8", "int8_over_best_peer")
                   for t in (1, 2)}
               for p in dict.fromkeys(r["pool"] for r in rows)}
    write_json(a.json, {"entries": rows, "by_pool": by_pool, "int8_isa": default_isa8(),
                        "geomean_int8_over_ort_int8": geomean(r["int8_over_ort_int8"] for r in rows),
                        "geomean_int8_over_litert_int8": geomean(r["int8_over_litert_int8"] for r in rows),
                        "geomean_int8_over_best_peer": geomean(r["int8_over_best_peer"] for r in rows),
                        "peers": "ONNX Runtime on the QDQ export (to_onnx_int8), LiteRT (XNNPACK delegate) on "
                                 "the full-integer TFLite export (to_tflite_int8)",
                        "other_processes_cpu_cores": other_cores, "machine": machine()})
    for p, g in by_pool.items():
        log(f"{p}: int8 speed-up over float32 geomean t1 {g['geomean_int8_speedup_t1']:.2f}x, "
            f"t2 {g['geomean_int8_speedup_t2']:.2f}x; native int8 / min(ORT int8, LiteRT int8) t1 "
            f"{g['geomean_int8_over_best_peer_t1']:.2f}, t2 {g['geomean_int8_over_best_peer_t2']:.2f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    a = parse_args(__doc__, argv, lambda ap: ap.add_argument(
        "--int8", action="store_true", help="float32 against int8 entries on the native engine"))
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    if a.int8:
        return main_int8(a, log)
    other = OtherCPU().start()
    entries = []
    with pools_for(a) as pools:
        spaces = {}
        for name, path in pools.items():
            entries += bench_pool(name, path, a.quick, log)
            spaces[name] = load_pool(path, verify_checksum=False).space
    other_cores = other.stop()

    def gm(rows, threads, peer="ort", batch=1):
        return geomean(r[f"native_over_{peer}"] for r in rows if r["threads"] == threads and r["batch"] == batch)

    by_pool = {}
    for p in dict.fromkeys(r["pool"] for r in entries):   # batch 1 (the contract's keys), and batch 8 where run
        rows = [r for r in entries if r["pool"] == p]
        by_pool[p] = {f"geomean_native_over_{peer}{'' if b == 1 else f'_b{b}'}_t{t}": gm(rows, t, peer, b)
                      for b in sorted({r["batch"] for r in rows}) for peer in ("ort", "litert") for t in (1, 2)}
    for p, space in spaces.items():   # the device latency table's error on subnets it did not fit
        table = LatencyTable.measure(space, n=12 if a.quick else 40, repeats=5 if a.quick else 15)
        by_pool[p]["latency_table_holdout_mape"] = table.holdout_mape
        log(f"{p}: latency table held-out error {100 * table.holdout_mape:.1f}%")
    from adaptive_rt.engine import default_isa
    result = {
        "entries": entries,
        "geomean_native_over_ort_t1": gm(entries, 1),
        "geomean_native_over_ort_t2": gm(entries, 2),
        "geomean_native_over_litert_t1": gm(entries, 1, "litert"),
        "geomean_native_over_litert_t2": gm(entries, 2, "litert"),
        "geomean_native_over_torch_t1": gm(entries, 1, "torch") if any("native_over_torch" in r for r in entries)
        else None,
        "by_pool": by_pool,
        "native_isa": default_isa(),
        "other_processes_cpu_cores": other_cores,
        "machine": machine(),
    }
    write_json(a.json, result)
    log(f"geomean native/ORT: t1 {result['geomean_native_over_ort_t1']:.3f}, "
        f"t2 {result['geomean_native_over_ort_t2']:.3f}; native/LiteRT: t1 "
        f"{result['geomean_native_over_litert_t1']:.3f}, t2 {result['geomean_native_over_litert_t2']:.3f}; "
        f"other processes used {other_cores:.2f} cores")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

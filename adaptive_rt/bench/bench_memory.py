"""Memory of holding every pool entry ready to run, each mode measured in a
fresh process as the growth of its resident set (RSS) after its imports:
the native engine (one copy of the weights, a plan per entry) against
one ONNX Runtime session / LiteRT interpreter per entry, and each of those
holding only the largest entry. The input arrays (the application's) are
made before the baseline in every mode.

With --int8: pools of int8 entries only (the test pools quantized with
--drop-float, so no float32 weight page exists), the native engine holding
all K int8 entries, against the int8 weight bytes.

    python -m adaptive_rt.bench.bench_memory --json PATH [--pool P] [--quick] [--int8]
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

from adaptive_rt.io.poolfile import load_pool

from .common import parse_args, machine, pools_for, write_json

_CHILD = r"""
import gc, json, sys
import numpy as np
import psutil
mode, pool_path, onnx_dir = sys.argv[1], sys.argv[2], sys.argv[3]
shapes = {k: tuple(v) for k, v in json.loads(sys.argv[4]).items()}   # entry id -> input shape (H, W, C)
proc = psutil.Process()
if mode == "native":
    from adaptive_rt.engine import Engine
else:
    if mode.startswith("ort"):
        import onnxruntime as ort
    else:
        from ai_edge_litert.interpreter import Interpreter
    ids = json.loads(sys.argv[5])                                          # the float entries
# the caller's input arrays, one per shape, made and written before the baseline in every mode: they
# are the application's memory, not the runtime's (freed 600 KB inputs stay in the allocator's heap)
inputs = {s: np.full((1,) + s, 0.5, np.float32) for s in set(shapes.values())}
gc.collect()
base = proc.memory_info().rss
held = []
stages = {}
if mode == "native":
    eng = Engine.open(pool_path, max_threads=1)
    stages["opened"] = proc.memory_info().rss - base
    for e in eng.pool.entries:
        held.append(eng.plan(e.id))
    stages["planned"] = proc.memory_info().rss - base
    for p in held:
        eng.run(p, inputs[tuple(p.input_shape)])
elif mode.startswith("ort"):
    o = ort.SessionOptions()
    o.intra_op_num_threads = 1
    chosen = ids if mode == "ort_all" else ids[-1:]
    for i in chosen:
        s = ort.InferenceSession(f"{onnx_dir}/{i}.onnx", o, providers=["CPUExecutionProvider"])
        s.run(None, {"input": inputs[shapes[i]]})
        held.append(s)
else:
    chosen = ids if mode == "litert_all" else ids[-1:]
    for i in chosen:
        it = Interpreter(model_path=f"{onnx_dir}/{i}.tflite", num_threads=1)
        it.allocate_tensors()
        it.set_tensor(it.get_input_details()[0]["index"], inputs[shapes[i]])
        it.invoke()
        held.append(it)
gc.collect()
arena = eng.arena_bytes if mode == "native" else 0
packed = eng._native.packed_bytes if mode == "native" else 0
print(json.dumps({"rss_growth": proc.memory_info().rss - base, "arena": arena, "packed": packed, "stages": stages}))
"""


def measure(mode: str, pool: str, onnx_dir: str) -> dict:
    meta = load_pool(pool, verify_checksum=False)
    shapes = {e.id: list(meta.graph(e).input_shape) for e in meta.entries}
    ids = [e.id for e in meta.entries if not e.is_int8]
    out = subprocess.run([sys.executable, "-c", _CHILD, mode, pool, onnx_dir, json.dumps(shapes), json.dumps(ids)],
                         capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"{mode} child failed: {out.stderr[-2000:]}")
    d = json.loads(out.stdout.strip().splitlines()[-1])
    return {"rss_mb": d["rss_growth"] / 1e6, "arena_mb": d["arena"] / 1e6, "packed_mb": d["packed"] / 1e6,
            **{f"{k}_rss_mb": v / 1e6 for k, v in d["stages"].items()}}


_IMPORT_CHILD = r"""
import json, sys, psutil
import adaptive_rt.serve.runtime, adaptive_rt.engine, adaptive_rt.serve.monitor, adaptive_rt.serve.policy  # noqa: E401
print(json.dumps({"rss": psutil.Process().memory_info().rss, "torch": "torch" in sys.modules}))
"""


def runtime_import() -> dict:
    """RSS of a fresh interpreter once the runtime (engine, monitor, policy) is imported."""
    out = subprocess.run([sys.executable, "-c", _IMPORT_CHILD], capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    d = json.loads(out.stdout.strip().splitlines()[-1])
    return {"runtime_import_rss_mb": d["rss"] / 1e6, "runtime_import_pulls_torch": d["torch"]}


def main_int8(a) -> int:
    import numpy as np
    from adaptive_rt.quant.calibrate import quantize_pool
    pools_out = {}
    with pools_for(a) as pools, tempfile.TemporaryDirectory() as d:
        for name, path in pools.items():
            src = load_pool(path)
            x = np.random.default_rng(0).standard_normal((8,) + src.input_shape).astype(np.float32)
            q = quantize_pool(src, x, os.path.join(d, f"{name}-int8.safetensors"), drop_float=True)
            runs = [measure("native", q.path, d) for _ in range(1 if a.quick else 3)]
            best = min(runs, key=lambda r: r["rss_mb"])
            rss = best["rss_mb"]
            arena = runs[0]["arena_mb"]
            row = {"k": len(q.entries), "int8_weight_bytes": q.int8_weight_bytes, "pool_weight_bytes": q.weight_bytes,
                   "pool_file_bytes": q.file_bytes, "native_all_rss_mb": rss, "native_arena_mb": arena,
                   "native_all_over_int8_weights": rss * 1e6 / q.int8_weight_bytes,
                   "native_all_over_pool_weights": rss * 1e6 / q.weight_bytes,
                   # where the RSS goes, in the same run: the opened pool (its data section read into
                   # private memory, the Python objects), the plans (their tables and the packed depthwise
                   # weights), the first runs (the arena's pages and the threads' scratch touched)
                   "breakdown_mb": {"opened": best["opened_rss_mb"],
                                    "plans": best["planned_rss_mb"] - best["opened_rss_mb"],
                                    "runs": rss - best["planned_rss_mb"],
                                    "packed_depthwise": best["packed_mb"], "arena": arena,
                                    "pool_file": q.file_bytes / 1e6}}
            pools_out[name] = row
            print(f"{name}: K={row['k']} int8 weights {q.int8_weight_bytes / 1e6:.2f} MB (all shared tensors "
                  f"{q.weight_bytes / 1e6:.2f} MB); native all {rss:.2f} MB = "
                  f"{row['native_all_over_int8_weights']:.2f}x int8 weights (arena {arena:.2f} MB)", file=sys.stderr)
    result = dict(max(pools_out.values(), key=lambda r: r["int8_weight_bytes"]))
    result["by_pool"] = pools_out
    result["machine"] = machine()
    write_json(a.json, result)
    return 0


def main(argv: list[str] | None = None) -> int:
    a = parse_args(__doc__, argv, lambda ap: ap.add_argument(
        "--int8", action="store_true", help="a pool of int8 entries only, against its int8 weight bytes"))
    if a.int8:
        return main_int8(a)
    from adaptive_rt.export.onnx import save_onnx, to_onnx
    from adaptive_rt.export.tflite import save_tflite, to_tflite
    pools_out = {}
    with pools_for(a) as pools, tempfile.TemporaryDirectory() as d:
        for name, path in pools.items():
            pool = load_pool(path)
            odir = os.path.join(d, name)
            os.makedirs(odir)
            for e in pool.entries:
                if e.is_int8:
                    continue
                save_onnx(to_onnx(pool.space, e.config, pool.tensors, e.bn), os.path.join(odir, f"{e.id}.onnx"))
                save_tflite(to_tflite(pool.space, e.config, pool.tensors, e.bn), os.path.join(odir, f"{e.id}.tflite"))
            reps = 1 if a.quick else 3
            modes = ("native", "ort_all", "ort_largest", "litert_all", "litert_largest")
            runs = {m: [measure(m, path, odir) for _ in range(reps)] for m in modes}
            res = {m: min(r["rss_mb"] for r in rs) for m, rs in runs.items()}
            arena = runs["native"][0]["arena_mb"]
            row = {"k": len(pool.entries), "pool_weight_bytes": pool.weight_bytes,
                   "pool_file_bytes": pool.file_bytes,
                   "native_all_rss_mb": res["native"], "ort_all_rss_mb": res["ort_all"],
                   "ort_largest_rss_mb": res["ort_largest"], "litert_all_rss_mb": res["litert_all"],
                   "litert_largest_rss_mb": res["litert_largest"],
                   "native_all_over_weights": res["native"] * 1e6 / pool.weight_bytes,
                   "native_arena_mb": arena,
                   "native_all_minus_arena_over_weights": (res["native"] - arena) * 1e6 / pool.weight_bytes,
                   "ort_all_over_ort_largest": res["ort_all"] / res["ort_largest"],
                   "litert_all_over_litert_largest": res["litert_all"] / res["litert_largest"]}
            pools_out[name] = row
            print(f"{name}: K={row['k']} weights {pool.weight_bytes / 1e6:.2f} MB; native all {res['native']:.2f} MB "
                  f"({row['native_all_over_weights']:.2f}x weights, of which activation arena {arena:.2f} MB); ORT all {res['ort_all']:.2f} MB, largest "
                  f"{res['ort_largest']:.2f} MB; LiteRT all {res['litert_all']:.2f} MB, largest {res['litert_largest']:.2f} MB",
                  file=sys.stderr)
    # top-level keys (the benchmark contract, docs/benchmarks.md): the largest pool measured
    main_row = max(pools_out.values(), key=lambda r: r["pool_weight_bytes"])
    result = dict(main_row)
    result.update(runtime_import())
    result["by_pool"] = pools_out
    result["machine"] = machine()
    write_json(a.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

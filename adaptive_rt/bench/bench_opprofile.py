"""Per-op profile of one entry (default: the largest of the 224 test pool),
the native engine against ONNX Runtime's own profiler on the same subnet:
time per op kind and per MobileNet block (stem, s<stage>.b<block>, head,
classifier), 1 thread, medians over repeated runs. The native figures are
per plan step (fused steps count under the kind that leads them: a
depthwise step with its expand and project fused in is "dwconv+expand+
project"; with the stem conv streamed into the first block it is
"dwconv+stem+project", and that step's block "stem+s0.b0", which ORT's
stem and first block are summed into too; a step that makes the previous
step's output rows as it needs them counts that step's time and block too:
"stem+s0.b0+s1.b0", kind "...+pulls"); ORT's are its kernel times per node.

With --int8: the largest float32 entry against its int8 entry on the
native engine (the pool quantized first where it has none), both profiled
the same way: where int8 gains and where it does not.

    python -m adaptive_rt.bench.bench_opprofile --json PATH [--pool P] [--quick] [--int8]
"""
from __future__ import annotations

import collections
import json
import os
import sys
import tempfile

import numpy as np

from adaptive_rt.engine import Engine
from adaptive_rt.io.poolfile import load_pool

from adaptive_rt.bench.common import OtherCPU, machine, parse_args, pools_for, write_json


def _block(name: str) -> str:
    parts = name.split(":")[0].split(".")
    return ".".join(parts[:2]) if parts[0].startswith("s") and parts[0][1:].isdigit() else parts[0].split("_")[0]


def native_profile(pool, entry_id: str, repeats: int, eng: Engine | None = None) -> dict:
    eng = eng if eng is not None else Engine(pool, max_threads=1)
    plan = eng.plan(entry_id)
    x = np.random.default_rng(0).random((1,) + plan.input_shape, dtype=np.float32)
    med = eng.profile(plan, x, 1, repeats)
    by_kind: dict[str, float] = collections.defaultdict(float)
    by_block: dict[str, float] = collections.defaultdict(float)
    steps = []
    carried = ("", 0.0)   # the block and time of a step whose rows the next step makes
    joined: dict[str, str] = {}   # a block -> the row it shares with the block before it
    for (kind, name, macs, kern), t in zip(plan.native.steps(), med):
        parts = kern.split(" + ")   # a depthwise step led by a GEMM has its expand conv fused in
        stem = kind == "dwconv" and "-conv-" in parts[0]   # ... led by a direct conv: the stem streamed into it
        block = joined.get(_block(name), ("stem+" if stem else "") + _block(name))
        steps.append({"kind": kind, "name": name, "macs": int(macs), "kernels": kern, "ms": 1e3 * t})
        if "(rows made by " in kern:
            carried = (block + "+", 1e3 * t)
            continue
        tag = kind + ("+expand" if kind == "dwconv" and "-gemm-" in parts[0] else "") + ("+stem" if stem else "") + (
            "+project" if "project per row" in kern else "") + ("+gate" if "rows of B gated" in kern else "") + (
            "+pulls" if "(pulls the rows of " in kern else "")
        by_kind[tag] += 1e3 * t + carried[1]
        if carried[0]:
            joined[_block(name)] = block = carried[0] + block
        by_block[block] += 1e3 * t + carried[1]
        carried = ("", 0.0)
    return {"isa": eng.isa8 if plan.native.q8 else eng.isa, "total_ms": sum(by_kind.values()), "by_kind_ms": dict(by_kind),
            "by_block_ms": dict(by_block), "steps": steps}


def ort_profile(pool, entry_id: str, repeats: int) -> dict:
    import onnxruntime as ort
    from adaptive_rt.export.onnx import save_onnx, to_onnx
    e = pool.entry(entry_id)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "m.onnx")
        save_onnx(to_onnx(pool.space, e.config, pool.tensors, e.bn), path)
        o = ort.SessionOptions()
        o.intra_op_num_threads = 1
        o.enable_profiling = True
        o.profile_file_prefix = os.path.join(d, "ort")
        s = ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])
        i = s.get_inputs()[0]
        x = np.random.default_rng(0).random([v if isinstance(v, int) else 1 for v in i.shape], dtype=np.float32)
        for _ in range(repeats):
            s.run(None, {i.name: x})
        with open(s.end_profiling()) as f:
            events = json.load(f)
    per: dict[tuple[str, str], list[float]] = collections.defaultdict(list)
    for ev in events:
        if ev.get("cat") == "Node" and ev["name"].endswith("_kernel_time"):
            per[(ev["args"].get("op_name", "?"), ev["name"])].append(ev["dur"] / 1e3)
    by_kind: dict[str, float] = collections.defaultdict(float)
    by_block: dict[str, float] = collections.defaultdict(float)
    for (op, name), ds in per.items():
        m = float(np.median(ds))
        by_kind[op] += m
        by_block[_block(name)] += m
    return {"total_ms": sum(by_kind.values()), "by_kind_ms": dict(by_kind), "by_block_ms": dict(by_block)}


def merge_fused_blocks(native: dict, other: dict) -> None:
    """Where the native plan runs several blocks as one step (the stem
    streamed into the first block: "stem+<block>"; a block whose rows the
    next one makes: "<block>+<next>"), the other profile's blocks become one
    row too."""
    b = other["by_block_ms"]
    for key in native["by_block_ms"]:
        if "+" in key and key not in b:
            b[key] = sum(b.pop(part, 0.0) for part in key.split("+"))


def _write(a, other: OtherCPU, out: dict) -> int:
    out["other_processes_cpu_cores"] = other.stop()
    out["machine"] = machine()
    write_json(a.json, out)
    return 0


def main_int8(a, repeats: int) -> int:
    from .common import quantized_copy
    other = OtherCPU().start()
    with pools_for(a) as pools, tempfile.TemporaryDirectory() as d:
        name, path = max(pools.items(), key=lambda kv: os.path.getsize(kv[1]))
        pool = load_pool(quantized_copy(path, d))
        big = max((e for e in pool.entries if not e.is_int8), key=lambda e: e.mflops)
        q = next(e for e in pool.entries if e.is_int8 and e.config == big.config and e.bn == big.bn)
        eng = Engine(pool, max_threads=1)
        f32, i8 = {}, {}
        for _ in range(3):      # alternate, keep each step's best-of-medians: both under the same conditions
            for res, eid in ((f32, big.id), (i8, q.id)):
                r = native_profile(pool, eid, repeats, eng)
                if not res or r["total_ms"] < res["total_ms"]:
                    res.update(r)
        merge_fused_blocks(f32, i8)   # the int8 plan keeps the stem a step of its own
        kinds = sorted(set(f32["by_kind_ms"]) | set(i8["by_kind_ms"]))
        blocks = list(dict.fromkeys(list(f32["by_block_ms"]) + list(i8["by_block_ms"])))
        out = {"pool": name, "entry": big.id, "int8_entry": q.id, "mflops": round(big.mflops, 3),
               "config": big.config.id, "float32": f32, "int8": i8,
               "speedup_total": f32["total_ms"] / i8["total_ms"],
               "by_kind_ms": {k: {"float32": f32["by_kind_ms"].get(k, 0.0), "int8": i8["by_kind_ms"].get(k, 0.0)}
                              for k in kinds},
               "by_block_ms": {b: {"float32": f32["by_block_ms"].get(b, 0.0), "int8": i8["by_block_ms"].get(b, 0.0)}
                               for b in blocks}}
        print(f"{name} {big.id}: float32 {f32['total_ms']:.3f} ms, int8 {i8['total_ms']:.3f} ms (sums of steps): "
              f"{out['speedup_total']:.2f}x", file=sys.stderr)
    return _write(a, other, out)


def main(argv: list[str] | None = None) -> int:
    a = parse_args(__doc__, argv, lambda ap: ap.add_argument(
        "--int8", action="store_true", help="the largest entry in float32 against its int8 entry"))
    repeats = 20 if a.quick else 100
    if a.int8:
        return main_int8(a, repeats)
    other = OtherCPU().start()
    out = {}
    with pools_for(a) as pools:
        name, path = max(pools.items(), key=lambda kv: os.path.getsize(kv[1]))
        pool = load_pool(path)
        big = max(pool.entries, key=lambda e: e.mflops)
        nat = native_profile(pool, big.id, repeats)
        try:
            ortp = ort_profile(pool, big.id, repeats)
            merge_fused_blocks(nat, ortp)
        except ImportError:
            ortp = None
        out = {"pool": name, "entry": big.id, "mflops": round(big.mflops, 3), "config": big.config.id,
               "native": nat, "ort": ortp,
               "native_over_ort_total": nat["total_ms"] / ortp["total_ms"] if ortp else None}
        print(f"{name} {big.id}: native {nat['total_ms']:.3f} ms (sum of steps), ORT "
              f"{ortp['total_ms'] if ortp else float('nan'):.3f} ms (sum of kernels)", file=sys.stderr)
    return _write(a, other, out)


if __name__ == "__main__":
    raise SystemExit(main())

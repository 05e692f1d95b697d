"""Cold start: a fresh process that imports the runtime, opens the pool,
builds every entry's plan and answers its first inference, against a fresh
process that imports ONNX Runtime (or LiteRT), creates ONE session
(interpreter) for the largest entry from its exported file and answers one
inference. Wall time from spawning the process to its first answer (as an
app or a service manager waits for it; spawn to exit is recorded too) and
its peak RSS; medians over interleaved runs
(modes alternate, each round in its own shuffled order, so load changes
on the shared machine and any effect of the process before hit all of them
alike). The native engine is also measured without the pool's SHA-256 pass
(``verify_checksum=False``), to show what the checksum costs. A baseline
process (``python -c pass`` with numpy imported) is timed too, so the
interpreter's own start-up can be subtracted. The runtime is measured as
installed, with its modules byte-compiled (as ``pip install`` does; an
editable checkout gets them compiled first: ``runtime_bytecode``).

    python -m adaptive_rt.bench.bench_coldstart --json PATH [--pool P] [--quick]
"""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time

from adaptive_rt.io.poolfile import load_pool

from .common import OtherCPU, machine, parse_args, pools_for, write_json

# Each child prints one JSON line: its phases (ms from its own first line) and peak RSS.
_CHILD = r"""
import time
t0 = time.perf_counter()
import json, sys
mode, pool_path, model_dir = sys.argv[1], sys.argv[2], sys.argv[3]
import numpy as np
ph = {}
if mode.startswith("native"):
    from adaptive_rt.engine import Engine
    ph["import"] = time.perf_counter()
    eng = Engine.open(pool_path, max_threads=1, verify_checksum=(mode == "native"))
    ph["open"] = time.perf_counter()
    plans = [eng.plan(e.id) for e in eng.pool.entries]
    ph["plans"] = time.perf_counter()
    big = max(eng.pool.entries, key=lambda e: e.mflops)
    p = plans[[e.id for e in eng.pool.entries].index(big.id)]
    y = eng.run(p, np.zeros((1,) + p.input_shape, np.float32))
elif mode == "ort":
    import onnxruntime as ort
    ph["import"] = time.perf_counter()
    o = ort.SessionOptions()
    o.intra_op_num_threads = 1
    s = ort.InferenceSession(f"{model_dir}/largest.onnx", o, providers=["CPUExecutionProvider"])
    ph["open"] = time.perf_counter()
    i = s.get_inputs()[0]
    y = s.run(None, {i.name: np.zeros([d if isinstance(d, int) else 1 for d in i.shape], np.float32)})
elif mode == "litert":
    from ai_edge_litert.interpreter import Interpreter
    ph["import"] = time.perf_counter()
    it = Interpreter(model_path=f"{model_dir}/largest.tflite", num_threads=1)
    it.allocate_tensors()
    ph["open"] = time.perf_counter()
    d = it.get_input_details()[0]
    it.set_tensor(d["index"], np.zeros(d["shape"], np.float32))
    it.invoke()
    y = it.get_tensor(it.get_output_details()[0]["index"])
ph["first"] = time.perf_counter()
out = {k: 1e3 * (v - t0) for k, v in ph.items()}
out["peak_rss_mb"] = peak_rss_mb()
print(json.dumps(out), flush=True)
"""

# Peak RSS of this process since its exec: VmHWM (ru_maxrss would carry the
# parent's peak across fork + exec on Linux).
_PEAK = r"""
def peak_rss_mb():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
"""

MODES = ("baseline", "native", "native_nochecksum", "ort", "litert")


def run_once(mode: str, pool: str, model_dir: str) -> dict:
    """Spawn the child; wall_ms is spawn to its first answer (the line it
    prints then), exit_ms spawn to exit (interpreter teardown included)."""
    code = _PEAK + ("import json, numpy\nprint(json.dumps({'peak_rss_mb': peak_rss_mb()}), flush=True)\n"
                    if mode == "baseline" else _CHILD.replace("import json, sys", "import json, sys\n" + _PEAK, 1))
    t = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-c", code, mode, pool, model_dir], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    wall = 1e3 * (time.perf_counter() - t)
    try:
        _, err = p.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        p.kill()
        raise RuntimeError(f"{mode} child did not exit") from None
    exit_ms = 1e3 * (time.perf_counter() - t)
    if p.returncode != 0 or not line.strip():
        raise RuntimeError(f"{mode} child failed: {err[-2000:]}")
    d = json.loads(line)
    d["wall_ms"], d["exit_ms"] = wall, exit_ms
    return d


def _median(xs: list[float]) -> float:
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else 0.5 * (xs[n // 2 - 1] + xs[n // 2])


def bench_pool(name: str, path: str, runs: int, log) -> dict:
    from adaptive_rt.export.onnx import save_onnx, to_onnx
    from adaptive_rt.export.tflite import save_tflite, to_tflite
    pool = load_pool(path)
    big = max(pool.entries, key=lambda e: e.mflops)
    with tempfile.TemporaryDirectory() as d:
        save_onnx(to_onnx(pool.space, big.config, pool.tensors, big.bn), os.path.join(d, "largest.onnx"))
        save_tflite(to_tflite(pool.space, big.config, pool.tensors, big.bn), os.path.join(d, "largest.tflite"))
        for m in MODES:          # one untimed run each: the files and the modules in the page cache
            run_once(m, path, d)
        samples: dict[str, list[dict]] = {m: [] for m in MODES}
        rng = random.Random(0)
        for _ in range(runs):
            # each round in its own order: no mode always follows the same one (the same process
            # after the light baseline started 15-20 ms slower on a shared guest, every round)
            order = list(MODES)
            rng.shuffle(order)
            for m in order:
                samples[m].append(run_once(m, path, d))
    row: dict = {"pool": name, "k": len(pool.entries), "largest_entry": big.id, "largest_mflops": round(big.mflops, 3),
                 "pool_file_bytes": pool.file_bytes, "runs": runs}
    for m, ss in samples.items():
        row[f"{m}_wall_ms_p50"] = _median([s["wall_ms"] for s in ss])
        row[f"{m}_exit_ms_p50"] = _median([s["exit_ms"] for s in ss])
        row[f"{m}_peak_rss_mb_p50"] = _median([s["peak_rss_mb"] for s in ss])
        for k in ("import", "open", "plans", "first"):
            if k in ss[0]:
                row[f"{m}_{k}_ms_p50"] = _median([s[k] for s in ss])
    base = row["baseline_wall_ms_p50"]
    row["native_over_ort_wall"] = row["native_wall_ms_p50"] / row["ort_wall_ms_p50"]
    row["native_over_litert_wall"] = row["native_wall_ms_p50"] / row["litert_wall_ms_p50"]
    row["native_over_ort_beyond_baseline"] = ((row["native_wall_ms_p50"] - base) /
                                              max(1e-9, row["ort_wall_ms_p50"] - base))
    row["checksum_ms"] = row["native_wall_ms_p50"] - row["native_nochecksum_wall_ms_p50"]
    row["checksum_share_of_native"] = row["checksum_ms"] / row["native_wall_ms_p50"]
    log(f"{name}: K={row['k']} cold start to first answer, medians of {runs}: native (all entries ready) "
        f"{row['native_wall_ms_p50']:.0f} ms ({row['native_nochecksum_wall_ms_p50']:.0f} without checksum), "
        f"ORT (largest only) {row['ort_wall_ms_p50']:.0f} ms, LiteRT {row['litert_wall_ms_p50']:.0f} ms, "
        f"python+numpy {base:.0f} ms; peak RSS native {row['native_peak_rss_mb_p50']:.0f} MB, "
        f"ORT {row['ort_peak_rss_mb_p50']:.0f} MB, LiteRT {row['litert_peak_rss_mb_p50']:.0f} MB")
    return row


def ensure_bytecode() -> str:
    """The runtime as installed: ``pip install`` byte-compiles a package, an
    editable checkout (or ``PYTHONDONTWRITEBYTECODE=1``) may have no .pyc,
    and then every child would compile adaptive_rt's sources on import —
    ~17 ms that ONNX Runtime and LiteRT, installed with their .pyc, never
    pay. Compile what is missing (into the package's own __pycache__);
    returns what was found: "present", "compiled" or "unavailable"."""
    import compileall
    import importlib.util
    import adaptive_rt
    root = os.path.dirname(adaptive_rt.__file__)
    stale = []
    for d, _, files in os.walk(root):
        for f in files:
            if f.endswith(".py"):
                src = os.path.join(d, f)
                pyc = importlib.util.cache_from_source(src)
                if not os.path.exists(pyc) or os.path.getmtime(pyc) < os.path.getmtime(src):
                    stale.append(src)
    if not stale:
        return "present"
    ok = compileall.compile_dir(root, quiet=1)
    return "compiled" if ok else "unavailable"


def main(argv: list[str] | None = None) -> int:
    a = parse_args(__doc__, argv)
    runs = 3 if a.quick else 21
    bytecode = ensure_bytecode()
    out = {}
    other = OtherCPU().start()
    with pools_for(a) as pools:
        for name, path in pools.items():
            out[name] = bench_pool(name, path, runs, lambda m: print(m, file=sys.stderr, flush=True))
    main_row = max(out.values(), key=lambda r: r["pool_file_bytes"])
    result = dict(main_row)
    result["by_pool"] = out
    result["other_processes_cpu_cores"] = other.stop()
    result["runtime_bytecode"] = bytecode
    result["machine"] = machine()
    write_json(a.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

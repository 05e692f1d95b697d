"""``adaptive-rt bench``: run the benchmarks that apply here and write one
report (``report.md`` + PNG plots) from their JSON results.

Each benchmark runs in its own process (``python -m adaptive_rt.bench.bench_X``)
so one's threads, sessions and memory never skew another's; a missing
optional package (torch for training; onnxruntime / ai-edge-litert for the
peer backends) skips what needs it and says so in the report.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from typing import Callable

from ..registry import Registry
from ..serve.profile import LOADED_CORES

__all__ = ["BENCHES", "run_benches", "write_report"]

# name -> (what it needs importable, rough seconds full / quick, whether --pool applies)
# adapt always serves the shipped pool (its accuracy is measured on the shipped
# digits) and train trains its own supernets.
BENCHES: Registry[tuple] = Registry("benchmark")
for _name, _spec in (
    ("latency", (("onnxruntime", "ai_edge_litert"), 300, 20, True)),
    ("switch", (("onnxruntime", "ai_edge_litert"), 60, 5, True)),
    ("memory", (("onnxruntime", "ai_edge_litert"), 120, 10, True)),
    ("coldstart", (("onnxruntime", "ai_edge_litert"), 120, 10, True)),
    ("adapt", ((), 200, 20, False)),
    ("daemon", ((), 200, 15, True)),
    ("train", (("torch", "pymoo"), 500, 30, False)),
    ("dist", (("torch", "pymoo"), 300, 30, False)),
):
    BENCHES.register(_name, _spec)


def _missing(mods) -> list[str]:
    import importlib.util
    return [m for m in mods if importlib.util.find_spec(m) is None]


def run_benches(out: str, pool: str | None, quick: bool, only: list[str] | None = None,
                say: Callable[[str], None] = print) -> dict[str, str]:
    """Run each benchmark into ``out/<name>.json``; returns name -> status."""
    os.makedirs(out, exist_ok=True)
    status: dict[str, str] = {}
    conditions: dict[str, dict] = {}
    names = [n for n in BENCHES if not only or n in only]
    for i, name in enumerate(names, 1):
        needs, full_s, quick_s, takes_pool = BENCHES.get(name)
        miss = _missing(needs)
        if miss:
            status[name] = f"skipped: needs {', '.join(miss)}"
            say(f"[{i}/{len(names)}] {name}: skipped ({status[name][9:]})")
            continue
        args = [sys.executable, "-m", f"adaptive_rt.bench.bench_{name}", "--json",
                os.path.join(out, f"{name}.json")] + (["--quick"] if quick else []) + (
            ["--pool", pool] if pool and takes_pool else [])
        say(f"[{i}/{len(names)}] {name}: running (about {quick_s if quick else full_s} s) ...")
        with open(os.path.join(out, f"{name}.log"), "w") as log:
            rc, dt, background = run_measuring_background(args, log)
        status[name] = "ok" if rc == 0 else f"failed (exit {rc}; see {name}.log)"
        conditions[name] = {"seconds": round(dt, 1), "background_cpu_cores": round(background, 3)}
        loaded = f", other processes used {background:.2f} cores meanwhile" if background > LOADED_CORES else ""
        say(f"[{i}/{len(names)}] {name}: {status[name]} in {dt:.0f} s{loaded}")
        with open(os.path.join(out, "conditions.json"), "w") as f:
            json.dump(conditions, f, indent=1)
    return status


def run_measuring_background(args: list[str], log) -> tuple[int, float, float]:
    """Run a benchmark process; (exit code, seconds, cores the rest of the
    machine used meanwhile): all CPUs' busy time less the benchmark's own
    process tree (its rusage, children it waited for included) and ours."""
    import psutil

    def busy() -> float:
        t = psutil.cpu_times()
        return sum(getattr(t, f, 0.0) for f in ("user", "system", "nice", "irq", "softirq", "steal"))
    own0, busy0, t0 = sum(os.times()[:2]), busy(), time.monotonic()
    p = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    _, wstatus, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(wstatus)
    dt = max(time.monotonic() - t0, 1e-6)
    tree = ru.ru_utime + ru.ru_stime
    background = max(0.0, (busy() - busy0 - tree - (sum(os.times()[:2]) - own0)) / dt)
    return p.returncode, dt, background


def _load(out: str, name: str) -> dict | None:
    try:
        with open(os.path.join(out, f"{name}.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _f(v, fmt="{:.3f}", none="–"):
    return none if v is None else fmt.format(v)


def _plt():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        return plt
    except ImportError:
        return None


def write_report(out: str, status: dict[str, str] | None = None, quick: bool = False) -> str:
    """``out/report.md`` (and plots) from the JSON files in ``out``."""
    plt = _plt()
    status = status or {}
    from ..serve.latency import device_info
    here = device_info()["cpu"]
    L = ["# adaptive-rt benchmark report", "",
         f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, {here}; "
         f"Python {platform.python_version()}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
         + ("; **quick mode** (short runs, small pools: indicative only)" if quick else "") + ".", ""]
    # results gathered from several runs: say which CPU measured what (a JSON without "cpu" predates the key)
    by_cpu: dict[str, list[str]] = {}
    for fn in sorted(os.listdir(out)) if os.path.isdir(out) else []:
        d = _load(out, fn[:-5]) if fn.endswith(".json") else None
        if isinstance(d, dict) and isinstance(d.get("machine"), dict):
            by_cpu.setdefault(str(d["machine"].get("cpu", "CPU not recorded")), []).append(fn[:-5])
    if set(by_cpu) - {here}:
        L += ["Measured on: " + "; ".join(f"{cpu} ({', '.join(names)})" for cpu, names in sorted(by_cpu.items()))
              + " — compare ratios, not times, across them.", ""]
    for name, st in status.items():
        if st != "ok":
            L.append(f"- `{name}`: {st}")
    if any(st != "ok" for st in status.values()):
        L.append("")
    lat, sw, mem, ad, dm, tr, ds, cs = (_load(out, n) for n in ("latency", "switch", "memory", "adapt", "daemon",
                                                                "train", "dist", "coldstart"))

    conditions = _load(out, "conditions") or {}

    def load_note(bench: str) -> str:
        c = conditions.get(bench) or {}
        v = c.get("background_cpu_cores")
        return f" — under load ({v:.2f} cores of other processes)" if isinstance(v, (int, float)) and v > LOADED_CORES else ""

    def row(what: str, target: str, value, fmt: str, ok, bench: str) -> str:
        if value is None:
            return f"| {what} | {target} | – | – |"
        verdict = "met" if ok(value) else "**missed**"
        return f"| {what} | {target} | {fmt.format(value)} | {verdict}{load_note(bench)} |"

    # headline: the targets listed in docs/benchmarks.md, each marked met or missed
    L += ["## Headline", "", "| what | target | measured | |", "|---|---|---|---|"]
    if lat:
        for pname, g in (lat.get("by_pool") or {}).items():
            for b in ("", "_b8"):
                for t in (1, 2):
                    if f"geomean_native_over_ort{b}_t{t}" not in g:
                        continue
                    L.append(row(f"latency native / ONNX Runtime, geomean, {pname}"
                                 f"{', batch 8' if b else ''}, {t} thread{'s' if t > 1 else ''}", "≤ 0.85",
                                 g[f"geomean_native_over_ort{b}_t{t}"], "{:.2f}", lambda v: v <= 0.85, "latency"))
        slower = [r for r in lat["entries"] if r.get("ort_ms_p50") and r.get("litert_ms_p50")
                  and r["native_ms_p50"] > min(r["ort_ms_p50"], r["litert_ms_p50"])]
        rows_n = sum(1 for r in lat["entries"] if r.get("ort_ms_p50") and r.get("litert_ms_p50"))
        L.append(row("entries slower than min(ORT, LiteRT) (entry x batch x threads)", "0", (len(slower), rows_n),
                     "{0[0]} of {0[1]}", lambda v: v[0] == 0, "latency"))
    if sw:
        L.append(row("switch between prebuilt plans, p99", "≤ 10 µs", sw.get("native_switch_us_p99"), "{:.2f} µs",
                     lambda v: v <= 10, "switch"))
    if mem:
        L.append(row("RSS holding all K entries / weight bytes", "≤ 1.05", mem.get("native_all_over_weights"), "{:.2f}",
                     lambda v: v <= 1.05, "memory"))
        if "runtime_import_rss_mb" in mem:
            L.append(row("runtime import RSS (no torch)", "≤ 40 MB", mem["runtime_import_rss_mb"],
                         "{:.1f} MB" + (" (torch imported!)" if mem.get("runtime_import_pulls_torch") else ""),
                         lambda v: v <= 40 and not mem.get("runtime_import_pulls_torch"), "memory"))
    if ad:
        p = ad["policies"]
        a_rate, f_rate = p["adaptive"]["slo_violation_rate"], p["fixed_largest"]["slo_violation_rate"]
        L.append(row("SLO violations under contention: adaptive (fixed-largest)", "≤ 2% (≥ 30%)", (a_rate, f_rate),
                     "{0[0]:.2%} ({0[1]:.1%})", lambda v: v[0] <= 0.02 and v[1] >= 0.30, "adapt"))
        L.append(row("monitor overhead at 10 Hz", "≤ 0.5% of a core", ad["monitor_cpu_overhead_pct"], "{:.2f}%",
                     lambda v: v <= 0.5, "adapt"))
    if cs:
        worst_cs = max((r["native_over_ort_wall"] for r in cs.get("by_pool", {"pool": cs}).values()
                        if "native_over_ort_wall" in r), default=None)
        L.append(row("cold start to first answer: native (all K ready) / ORT (largest only), the higher of its pools",
                     "< 1.0", worst_cs, "{:.2f}", lambda v: v < 1.0, "coldstart"))
    if dm:
        worst = min((r["unix_over_inproc_c4"] for r in dm.get("pools", {"pool": dm}).values()
                     if "unix_over_inproc_c4" in r), default=None)
        L.append(row("daemon Unix socket / in-process, 4 clients (the lower of its pools)", "≥ 0.8", worst, "{:.2f}",
                     lambda v: v >= 0.8, "daemon"))
    L.append("")
    if conditions:
        L += ["## Conditions", "",
              "Each benchmark ran in its own process; the CPU the rest of the machine used meanwhile (all CPUs' "
              f"busy time less the benchmark's own processes) is below. Above {LOADED_CORES} cores a figure is "
              "marked *under load*: it is slower, and less stable, than on a quiet device.", "",
              "| benchmark | seconds | other processes, cores | |", "|---|---|---|---|"]
        for name, c in conditions.items():
            v = c.get("background_cpu_cores")
            flag = "**under load**" if isinstance(v, (int, float)) and v > LOADED_CORES else "quiet"
            L.append(f"| {name} | {c.get('seconds')} | {_f(v, '{:.2f}')} | {flag} |")
        secs = [c.get("seconds") for c in conditions.values() if isinstance(c.get("seconds"), (int, float))]
        L += [f"| **all** | {sum(secs):.1f} | | |", ""]

    if lat:
        has_torch = any("torch_ms_p50" in r for r in lat["entries"])
        L += ["## Latency per entry (median ms per call)", "",
              "| pool | entry | MFLOPs | batch | threads | native | ONNX Runtime | LiteRT |"
              + (" torch |" if has_torch else "") + " native/ORT | native/LiteRT |",
              "|---|---|---|---|---|---|---|---|---|---|" + ("---|" if has_torch else "")]
        for r in lat["entries"]:
            L.append(f"| {r['pool']} | {r['entry']} | {r['mflops']:.2f} | {r.get('batch', 1)} | {r['threads']} | "
                     f"{r['native_ms_p50']:.3f} | "
                     f"{_f(r.get('ort_ms_p50'))} | {_f(r.get('litert_ms_p50'))} |"
                     + (f" {_f(r.get('torch_ms_p50'))} |" if has_torch else "")
                     + f" {_f(r.get('native_over_ort'), '{:.2f}')} | {_f(r.get('native_over_litert'), '{:.2f}')} |")
        L.append("")
        if plt:
            rows = [r for r in lat["entries"] if r["threads"] == 1 and r.get("batch", 1) == 1]
            fig, ax = plt.subplots(figsize=(10, 4))
            xs = range(len(rows))
            series = [("native", "native"), ("ort", "ONNX Runtime"), ("litert", "LiteRT")] + (
                [("torch", "torch (eager)")] if has_torch else [])
            wdt = 0.8 / len(series)
            for k, (key, label) in enumerate(series):
                ax.bar([x + (k - (len(series) - 1) / 2) * wdt for x in xs], [r.get(f"{key}_ms_p50") or 0 for r in rows],
                       wdt, label=label)
            ax.set_xticks(list(xs))
            ax.set_xticklabels([f"{r['pool']}\n{r['entry']}" for r in rows], fontsize=7, rotation=30, ha="right")
            ax.set_yscale("log")
            ax.set_ylabel("ms (median, 1 thread, log)")
            ax.legend()
            fig.tight_layout()
            fig.savefig(os.path.join(out, "latency.png"), dpi=100)
            plt.close(fig)
            L += ["![latency per entry by backend](latency.png)", ""]

    if sw:
        L += ["## Switching subnet", "", "| backend | what a switch costs |", "|---|---|",
              f"| native | {sw['native_switch_us_p50']:.2f} µs p50, {sw['native_switch_us_p99']:.2f} µs p99 (prebuilt plans) |",
              f"| ONNX Runtime | {_f(sw.get('ort_create_ms_p50'), '{:.2f} ms')} p50 (a session per entry) |",
              f"| LiteRT | {_f(sw.get('litert_create_ms_p50'), '{:.2f} ms')} p50 (an interpreter per entry) |", ""]
        if plt:
            vals = [sw["native_switch_us_p99"] / 1e3, sw.get("ort_create_ms_p50") or 0, sw.get("litert_create_ms_p50") or 0]
            fig, ax = plt.subplots(figsize=(6, 3))
            ax.bar(["native switch (p99)", "ORT session", "LiteRT interpreter"], vals, color=["#c03030", "#909090", "#3060c0"])
            ax.set_yscale("log")
            ax.set_ylabel("ms (log)")
            fig.tight_layout()
            fig.savefig(os.path.join(out, "switch.png"), dpi=100)
            plt.close(fig)
            L += ["![switch cost](switch.png)", ""]

    if mem:
        L += ["## Memory holding entries ready to run (RSS growth, MB)", "",
              "| pool | K | weights | native, all K | ORT, largest | ORT, all K | LiteRT, largest | LiteRT, all K |",
              "|---|---|---|---|---|---|---|---|"]
        for name, r in mem.get("by_pool", {"pool": mem}).items():
            L.append(f"| {name} | {r['k']} | {r['pool_weight_bytes'] / 1e6:.1f} | {r['native_all_rss_mb']:.1f} | "
                     f"{r['ort_largest_rss_mb']:.1f} | {r['ort_all_rss_mb']:.1f} | {_f(r.get('litert_largest_rss_mb'), '{:.1f}')} | "
                     f"{_f(r.get('litert_all_rss_mb'), '{:.1f}')} |")
        L.append("")
        if plt:
            r = mem
            fig, ax = plt.subplots(figsize=(6, 3.5))
            k = r["k"]
            ax.plot([1, k], [r["ort_largest_rss_mb"], r["ort_all_rss_mb"]], "o-", label="ONNX Runtime", color="#909090")
            if r.get("litert_all_rss_mb"):
                ax.plot([1, k], [r["litert_largest_rss_mb"], r["litert_all_rss_mb"]], "o-", label="LiteRT", color="#3060c0")
            ax.plot([k], [r["native_all_rss_mb"]], "o", label="native (all K share one copy)", color="#c03030", ms=9)
            ax.axhline(r["pool_weight_bytes"] / 1e6, color="k", ls="--", lw=1, label="pool weight bytes")
            ax.set_xlabel("entries held ready")
            ax.set_ylabel("RSS growth (MB)")
            ax.legend(fontsize=8)
            fig.tight_layout()
            fig.savefig(os.path.join(out, "memory.png"), dpi=100)
            plt.close(fig)
            L += ["![memory vs entries held](memory.png)", ""]

    if cs:
        L += ["## Cold start (a fresh process to its first answer)", "",
              "Wall time of the whole process, spawn to exit, and its peak RSS; medians of interleaved runs. "
              "native: import, open the pool (checksum included unless noted), build every entry's plan, answer "
              "once; ORT / LiteRT: import, one session / interpreter for the largest entry, answer once; "
              "baseline: Python with NumPy imported.", "",
              "| pool | K | native, all K | native, no checksum | ONNX Runtime, largest | LiteRT, largest | baseline "
              "| native / ORT | peak RSS native / ORT / LiteRT (MB) |", "|---|---|---|---|---|---|---|---|---|"]
        for name, r in cs.get("by_pool", {"pool": cs}).items():
            L.append(f"| {name} | {r['k']} | {r['native_wall_ms_p50']:.0f} ms | {r['native_nochecksum_wall_ms_p50']:.0f} ms | "
                     f"{r['ort_wall_ms_p50']:.0f} ms | {r['litert_wall_ms_p50']:.0f} ms | {r['baseline_wall_ms_p50']:.0f} ms | "
                     f"{r['native_over_ort_wall']:.2f} | {r['native_peak_rss_mb_p50']:.0f} / {r['ort_peak_rss_mb_p50']:.0f} / "
                     f"{r['litert_peak_rss_mb_p50']:.0f} |")
        L.append("")

    if ad:
        p = ad["policies"]
        L += ["## Adaptation under a CPU hog", "",
              f"SLO p95 {ad['slo_ms']:.2f} ms, {ad['rounds']} round(s) of {ad['seconds_per_run']:.0f} s per policy.", "",
              "| policy | SLO violations | while the hog runs | mean accuracy | calm accuracy | switches per run |",
              "|---|---|---|---|---|---|"]
        for name in ("adaptive", "fixed_largest", "fixed_smallest"):
            q = p[name]
            L.append(f"| {name} | {100 * q['slo_violation_rate']:.2f}% | {100 * q.get('contended_slo_violation_rate', 0):.2f}% | "
                     f"{100 * q['mean_accuracy']:.2f}% | {100 * q['calm_accuracy']:.2f}% | {q['switches']:.1f} |")
        L.append("")
        if os.path.exists(os.path.join(out, "adapt.png")):
            L += ["![adaptation timeline](adapt.png)", ""]

    if dm:
        L += ["## Daemon vs in-process (requests/s)", "",
              "| pool, entry | clients | in-process | Unix socket, shared memory | Unix socket, frames | HTTP "
              "| shared memory p50 / p99 ms |", "|---|---|---|---|---|---|---|"]
        for name, r in dm.get("pools", {"pool": dm}).items():
            for c in (1, 4):
                fr = r.get(f"frames_rps_c{c}")
                L.append(f"| {name}, {r['entry']} | {c} | {r[f'inproc_rps_c{c}']:.0f} | {r[f'unix_rps_c{c}']:.0f} | "
                         f"{'' if fr is None else f'{fr:.0f}'} | {r[f'http_rps_c{c}']:.0f} | "
                         f"{r[f'unix_ms_p50_c{c}']:.2f} / {r[f'unix_ms_p99_c{c}']:.2f} |")
        L.append("")

    if tr:
        L += ["## Training: samplers compared", "",
              f"{tr['dataset']}, {tr['budget_passes']} subnet passes each, {len(tr['seeds'])} seed(s), "
              f"{len(tr['population'])} fixed subnets; hypervolume above {100 * tr['floor']:.0f}%.", "",
              "| sampler | epochs | training s | hypervolume | mean accuracy |", "|---|---|---|---|---|"]
        for name, r in tr["samplers"].items():
            hv, ma = r["hypervolume"], r["mean_accuracy"]
            L.append(f"| {name} | {r['epochs']} | {r['wall_s']['mean']:.0f} | {hv['mean']:.3f} ± {hv['std']:.3f} | "
                     f"{100 * ma['mean']:.2f}% ± {100 * ma['std']:.2f} |")
        L.append("")
        if os.path.exists(os.path.join(out, "train.png")):
            L += ["![accuracy vs MFLOPs fronts](train.png)", ""]
    if ds:
        L += ["## Distributed training (torchrun, gloo)", "",
              f"{ds['dataset']}, PSS, global batch {ds['batch_size']}, epoch {ds['epochs']} timed.", "",
              "| run | processes x threads | BN | epoch s | images/s | vs 1 process (default BN) |",
              "|---|---|---|---|---|---|"]
        for name, r in ds["runs"].items():
            L.append(f"| {name} | {r['processes']} x {r.get('threads_per_process', '?')} | {r['bn']} | "
                     f"{r['epoch_s']:.1f} | {r['images_per_s']:.0f} | {r['speedup_vs_1proc_default']:.2f}x |")
        bp = ds["build_pool"]
        n = ds["nproc"]
        spread = (f" (the one-process run with 1 thread instead of 2 — only summation order changes — differs "
                  f"by {ds['param_rel_diff_threads']:.2e})" if ds.get("param_rel_diff_threads") is not None else "")
        L += ["", f"Parameters of the {n}-process sync-BN run vs the one-process one: relative difference "
              f"{ds['param_rel_diff_sync']:.2e}{spread}. build-pool: 1 process {bp['wall_s_1proc']:.1f} s, {n} processes "
              f"{bp[f'wall_s_{n}proc']:.1f} s ({bp['speedup']:.2f}x), same entries: {bp['same_entries']}."
              + (f" One small all-reduce (a BN layer's sums) takes {ds['allreduce_small_us']['p50_us']:.0f} us "
                 f"(p50) here." if ds.get("allreduce_small_us") else ""), ""]
    if not plt:
        L += ["_Plots need matplotlib (`pip install matplotlib`); the tables above are complete without it._", ""]
    path = os.path.join(out, "report.md")
    with open(path, "w") as f:
        f.write("\n".join(L))
    return path

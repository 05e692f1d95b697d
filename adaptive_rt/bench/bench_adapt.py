"""Adaptation under contention: the same schedule (calm, a real CPU-hog child
process taking a core for the middle 60%, calm again) served by the adaptive policy, the
largest entry fixed and the smallest entry fixed. The shipped MNIST pool
serves the shipped test digits (16 per request, back to back), so the
accuracy of what was served is measured against real labels.

    python -m adaptive_rt.bench.bench_adapt --json PATH [--pool P] [--quick]

Keys: policies.<name>.{slo_violation_rate, mean_accuracy, calm_accuracy,
contended_slo_violation_rate, switches, ...}, monitor_cpu_overhead_pct, slo_ms. The SLO is the demo's:
1.3 x the largest entry's calibrated p95 at its fastest thread count. Runs
alternate the policy order over rounds (full: 2 rounds of 30 s each;
--quick: 1 round of 3 s) and add their requests up. A timeline PNG sits
beside the JSON.
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np

from adaptive_rt.assets import SHIPPED_POOL, demo_images, shipped_path
from adaptive_rt.bench.demo import auto_slo_ms, default_schedule, stream, summarize
from adaptive_rt.serve.runtime import Runtime

from .common import OtherCPU, machine, parse_args, write_json

POLICIES = {"adaptive": "adaptive", "fixed_largest": "fixed-largest", "fixed_smallest": "fixed-smallest"}
BATCH = 16


def _run(pool: str, policy: str, seconds: float, slo: float, x, y, hogs: int):
    schedule = default_schedule(seconds, hogs, calm_frac=0.2)
    with Runtime.open(pool, slo_ms=slo, policy=policy, batch=BATCH) as rt:
        records = stream(rt, x, y, schedule, BATCH, 0.0)
        stats, timeline = rt.stats(), rt.timeline()
        s = summarize(records, slo, schedule, rt.pool, timeline)
    return s, stats, records, timeline, schedule


def main(argv: list[str] | None = None) -> int:
    a = parse_args(__doc__, argv)
    pool = a.pool or shipped_path(SHIPPED_POOL)
    x, y = demo_images()
    seconds, rounds = (3.0, 1) if a.quick else (30.0, 2)
    with Runtime.open(pool, batch=BATCH) as rt:   # the device profile (calibrated quickly if missing)
        if tuple(x.shape[1:]) != rt.input_shape:
            print(f"{pool} takes {rt.input_shape} inputs, not the shipped digits {x.shape[1:]}", file=sys.stderr)
            return 2
        slo = auto_slo_ms(rt)
    other = OtherCPU().start()
    agg: dict[str, dict] = {k: {"requests": 0, "violations": 0, "images": 0, "correct": 0, "calm_images": 0,
                                "calm_correct": 0, "hog_requests": 0, "hog_violations": 0,
                                "switches": 0, "runs": []} for k in POLICIES}
    overhead = []
    keep = {}
    order = list(POLICIES)
    for r in range(rounds):
        for name in (order if r % 2 == 0 else order[::-1]):
            s, stats, records, timeline, schedule = _run(pool, POLICIES[name], seconds, slo, x, y, hogs=1)
            g = agg[name]
            g["requests"] += s["requests"]
            g["violations"] += round(s["slo_violation_rate"] * s["requests"])
            g["images"] += s["images"]
            g["correct"] += round(s["accuracy"] * s["images"])
            for ph in s["phases"]:
                if ph["hogs"] == 0 and ph["requests"]:
                    g["calm_images"] += ph["images"]
                    g["calm_correct"] += round(ph["accuracy"] * ph["images"])
                elif ph["requests"]:
                    g["hog_requests"] += ph["requests"]
                    g["hog_violations"] += round(ph["slo_violation_rate"] * ph["requests"])
            g["switches"] += stats["switches"]
            g["runs"].append(s)
            if name == "adaptive":
                overhead.append(stats["monitor_cpu_overhead_pct"])
            keep[name] = (records, timeline, schedule)
            print(f"round {r + 1} {name:15s} violations {100 * s['slo_violation_rate']:5.1f}%  accuracy "
                  f"{100 * s['accuracy']:.2f}%  switches {stats['switches']}  p95 {s['latency_ms']['p95']:.2f} ms",
                  file=sys.stderr)
    other_cores = other.stop()
    from adaptive_rt.serve.monitor import PsutilSource
    src = PsutilSource()
    c0 = time.thread_time()
    for _ in range(1000):
        src.sample()
    sample_us = (time.thread_time() - c0) * 1e3   # per sample, in us (1000 samples)
    out = {"slo_ms": slo, "batch": BATCH, "monitor_sample_cpu_us": sample_us, "seconds_per_run": seconds, "rounds": rounds, "hogs": 1,
           "pool": os.path.basename(pool), "policies": {}, "machine": machine(),
           "monitor_cpu_overhead_pct": float(np.median(overhead)),
           "other_processes_cpu_cores_incl_hog": other_cores}
    for name, g in agg.items():
        out["policies"][name] = {
            "slo_violation_rate": g["violations"] / max(1, g["requests"]),
            "mean_accuracy": g["correct"] / max(1, g["images"]),
            "calm_accuracy": g["calm_correct"] / max(1, g["calm_images"]),
            "contended_slo_violation_rate": g["hog_violations"] / max(1, g["hog_requests"]),
            "switches": g["switches"] / rounds,
            "requests": g["requests"],
            "phases": [[{k: ph.get(k) for k in ("name", "hogs", "requests", "slo_violation_rate", "accuracy",
                                                "mean_mflops", "other_cpu_cores_mean", "latency_ms")}
                        for ph in run["phases"]] for run in g["runs"]],
        }
    write_json(a.json, out)
    _plot(os.path.splitext(a.json)[0] + ".png", keep, slo)
    return 0


def _plot(path: str, keep: dict, slo: float) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plot", file=sys.stderr)
        return
    fig, ax = plt.subplots(3, 1, figsize=(10, 7.5), sharex=True)
    colours = {"fixed_largest": "#909090", "fixed_smallest": "#60a060", "adaptive": "#c03030"}
    sched = keep["adaptive"][2]
    for a_ in ax:
        for ph in sched:
            if ph.hogs:
                a_.axvspan(ph.start_s, ph.end_s, color="#e0e0f5", lw=0)
    for name in ("fixed_largest", "fixed_smallest", "adaptive"):
        recs = keep[name][0]
        ax[0].plot([r.t for r in recs], [r.ms for r in recs], ".", ms=1.5, color=colours[name], label=name)
    ax[0].axhline(slo, color="k", ls="--", lw=1, label=f"SLO {slo:.2f} ms")
    ax[0].set_ylim(0, 4 * slo)
    ax[0].set_ylabel("request latency (ms)")
    ax[0].legend(loc="upper right", fontsize=8, markerscale=6)
    recs = keep["adaptive"][0]
    ids = sorted({r.entry for k in keep.values() for r in k[0]})
    ax[1].step([r.t for r in recs], [ids.index(r.entry) for r in recs], where="post", color=colours["adaptive"])
    ax[1].set_yticks(range(len(ids)))
    ax[1].set_yticklabels(ids)
    ax[1].set_ylabel("adaptive: entry")
    tl = keep["adaptive"][1]
    ax[2].plot([t["t"] for t in tl], [t["other_cpu_cores"] for t in tl], color="#3060c0")
    ax[2].set_ylabel("other processes\nCPU (cores)")
    ax[2].set_xlabel("time (s); shaded: CPU-hog child process running")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())

"""Every benchmark runs in --quick mode and writes the keys DESIGN.md section 8
promises (values are measured, so only their presence and sanity are checked)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CONTRACT = {
    "bench_latency": ["entries", "geomean_native_over_ort_t1", "geomean_native_over_ort_t2",
                      "geomean_native_over_litert_t1"],
    "bench_switch": ["native_switch_us_p50", "native_switch_us_p99", "ort_create_ms_p50", "litert_create_ms_p50"],
    "bench_memory": ["k", "pool_weight_bytes", "native_all_rss_mb", "ort_all_rss_mb", "ort_largest_rss_mb",
                     "litert_all_rss_mb"],
    "bench_threads": ["entries"],
    "bench_poolfile": ["pools"],
    "bench_train": ["samplers"],
    "bench_adapt": ["policies", "monitor_cpu_overhead_pct", "slo_ms"],
    "bench_daemon": ["inproc_rps_c4", "unix_rps_c4", "http_rps_c4", "unix_ms_p99_c4"],
}


@pytest.mark.parametrize("name", sorted(CONTRACT))
def test_benchmark_quick_writes_contract_keys(tmp_path, name):
    out = tmp_path / f"{name}.json"
    r = subprocess.run([sys.executable, "-m", f"benchmarks.{name}", "--json", str(out), "--quick"],
                       cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-3000:]
    d = json.loads(out.read_text())
    for key in CONTRACT[name]:
        assert key in d, key
    if name == "bench_adapt":
        pol = d["policies"]
        for p in ("adaptive", "fixed_largest", "fixed_smallest"):
            assert {"slo_violation_rate", "mean_accuracy", "switches"} <= set(pol[p])
            assert 0.9 < pol[p]["mean_accuracy"] <= 1.0            # real digits, real labels
        assert pol["fixed_largest"]["switches"] == 0 == pol["fixed_smallest"]["switches"]
        # the hog hurts the fixed largest entry far more than the adaptive runtime
        assert pol["adaptive"]["slo_violation_rate"] < pol["fixed_largest"]["slo_violation_rate"]
        assert 0 <= d["monitor_cpu_overhead_pct"] < 5
    if name == "bench_daemon":
        assert all(d[k] > 0 for k in CONTRACT[name])
    if name == "bench_latency":
        rows = d["entries"]
        assert rows and {"entry", "mflops", "threads", "native_ms_p50", "native_ms_p99", "ort_ms_p50",
                         "ort_ms_p99"} <= set(rows[0])
        assert all(r["native_ms_p50"] > 0 and r["ort_ms_p50"] > 0 and r["litert_ms_p50"] > 0 for r in rows)
        assert d["geomean_native_over_litert_t1"] > 0
        assert {r["threads"] for r in rows} == {1, 2}
    if name == "bench_switch":
        assert 0 < d["native_switch_us_p50"] <= d["native_switch_us_p99"]
        assert d["ort_create_ms_p50"] > 0 and d["litert_create_ms_p50"] > 0
    if name == "bench_memory":
        assert d["litert_all_rss_mb"] > 0 and d["native_all_rss_mb"] > 0
    if name == "bench_train":
        assert set(d["samplers"]) == {"uniform", "rss", "sandwich", "ps", "pss"}
        for r in d["samplers"].values():
            assert r["wall_s"] > 0 and 0 <= r["hypervolume"] <= 1 and r["entries"]
    if name == "bench_memory":
        assert d["native_all_rss_mb"] > 0 and d["ort_all_rss_mb"] > 0 and d["k"] >= 2

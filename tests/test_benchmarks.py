"""Every benchmark runs in --quick mode and writes the keys of the benchmark contract (docs/benchmarks.md)
promises (values are measured, so only their presence and sanity are checked);
the eight of the report run once, through `adaptive-rt bench --quick`, which
must write a report with every section."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


pytestmark = pytest.mark.slow   # end-to-end: outside the fast set (pytest -m 'not slow')
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
    "bench_transfer": ["subnets", "runs", "steps", "summary", "transfer_minus_scratch_points"],
    "bench_semi": ["subnets", "runs", "steps", "summary", "fixmatch_minus_labelled_only_points"],
    "bench_dist": ["runs", "param_rel_diff_sync", "build_pool"],
    "bench_adapt": ["policies", "monitor_cpu_overhead_pct", "slo_ms"],
    "bench_daemon": ["inproc_rps_c4", "unix_rps_c4", "http_rps_c4", "unix_ms_p99_c4"],
    "bench_opprofile": ["pool", "entry", "native", "ort", "native_over_ort_total"],
    "bench_coldstart": ["native_wall_ms_p50", "native_nochecksum_wall_ms_p50", "ort_wall_ms_p50",
                        "litert_wall_ms_p50", "native_over_ort_wall", "native_peak_rss_mb_p50", "by_pool"],
}


REPORTED = {"bench_latency": "latency", "bench_switch": "switch", "bench_memory": "memory",
            "bench_adapt": "adapt", "bench_daemon": "daemon", "bench_train": "train", "bench_dist": "dist",
            "bench_coldstart": "coldstart"}


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    """`adaptive-rt bench --quick` once: every benchmark of the report, then the report."""
    out = tmp_path_factory.mktemp("bench")
    r = subprocess.run([sys.executable, "-m", "adaptive_rt", "bench", "--quick", "--out", str(out)],
                       capture_output=True, text=True, timeout=1500)
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-3000:])
    assert "report.md" in r.stdout and "[8/8]" in r.stdout
    return out


def test_report_has_every_section(report_dir):
    text = (report_dir / "report.md").read_text()
    for section in ("## Headline", "## Latency per entry", "## Switching subnet", "## Memory holding entries",
                    "## Adaptation under a CPU hog", "## Daemon vs in-process", "## Training: samplers compared",
                    "## Distributed training", "## Cold start", "## Conditions"):
        assert section in text, section
    head = text.split("## Headline")[1].split("##")[0]
    rows = [ln for ln in head.splitlines() if ln.startswith("| ") and not ln.startswith("| what")]
    assert rows and all(("| met" in r or "| **missed**" in r) for r in rows), rows   # a verdict on every row
    cond = json.loads((report_dir / "conditions.json").read_text())
    assert set(cond) == set(REPORTED.values()) and all(c["background_cpu_cores"] >= 0 for c in cond.values())
    for png in ("latency.png", "switch.png", "memory.png", "adapt.png", "train.png"):
        assert (report_dir / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
        assert f"({png})" in text
    assert "skipped" not in text and "failed" not in text


@pytest.mark.parametrize("name", sorted(CONTRACT))
def test_benchmark_quick_writes_contract_keys(tmp_path, name, request):
    if name in REPORTED:
        out = request.getfixturevalue("report_dir") / f"{REPORTED[name]}.json"
    else:
        out = tmp_path / f"{name}.json"
        r = subprocess.run([sys.executable, "-m", f"adaptive_rt.bench.{name}", "--json", str(out), "--quick"],
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
        # the rates are the benchmark's result, reported in the docs; a quick run on a shared
        # machine is no place to compare them
        assert all(0 <= pol[p]["slo_violation_rate"] <= 1 for p in pol)
        assert 0 <= d["monitor_cpu_overhead_pct"] < 100
    if name == "bench_daemon":
        assert all(d[k] > 0 for k in CONTRACT[name])
    if name == "bench_latency":
        rows = d["entries"]
        assert rows and {"entry", "mflops", "threads", "native_ms_p50", "native_ms_p99", "ort_ms_p50",
                         "ort_ms_p99"} <= set(rows[0])
        assert all(r["native_ms_p50"] > 0 and r["ort_ms_p50"] > 0 and r["litert_ms_p50"] > 0 for r in rows)
        assert d["geomean_native_over_litert_t1"] > 0
        assert {r["threads"] for r in rows} == {1, 2}
        # batch 8 on the 224-class pool (a quick run: its first entry), batch 1 everywhere, each with its geomeans
        b8 = [r for r in rows if r["batch"] == 8]
        assert {r["pool"] for r in b8} == {"mbv3-224"} and {r["threads"] for r in b8} == {1, 2}
        assert {r["pool"] for r in rows if r["batch"] == 1} == {"mbv3-tiny28", "mbv3-224"}
        assert d["by_pool"]["mbv3-224"]["geomean_native_over_ort_b8_t2"] > 0
        assert "geomean_native_over_ort_b8_t1" not in d["by_pool"]["mbv3-tiny28"]
    if name == "bench_switch":
        assert 0 < d["native_switch_us_p50"] <= d["native_switch_us_p99"]
        assert d["ort_create_ms_p50"] > 0 and d["litert_create_ms_p50"] > 0
    if name == "bench_memory":
        assert d["litert_all_rss_mb"] > 0 and d["native_all_rss_mb"] > 0
    if name == "bench_train":
        assert set(d["samplers"]) == {"uniform", "rss", "sandwich", "ps", "pss"}
        assert len(d["population"]) == d["buckets"] * d["per_bucket"] + 2
        for r in d["samplers"].values():
            assert all(0 <= h <= 1 for h in r["hypervolume"]["runs"]) and len(r["bucket_accuracy"]) == d["buckets"]
            assert r["front"][0] and all(len(t) == len(d["population"]) for t in r["test_accuracy"])
            # the same compute, up to half an epoch's rounding (epochs = the nearest whole number)
            per_epoch = max(r["passes"]) / r["epochs"]
            assert all(abs(p - d["budget_passes"]) <= per_epoch / 2 + 1 for p in r["passes"]), (r["passes"], per_epoch)
    if name == "bench_memory":
        assert d["native_all_rss_mb"] > 0 and d["ort_all_rss_mb"] > 0 and d["k"] >= 2
    if name == "bench_semi":
        assert d["steps"]["fixmatch"] == d["steps"]["labelled-only"] > 0    # the same steps
        assert all(0 <= c <= 1 for c in d["fixmatch_confident_share_last_epoch"].values())
    if name == "bench_transfer":
        assert d["steps"]["transfer"] == d["steps"]["scratch"] > 0          # the same compute
        for mode in ("transfer", "scratch"):
            accs = d["runs"][mode]["0"]
            assert len(accs) == len(d["subnets"]) == 6 and all(0 <= a <= 1 for a in accs)
    if name == "bench_dist":
        assert {"1proc_sync", "2proc_sync"} <= set(d["runs"])
        assert all(r["epoch_s"] > 0 and r["images_per_s"] > 0 for r in d["runs"].values())
        assert d["param_rel_diff_sync"] < 0.05                   # the same training, up to rounding
        assert d["build_pool"]["same_entries"] and d["build_pool"]["same_accuracy"]


def _quick_on_shipped_pool(tmp_path, bench: str, *args: str) -> dict:
    """The JSON of ``python -m adaptive_rt.bench.<bench> --quick --pool mnist5k-mbv3 ARGS``."""
    out = tmp_path / f"{bench}.json"
    r = subprocess.run([sys.executable, "-m", f"adaptive_rt.bench.{bench}", *args, "--quick", "--pool",
                        "mnist5k-mbv3", "--json", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(out.read_text())


def test_latency_int8_quick_on_the_shipped_pool(tmp_path):
    """bench_latency --int8: every int8 entry against float32, ORT int8 (QDQ) and LiteRT int8 (full integer)."""
    d = _quick_on_shipped_pool(tmp_path, "bench_latency", "--int8")
    rows = d["entries"]
    from adaptive_rt.io.poolfile import load_pool
    n_int8 = sum(e.is_int8 for e in load_pool("mnist5k-mbv3").entries)
    assert n_int8 >= 3 and len(rows) == 2 * n_int8 and {r["threads"] for r in rows} == {1, 2}
    for row in rows:
        assert row["int8_entry"] == row["entry"] + "-int8"
        for k in ("float32", "int8", "ort_int8", "litert_int8"):
            assert 0 < row[f"{k}_ms_p50"] <= row[f"{k}_ms_p99"], (row["entry"], k)
        best = min(row["ort_int8_ms_p50"], row["litert_int8_ms_p50"])
        assert row["int8_over_best_peer"] == pytest.approx(row["int8_ms_p50"] / best)
    assert d["geomean_int8_over_best_peer"] > 0 and "LiteRT" in d["peers"]


def test_int8_profile_and_memory_breakdown_quick(tmp_path):
    """bench_opprofile --int8 (float32 vs int8 per step of the largest entry) and
    bench_memory --int8 (RSS of all K int8 entries, with where it goes)."""
    d = _quick_on_shipped_pool(tmp_path, "bench_opprofile", "--int8")
    assert d["int8_entry"] == d["entry"] + "-int8" and d["speedup_total"] > 0
    for prec in ("float32", "int8"):
        steps = d[prec]["steps"]
        assert steps and d[prec]["total_ms"] == pytest.approx(sum(s["ms"] for s in steps))
    assert any(s["kernels"].startswith("i8-") for s in d["int8"]["steps"])
    assert sum(v["int8"] for v in d["by_block_ms"].values()) == pytest.approx(d["int8"]["total_ms"])
    d = _quick_on_shipped_pool(tmp_path, "bench_memory", "--int8")
    b = d["breakdown_mb"]
    from adaptive_rt.io.poolfile import load_pool
    assert d["k"] == sum(e.is_int8 for e in load_pool("mnist5k-mbv3").entries) and d["native_all_rss_mb"] > 0 and b["pool_file"] * 1e6 == d["pool_file_bytes"]
    assert b["opened"] + b["plans"] + b["runs"] == pytest.approx(d["native_all_rss_mb"])
    assert b["packed_depthwise"] >= 0 and b["arena"] > 0


def test_op_profile_rows_of_blocks_run_as_one_step(tmp_path):
    """At 224x224 the plan runs the stem, the first block and the second as
    one step (the second makes the first's rows as it needs them): the
    native profile reports them as one row "stem+s0.b0+s1.b0" holding all of
    their time, every block appears in one row only, and the other profile's
    blocks are summed into the same rows."""
    from adaptive_rt.bench.bench_opprofile import merge_fused_blocks, native_profile
    from adaptive_rt.io.poolfile import load_pool, write_pool
    from adaptive_rt.io.randompool import random_pool
    from adaptive_rt.model.presets import get_space
    space = get_space("mbv3-224")
    entries, tensors = random_pool(space, 0, seed=0, configs=[space.max_config()])
    write_pool(tmp_path / "p.safetensors", space, entries, tensors)
    pool = load_pool(tmp_path / "p.safetensors")
    n = native_profile(pool, pool.entries[0].id, 2)
    rows = list(n["by_block_ms"])
    assert rows[0] == "stem+s0.b0+s1.b0", rows
    blocks = [b for r in rows for b in r.split("+")]
    assert len(blocks) == len(set(blocks))
    assert sum(n["by_block_ms"].values()) == pytest.approx(n["total_ms"]) == pytest.approx(
        sum(s["ms"] for s in n["steps"]))
    assert any("+pulls" in k for k in n["by_kind_ms"])
    other = {"by_block_ms": {b: 1.0 for b in blocks}}
    merge_fused_blocks(n, other)
    assert other["by_block_ms"] == {r: float(len(r.split("+"))) for r in rows}

"""Hostile inputs outside the pool file and the daemon's protocols: device
profiles, traces, budgets, a closed runtime (the pool-file cases are in
test_poolfile.py, the engine's in test_engine.py, the daemon's in
test_daemon.py)."""
from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest

from adaptive_rt.io.poolfile import load_pool
from adaptive_rt.serve.monitor import MonitorError, TraceSource
from adaptive_rt.serve.profile import default_profile_path
from adaptive_rt.serve.runtime import Runtime


def _runtime(path, **kw):
    return Runtime.open(path, monitor=TraceSource([{"time": 0, "other_cpu_cores": 0}]), max_threads=1,
                        controller=False, **kw)


def _good_profile(tiny_pool_path) -> dict:
    with _runtime(tiny_pool_path):
        pass                                              # measures a quick profile and saves it beside the pool
    return json.loads(open(_profile_path(tiny_pool_path)).read())


def _profile_path(pool_path) -> str:
    return default_profile_path(load_pool(pool_path).sha256)


@pytest.mark.parametrize("spoil", [
    lambda d: d["entries"]["e0"].update(memory_bytes=1e999),             # OverflowError before
    lambda d: d.update(entries=[]),                                       # AttributeError in merge before
    lambda d: [r["batches"]["1"].update({"8": r["batches"]["1"].pop("1")}) for r in d["entries"].values()],
    lambda d: d["entries"]["e1"].update(memory_bytes=-1),
    lambda d: d.update(schema=99),
])
def test_a_malformed_profile_is_measured_anew(tiny_pool_path, spoil):
    d = _good_profile(tiny_pool_path)
    spoil(d)
    text = json.dumps(d).replace("Infinity", "1e999")
    path = _profile_path(tiny_pool_path)
    with open(path, "w") as f:
        f.write(text)
    with _runtime(tiny_pool_path) as rt:
        assert rt.infer(np.zeros((28, 28, 1), np.float32))[1] in rt.entries
    assert json.loads(open(path).read())["entries"]["e0"]["memory_bytes"] > 0    # replaced by a good one


def test_a_fifo_at_the_profile_path_does_not_block(tiny_pool_path):
    path = _profile_path(tiny_pool_path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if os.path.exists(path):
        os.unlink(path)
    os.mkfifo(path)
    with _runtime(tiny_pool_path) as rt:                 # would wait forever for a writer before
        assert rt.entries


def test_traces_refuse_deep_json_and_huge_csv_fields(tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(MonitorError, match="deep"):
        TraceSource(path=str(deep))
    wide = tmp_path / "wide.csv"
    wide.write_text("time,other_cpu_cores\n0," + "1" * 200_000 + "\n")
    with pytest.raises(MonitorError, match="invalid trace"):
        TraceSource(path=str(wide))
    extra = tmp_path / "extra.csv"
    extra.write_text("time,other_cpu_cores\n0,0.5,80\n")              # found by the trace fuzzer
    with pytest.raises(MonitorError, match="more fields than the header"):
        TraceSource(path=str(extra))
    fifo = tmp_path / "t.json"
    os.mkfifo(fifo)
    with pytest.raises(MonitorError, match="not a regular file"):
        TraceSource(path=str(fifo))


@pytest.mark.parametrize("field, value, needle", [
    ("hold_s", math.nan, "hold_s"), ("battery_low_pct", math.nan, "battery_low_pct"),
    ("memory_cap_bytes", -5, "memory_cap_bytes"), ("thermal_mflops_cap", -1, "thermal_mflops_cap"),
    ("slo_ms", "5", "must be a number"), ("headroom", 0, "headroom"), ("nonsense", 1, "unknown budget field"),
])
def test_set_budget_refuses_bad_values(tiny_pool_path, field, value, needle):
    with _runtime(tiny_pool_path) as rt:
        before = rt.budget
        with pytest.raises(ValueError, match=needle):
            rt.set_budget(**{field: value})
        assert rt.budget == before
        rt.set_budget(slo_ms=5.0, memory_cap="64MB", hold_s=0.5)
        assert rt.budget.slo_ms == 5.0 and rt.budget.memory_cap_bytes == 64_000_000


def test_a_closed_runtime_refuses_everything(tiny_pool_path):
    rt = _runtime(tiny_pool_path)
    rt.close()
    for call in (lambda: rt.pin("e0"), lambda: rt.set_budget(slo_ms=1.0),
                 lambda: rt.infer(np.zeros((28, 28, 1), np.float32))):
        with pytest.raises(RuntimeError, match="closed"):
            call()

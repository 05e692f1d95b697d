"""Resource monitor: the live psutil source on this machine (which has no
battery or temperature sensors), sysfs fill-ins on a fake sysfs tree, trace
replay from lists, JSON and CSV, and bad traces."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from adaptive_rt.serve.monitor import (MonitorError, PsutilSource, ResourceMonitor, ResourceSnapshot, Sysfs,
                                 TraceSource, make_source)


def test_psutil_source_reads_this_machine():
    src = make_source("psutil")
    time.sleep(0.05)
    s = src.sample()
    assert isinstance(s, ResourceSnapshot)
    assert s.cpu_count >= 1 and 0 <= s.system_cpu_cores <= s.cpu_count
    assert s.other_cpu_cores >= 0 and s.self_cpu_cores >= 0
    assert s.mem_available_bytes and s.mem_available_bytes > 0
    # sensors this machine lacks read as None, not as an error or a zero
    for v in (s.battery_percent, s.temperature_c, s.power_w):
        assert v is None or v >= 0


def test_other_processes_cpu_is_seen():
    src = PsutilSource()
    hog = subprocess.Popen([sys.executable, "-c", "import time\nt=time.time()\nwhile time.time()-t<3: pass"])
    try:
        time.sleep(0.3)
        src.sample()
        time.sleep(0.5)
        s = src.sample()
    finally:
        hog.kill()
        hog.wait()
    assert s.other_cpu_cores >= 0.6, s


def test_sysfs_fill_ins(tmp_path):
    bat = tmp_path / "class/power_supply/BAT0"
    bat.mkdir(parents=True)
    (bat / "type").write_text("Battery\n")
    (bat / "capacity").write_text("17\n")
    (bat / "status").write_text("Discharging\n")
    ac = tmp_path / "class/power_supply/AC"
    ac.mkdir(parents=True)
    (ac / "type").write_text("Mains\n")
    for i, t in enumerate(["45000", "81500", "junk"]):
        z = tmp_path / f"class/thermal/thermal_zone{i}"
        z.mkdir(parents=True)
        (z / "temp").write_text(t)
    rail = tmp_path / "bus/i2c/drivers/ina3221x/1-0040/iio:device0"
    rail.mkdir(parents=True)
    (rail / "in_power0_input").write_text("2500\n")
    (rail / "in_power1_input").write_text("1500\n")
    fs = Sysfs(str(tmp_path))
    assert fs.battery() == (17.0, False)
    assert fs.temperature() == 81.5
    assert fs.power() == pytest.approx(4.0)
    s = PsutilSource(sysfs_root=str(tmp_path)).sample()
    assert s.temperature_c is not None and s.power_w == pytest.approx(4.0)
    empty = Sysfs(str(tmp_path / "nothing"))
    assert empty.battery() == (None, None) and empty.temperature() is None and empty.power() is None


def test_trace_replay_step_function():
    tr = TraceSource([{"time": 0, "other_cpu_cores": 0}, {"time": 2, "other_cpu_cores": 1.0, "temperature_c": 85},
                      {"time": 4, "other_cpu_cores": 0.2, "battery_percent": 15, "plugged": False}], cpu_count=2)
    assert tr.at(1.9).other_cpu_cores == 0 and tr.at(1.9).temperature_c is None
    assert tr.at(2.0).other_cpu_cores == 1.0 and tr.at(3).temperature_c == 85
    s = tr.at(10)
    assert s.battery_percent == 15 and s.plugged is False and s.cpu_count == 2
    loop = TraceSource([{"time": 0, "other_cpu_cores": 0}, {"time": 1, "other_cpu_cores": 2}], loop=True)
    assert loop.at(1.5).other_cpu_cores == 2 and loop.at(2.2).other_cpu_cores == 0


def test_trace_files(tmp_path):
    j = tmp_path / "t.json"
    j.write_text(json.dumps([{"time": 0, "other_cpu_cores": 0.5}, {"time": 1, "other_cpu_cores": 1.5}]))
    assert TraceSource(path=str(j)).at(1).other_cpu_cores == 1.5
    c = tmp_path / "t.csv"
    c.write_text("time,other_cpu_cores,battery_percent,plugged\n0,0.1,,\n3,1.0,50,true\n")
    t = TraceSource(path=str(c))
    assert t.at(0).battery_percent is None and t.at(3).battery_percent == 50 and t.at(3).plugged is True


@pytest.mark.parametrize("rows, needle", [
    ([], "no readings"),
    ([{"time": 0}], "missing field 'other_cpu_cores'"),
    ([{"time": 0, "other_cpu_cores": "x"}], "is not a number"),
    ([{"time": 0, "other_cpu_cores": -1}], "non-negative"),
    ([{"time": 0, "other_cpu_cores": float("nan")}], "finite"),
    ([{"time": 1, "other_cpu_cores": 0}, {"time": 0, "other_cpu_cores": 0}], "ordered by time"),
    ([{"time": 0, "other_cpu_cores": 0, "gpu": 1}], "unknown field 'gpu'"),
    (["nope"], "not an object"),
])
def test_bad_traces(rows, needle):
    with pytest.raises(MonitorError, match=needle):
        TraceSource(rows)


def test_bad_trace_files(tmp_path):
    with pytest.raises(MonitorError, match="cannot read"):
        TraceSource(path=str(tmp_path / "missing.json"))
    p = tmp_path / "bad.json"
    p.write_text("{")
    with pytest.raises(MonitorError, match="trace: invalid JSON"):
        TraceSource(path=str(p))
    with pytest.raises(MonitorError, match="unknown monitor source"):
        make_source("nope")


def test_monitor_thread_samples_at_its_rate_and_measures_itself():
    tr = TraceSource([{"time": 0, "other_cpu_cores": 0}, {"time": 0.2, "other_cpu_cores": 1}])
    with ResourceMonitor(tr, hz=50, keep=100) as mon:
        assert mon.latest() is not None
        time.sleep(0.5)
        assert mon.latest().other_cpu_cores == 1
        n = len(mon.history())
    assert n >= 2, n             # sampled again and again (how often depends on the machine's load)
    assert 0 <= mon.overhead_pct() < 100
    with pytest.raises(MonitorError, match="rate"):
        ResourceMonitor(tr, hz=0)


def test_live_monitor_overhead_is_small():
    with ResourceMonitor("psutil", hz=10) as mon:
        time.sleep(1.5)
    assert len(mon.history()) >= 2
    assert mon.overhead_pct() < 25.0   # CPU of the sampling thread itself (bench_adapt reports the real figure)
    assert mon.errors == 0

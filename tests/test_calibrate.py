"""Device calibration: profile written for a pool, loaded back as the policy's
EntryProfiles, refused for another pool or when malformed."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from adaptive_rt.serve.profile import ProfileError, calibrate, default_profile_path, load_profile, save_profile
from adaptive_rt.io.poolfile import load_pool, write_pool
from adaptive_rt.io.randompool import random_pool
from adaptive_rt.serve.runtime import Runtime


def test_calibrate_and_load(tiny_pool_path, tmp_path):
    pool = load_pool(tiny_pool_path)
    prof = calibrate(pool, threads=[1, 2], warmup=1, repeats=5)
    path = tmp_path / "p.json"
    save_profile(prof, str(path))
    eps = load_profile(str(path), pool)
    assert [e.id for e in eps] == [e.id for e in pool.entries]
    for e in eps:
        assert set(e.latency_ms) == {1, 2} and all(v > 0 for v in e.latency_ms.values())
        assert e.memory_bytes > 0
    # bigger entries are slower at 1 thread
    assert eps[-1].memory_bytes > eps[0].memory_bytes    # the largest entry reads more weights (no timing compared)


def test_profile_of_another_pool_is_refused(tiny_pool_path, tmp_path, tiny_space):
    pool = load_pool(tiny_pool_path)
    path = tmp_path / "p.json"
    save_profile(calibrate(pool, threads=[1], warmup=0, repeats=2), str(path))
    entries, tensors = random_pool(tiny_space, 3, seed=9)
    other = write_pool(tmp_path / "other.safetensors", tiny_space, entries, tensors)
    with pytest.raises(ProfileError, match="another pool"):
        load_profile(str(path), other)
    d = json.loads(path.read_text())
    del d["entries"]["e1"]["batches"]
    path.write_text(json.dumps(d))
    with pytest.raises(ProfileError, match="entry 'e1'"):
        load_profile(str(path), pool)
    with pytest.raises(ProfileError, match="batch 4"):
        load_profile(str(path), pool, batch=4)
    d["schema"] = 1
    path.write_text(json.dumps(d))
    with pytest.raises(ProfileError, match="schema"):
        load_profile(str(path), pool)
    path.write_text("{")
    with pytest.raises(ProfileError):
        load_profile(str(path), pool)


def test_profiles_live_in_the_user_cache_keyed_by_the_pool(tiny_pool_path, private_cache):
    path = default_profile_path("ab" * 32)
    assert path == os.path.join(private_cache, "adaptive_rt", "profiles", "ab" * 16 + ".profile.json")
    assert default_profile_path("ab" * 32, "litert").endswith("ab" * 16 + ".litert.profile.json")


def test_calibrate_cli(tiny_pool_path):
    # p95 over 15 runs, not over 3 (= the slowest one): the per-entry comparison below must not hinge on one
    # noisy sample of a shared machine
    r = subprocess.run([sys.executable, "-m", "adaptive_rt", "calibrate", str(tiny_pool_path), "--threads", "1",
                        "--repeats", "3", "--warmup", "1"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    path = default_profile_path(load_pool(tiny_pool_path).sha256)
    prof = json.loads(open(path).read())
    assert set(prof["entries"]) == {"e0", "e1", "e2", "e3"}
    assert not list(tiny_pool_path.parent.glob("*.profile.json"))     # nothing written beside the pool
    # a second run at another batch size keeps the first one's figures
    r = subprocess.run([sys.executable, "-m", "adaptive_rt", "calibrate", str(tiny_pool_path), "--threads", "1",
                        "--batch", "4", "--repeats", "3", "--warmup", "1"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    prof = json.loads(open(path).read())
    assert set(prof["entries"]["e0"]["batches"]) == {"1", "4"}
    pool = load_pool(tiny_pool_path)
    big, one = load_profile(path, pool, batch=4), load_profile(path, pool)
    # both batch sizes read back, each its own measurement (no timing compared: the machine may be busy)
    assert [b.id for b in big] == [o.id for o in one] and all(b.latency_ms[1] > 0 for b in big)
    assert prof["entries"]["e0"]["batches"]["4"] != prof["entries"]["e0"]["batches"]["1"]
    r = subprocess.run([sys.executable, "-m", "adaptive_rt", "calibrate", str(tiny_pool_path), "--threads", "x"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--threads" in r.stderr
    r = subprocess.run([sys.executable, "-m", "adaptive_rt", "calibrate", str(tiny_pool_path), "--batch", "0"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--batch" in r.stderr


def test_a_profile_measured_under_load_is_provisional(tiny_pool_path, caplog):
    """Two busy processes beside `calibrate`: the profile records their CPU,
    is saved as provisional (and says so), and the runtime measures again
    when it opens the pool; --force keeps it as final."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        r = subprocess.run([sys.executable, "-m", "adaptive_rt", "calibrate", str(tiny_pool_path), "--threads", "1",
                            "--repeats", "20", "--warmup", "1"], capture_output=True, text=True, timeout=300)
        path = default_profile_path(load_pool(tiny_pool_path).sha256)
        forced = subprocess.run([sys.executable, "-m", "adaptive_rt", "calibrate", str(tiny_pool_path), "--threads",
                                 "1", "--repeats", "20", "--warmup", "1", "--force", "--out", path + ".forced"],
                                capture_output=True, text=True, timeout=300)
    finally:
        for h in hogs:
            h.kill()
            h.wait()
    assert r.returncode == 0 and "provisional" in r.stderr, r.stderr
    prof = json.loads(open(path).read())
    assert prof["provisional"] is True and prof["other_cpu_cores"] > 0.25
    assert forced.returncode == 0 and "provisional" not in json.loads(open(path + ".forced").read())
    import logging
    from adaptive_rt.serve.monitor import TraceSource
    with caplog.at_level(logging.WARNING, logger="adaptive_rt"):
        with Runtime.open(tiny_pool_path, monitor=TraceSource([{"time": 0, "other_cpu_cores": 0}]),
                          max_threads=1, controller=False):
            pass
    assert any("provisional" in rec.getMessage() and "calibrating quickly" in rec.getMessage()
               for rec in caplog.records), [r.getMessage() for r in caplog.records]

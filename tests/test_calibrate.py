"""Device calibration: profile written for a pool, loaded back as the policy's
EntryProfiles, refused for another pool or when malformed."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from adaptive_rt.serve.profile import ProfileError, calibrate, default_profile_path, load_profile, save_profile
from adaptive_rt.io.poolfile import load_pool, write_pool
from adaptive_rt.io.randompool import random_pool


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


def test_default_path_is_beside_the_pool(tiny_pool_path):
    assert default_profile_path(str(tiny_pool_path), "ab" * 32) == str(tiny_pool_path) + ".profile.json"


def test_calibrate_cli(tiny_pool_path):
    # p95 over 15 runs, not over 3 (= the slowest one): the per-entry comparison below must not hinge on one
    # noisy sample of a shared machine
    r = subprocess.run([sys.executable, "-m", "adaptive_rt", "calibrate", str(tiny_pool_path), "--threads", "1",
                        "--repeats", "3", "--warmup", "1"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    prof = json.loads((tiny_pool_path.parent / (tiny_pool_path.name + ".profile.json")).read_text())
    assert set(prof["entries"]) == {"e0", "e1", "e2", "e3"}
    # a second run at another batch size keeps the first one's figures
    r = subprocess.run([sys.executable, "-m", "adaptive_rt", "calibrate", str(tiny_pool_path), "--threads", "1",
                        "--batch", "4", "--repeats", "3", "--warmup", "1"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    prof = json.loads((tiny_pool_path.parent / (tiny_pool_path.name + ".profile.json")).read_text())
    assert set(prof["entries"]["e0"]["batches"]) == {"1", "4"}
    pool = load_pool(tiny_pool_path)
    big, one = load_profile(str(tiny_pool_path) + ".profile.json", pool, batch=4), \
        load_profile(str(tiny_pool_path) + ".profile.json", pool)
    # both batch sizes read back, each its own measurement (no timing compared: the machine may be busy)
    assert [b.id for b in big] == [o.id for o in one] and all(b.latency_ms[1] > 0 for b in big)
    assert prof["entries"]["e0"]["batches"]["4"] != prof["entries"]["e0"]["batches"]["1"]
    r = subprocess.run([sys.executable, "-m", "adaptive_rt", "calibrate", str(tiny_pool_path), "--threads", "x"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--threads" in r.stderr
    r = subprocess.run([sys.executable, "-m", "adaptive_rt", "calibrate", str(tiny_pool_path), "--batch", "0"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--batch" in r.stderr

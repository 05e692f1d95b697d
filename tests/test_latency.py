"""Device latency table: measured with the native engine, a non-negative
linear model over per-op work predicting unmeasured subnets; saved and
validated; used as the resource metric of PSS buckets and build-pool."""
from __future__ import annotations

import concurrent.futures
import json
import subprocess
import sys

import numpy as np
import pytest

from adaptive_rt.serve.latency import FEATURES, LatencyTable, LatencyTableError, features
from adaptive_rt.io.poolfile import load_pool
from adaptive_rt.model.space import SubnetConfig
from adaptive_rt.model.presets import get_space

TINY = get_space("mbv3-tiny28")


@pytest.fixture(scope="module")
def table():
    return LatencyTable.measure(TINY, n=16, seed=0, repeats=9)


def test_measure_and_predict(table):
    assert len(table.samples) >= 14 and all(ms > 0 for _, ms in table.samples)
    assert (table.coef >= 0).all() and table.coef.shape == (len(FEATURES),)
    assert table.predict(TINY.min_config()) < table.predict(TINY.max_config())
    # subnets it never measured: within 35% of a real measurement (noisy shared machine)
    other = LatencyTable.measure(TINY, n=10, seed=11, repeats=9)
    ids = {c for c, _ in table.samples}
    fresh = [(cid, ms) for cid, ms in other.samples if cid not in ids]
    assert fresh
    errs = [abs(table.predict(SubnetConfig.from_id(cid)) - ms) / ms for cid, ms in fresh]
    assert float(np.median(errs)) < 0.35, errs
    assert table.holdout_mape is not None and table.holdout_mape < 0.5


def test_features_count_work():
    small, big = features(TINY, TINY.min_config()), features(TINY, TINY.max_config())
    assert (big >= small).all() and big[FEATURES.index("pw_mmacs")] > small[FEATURES.index("pw_mmacs")]


def test_save_load_and_validation(table, tmp_path):
    path = str(tmp_path / "t.json")
    table.save(path)
    back = LatencyTable.load(path, TINY)
    assert np.allclose(back.coef, table.coef) and back.samples == table.samples
    with pytest.raises(LatencyTableError, match="another search space"):
        LatencyTable.load(path, get_space("mbv3-224"))
    d = json.loads(open(path).read())
    d["tables"][0]["coef"][2] = -1.0
    open(path, "w").write(json.dumps(d))
    with pytest.raises(LatencyTableError, match="coefficients"):
        LatencyTable.load(path, TINY)
    open(path, "w").write("{")
    with pytest.raises(LatencyTableError):
        LatencyTable.load(path, TINY)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "adaptive_rt", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


@pytest.mark.slow
def test_train_and_build_pool_on_device_latency(tmp_path, small_digits):
    run = tmp_path / "run"
    r = _cli("train", "--dataset", small_digits, "--sampler", "pss", "--epochs", "1", "--out", run,
             "--batch-size", "128", "--metric", "latency")
    assert r.returncode == 0, r.stderr[-2000:]
    table = LatencyTable.load(str(run / "latency_table.json"), TINY)
    out = tmp_path / "pool.safetensors"
    r = _cli("build-pool", run, "--buckets", "3", "--candidates", "2", "--out", out)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "ms (predicted)" in r.stdout
    pool = load_pool(out)
    lat = [e.latency_ms for e in pool.entries]
    assert all(v is not None and v > 0 for v in lat) and lat == sorted(lat)
    assert lat == pytest.approx([table.predict(e.config) for e in pool.entries])
    r = _cli("train", "--dataset", "digits", "--out", tmp_path / "x", "--metric", "joules")
    assert r.returncode == 2 and "--metric" in r.stderr


def test_table_file_of_several_backends_threads_and_batches(table, tmp_path):
    """A schema-2 file: the device and a table per (backend, threads, batch); load picks one and
    names what the file has when it lacks the one asked for; schema-1 files still load."""
    from adaptive_rt.serve.latency import load_tables, save_tables
    t2 = LatencyTable.fit(TINY, 2, [(SubnetConfig.from_id(c), ms / 2) for c, ms in table.samples], 0,
                          table.device, "native", 1)
    b8 = LatencyTable.fit(TINY, 1, [(SubnetConfig.from_id(c), ms * 5) for c, ms in table.samples], 0,
                          table.device, "native", 8)
    path = str(tmp_path / "multi.json")
    save_tables(path, [table, t2, b8])
    assert [(t.threads, t.batch) for t in load_tables(path, TINY)] == [(1, 1), (2, 1), (1, 8)]
    assert LatencyTable.load(path, TINY).threads == 1                 # default: the fewest threads, batch 1
    assert LatencyTable.load(path, TINY, threads=2).predict(TINY.max_config()) < table.predict(TINY.max_config())
    assert LatencyTable.load(path, TINY, batch=8).batch == 8
    with pytest.raises(LatencyTableError, match="no table for onnxruntime.*it has native/1 thread"):
        LatencyTable.load(path, TINY, backend="onnxruntime")
    d = json.loads(open(path).read())
    assert d["schema"] == 2 and {"cpu", "machine", "cores", "isa"} <= set(d["device"])
    for bad, msg in [({"threads": 0}, "threads"), ({"batch": True}, "batch"), ({"backend": "a b"}, "backend"),
                     ({"samples": [{"config": 1}]}, "samples")]:
        e = json.loads(json.dumps(d))
        e["tables"][0].update(bad)
        open(path, "w").write(json.dumps(e))
        with pytest.raises(LatencyTableError, match=msg):
            LatencyTable.load(path, TINY)
    e = json.loads(json.dumps(d))
    e["tables"].append(e["tables"][0])
    open(path, "w").write(json.dumps(e))
    with pytest.raises(LatencyTableError, match="a second table"):
        LatencyTable.load(path, TINY)
    e["tables"] = []
    open(path, "w").write(json.dumps(e))
    with pytest.raises(LatencyTableError, match="tables must be"):
        LatencyTable.load(path, TINY)
    old = {"schema": 1, "space": TINY.to_dict(), **{k: v for k, v in table.table_dict().items()
                                                    if k not in ("backend", "batch")}}
    open(path, "w").write(json.dumps(old))
    assert np.allclose(LatencyTable.load(path, TINY).coef, table.coef)


def test_latency_table_command_without_torch(tmp_path):
    """adaptive-rt latency-table on a runtime install: torch blocked in the process."""
    out = tmp_path / "dev.json"
    code = ("import sys\n"
            "class NoTorch:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name == 'torch' or name.startswith('torch.'):\n"
            "            raise ImportError('torch is blocked in this test')\n"
            "sys.meta_path.insert(0, NoTorch())\n"
            "from adaptive_rt.cli import main\n"
            f"rc = main(['latency-table', '--space', 'mbv3-tiny28', '--threads', '1,2', '--backends', "
            f"'native,onnxruntime', '--subnets', '8', '--repeats', '3', '--out', {str(out)!r}])\n"
            "assert not [m for m in sys.modules if m == 'torch' or m.startswith('torch.')]\n"
            "raise SystemExit(rc)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "4 table(s) of mbv3-tiny28" in r.stdout
    from adaptive_rt.serve.latency import load_tables
    tables = load_tables(str(out), TINY)
    assert {(t.backend, t.threads, t.batch) for t in tables} == {(b, n, 1) for b in ("native", "onnxruntime")
                                                                 for n in (1, 2)}
    assert all(len(t.samples) == 8 and all(ms > 0 for _, ms in t.samples) for t in tables)
    r = _cli("latency-table", "--space", "mbv3-tiny28", "--backends", "nope", "--out", out)
    assert r.returncode == 2 and "'nope' is not available here" in r.stderr and "Traceback" not in r.stderr
    r = _cli("latency-table", "--space", "mbv3-tiny28", "--out", tmp_path / "no" / "such" / "x.json")
    assert r.returncode == 2 and "not a writable folder" in r.stderr


@pytest.mark.slow
def test_train_build_pool_and_import_use_a_table_made_elsewhere(tmp_path, table, small_digits):
    """--latency-table FILE: train keeps it in the run, build-pool and import-ofa predict with it, a
    table of another space or an explicit --metric mflops is refused with a message."""
    dev = tmp_path / "dev.json"
    table.save(str(dev))
    run = tmp_path / "run"
    r = _cli("train", "--dataset", small_digits, "--sampler", "pss", "--epochs", "1", "--out", run,
             "--batch-size", "128", "--latency-table", dev)
    assert r.returncode == 0, r.stderr[-2000:]
    assert np.allclose(LatencyTable.load(str(run / "latency_table.json"), TINY).coef, table.coef)
    out, refused = tmp_path / "pool.safetensors", tmp_path / "refused.safetensors"
    other = tmp_path / "other.json"
    LatencyTable.fit(get_space("mbv3-224"), 1, [(c, 1.0 + i) for i, c in enumerate(
        [get_space("mbv3-224").min_config(), get_space("mbv3-224").max_config()] * 4)]).save(str(other))
    # the pool and three refusals: four processes side by side
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        jobs = [ex.submit(_cli, "build-pool", run, "--buckets", "3", "--candidates", "2", "--out", out,
                          "--latency-table", dev),
                ex.submit(_cli, "build-pool", run, "--out", refused, "--metric", "mflops", "--latency-table", dev),
                ex.submit(_cli, "build-pool", run, "--out", refused, "--latency-table", other),
                ex.submit(_cli, "train", "--dataset", "digits", "--epochs", "1", "--out", tmp_path / "run2",
                          "--latency-table", other)]
        r, r_metric, r_space, r_train = (j.result() for j in jobs)
    assert r.returncode == 0, r.stderr[-2000:]
    pool = load_pool(out)
    assert [e.latency_ms for e in pool.entries] == pytest.approx([table.predict(e.config) for e in pool.entries])
    assert r_metric.returncode == 2 and "--latency-table is for --metric latency" in r_metric.stderr
    assert r_space.returncode == 2 and "another search space ('mbv3-224', not 'mbv3-tiny28')" in r_space.stderr
    assert r_train.returncode == 2 and "another search space" in r_train.stderr and "Traceback" not in r_train.stderr
    assert not refused.exists()

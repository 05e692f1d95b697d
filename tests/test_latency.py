"""Device latency table: measured with the native engine, a non-negative
linear model over per-op work predicting unmeasured subnets; saved and
validated; used as the resource metric of PSS buckets and build-pool."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from adaptive_rt.train.latency import FEATURES, LatencyTable, LatencyTableError, features
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
    d["coef"][2] = -1.0
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
def test_train_and_build_pool_on_device_latency(tmp_path):
    run = tmp_path / "run"
    r = _cli("train", "--dataset", "digits", "--sampler", "pss", "--epochs", "1", "--out", run,
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

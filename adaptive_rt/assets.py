"""What ships with the package: the pool trained on MNIST and its test images.

In an installed wheel they live in ``adaptive_rt/_shipped/`` (copied from
``pools/`` at build time); in a source checkout or editable install they are
read from the repository's ``pools/``.
"""
from __future__ import annotations

import os

import numpy as np

__all__ = ["SHIPPED_POOL", "SHIPPED_IMAGES", "SHIPPED_POOLS", "shipped_path", "pool_path", "demo_images"]

SHIPPED_POOL = "mnist5k-mbv3.safetensors"
SHIPPED_IMAGES = "mnist5k-test.npz"     # the 750 test digits the pool's accuracies were measured on
SHIPPED = (SHIPPED_POOL, SHIPPED_IMAGES)
#: Pools reachable by name from any folder: Runtime.open("mnist5k-mbv3"), adaptive-rt serve mnist5k-mbv3
SHIPPED_POOLS = {"mnist5k-mbv3": SHIPPED_POOL}

_HERE = os.path.dirname(os.path.abspath(__file__))


def shipped_path(name: str) -> str:
    if name not in SHIPPED:
        raise ValueError(f"{name!r} is not shipped; have: {', '.join(SHIPPED)}")
    for folder in (os.path.join(_HERE, "_shipped"), os.path.join(os.path.dirname(_HERE), "pools")):
        p = os.path.join(folder, name)
        if os.path.isfile(p):
            return p
    raise FileNotFoundError(f"{name} is missing from this installation (reinstall adaptive-rt)")


def pool_path(name_or_path: str) -> str:
    """A pool file's path: ``name_or_path`` itself when it names a file, else
    the shipped pool of that name (``mnist5k-mbv3``), else ``name_or_path``
    unchanged (so that opening it reports the missing file)."""
    if os.path.exists(name_or_path) or name_or_path not in SHIPPED_POOLS:
        return name_or_path
    return shipped_path(SHIPPED_POOLS[name_or_path])


def demo_images() -> tuple[np.ndarray, np.ndarray]:
    """The shipped test digits: NHWC float32 in [0, 1] and int64 labels."""
    from .io.data import load_npz
    return load_npz(shipped_path(SHIPPED_IMAGES))

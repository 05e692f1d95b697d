"""Shared fixtures: small pools written by the real writer; a private cache
folder (device profiles) for the whole run, never the user's ~/.cache."""
from __future__ import annotations

import os

import pytest

from adaptive_rt.io.poolfile import write_pool
from adaptive_rt.model.presets import get_space
from adaptive_rt.io.randompool import random_pool


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory):
    """$XDG_CACHE_HOME for this run (and the processes it starts)."""
    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))
    yield os.environ["XDG_CACHE_HOME"]
    if old is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = old


@pytest.fixture(scope="session")
def tiny_space():
    return get_space("mbv3-tiny28")


@pytest.fixture(scope="session")
def tiny_pool_parts(tiny_space):
    """(entries, tensors) of a 4-entry pool over random weights."""
    return random_pool(tiny_space, 4, seed=1)


@pytest.fixture()
def tiny_pool_path(tmp_path, tiny_space, tiny_pool_parts):
    entries, tensors = tiny_pool_parts
    path = tmp_path / "tiny.safetensors"
    write_pool(path, tiny_space, entries, tensors)
    return path


@pytest.fixture(scope="session")
def small_digits(tmp_path_factory):
    """An .npz of the first 384 training digits (3 steps an epoch at batch 128):
    CLI tests that check code paths, not accuracy, train on it in seconds."""
    import numpy as np

    from adaptive_rt.io.data import load_dataset
    d = load_dataset("digits", seed=0)
    path = tmp_path_factory.mktemp("data") / "digits384.npz"
    np.savez(path, x=d.x_train[:384], y=d.y_train[:384])
    return path

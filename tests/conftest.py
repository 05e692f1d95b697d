"""Shared fixtures: small pools written by the real writer."""
from __future__ import annotations

import pytest

from adaptive_rt.io.poolfile import write_pool
from adaptive_rt.model.presets import get_space
from adaptive_rt.io.randompool import random_pool


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

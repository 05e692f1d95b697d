"""Every fuzz target (fuzz/targets.py) on every input of its checked-in corpus,
in-process: the seeds — and the inputs of crashes found earlier, kept there
as regressions — must be handled (the time-bounded fuzzing itself runs in CI:
``python fuzz/run.py all``)."""
from __future__ import annotations

import pathlib
import sys

import pytest

pytest.importorskip("atheris")
FUZZ = pathlib.Path(__file__).resolve().parents[1] / "fuzz"
sys.path.insert(0, str(FUZZ))
from targets import TARGETS  # noqa: E402

CASES = [(name, p) for name in TARGETS for p in sorted((FUZZ / "corpus" / name).iterdir())]


def test_every_target_has_seeds_and_runs_in_ci():
    import run
    assert {name for name, _ in CASES} == set(TARGETS) == set(run.NAMES)


@pytest.mark.parametrize("name, path", CASES, ids=[f"{n}-{p.name}" for n, p in CASES])
def test_corpus_input(name, path):
    TARGETS[name](path.read_bytes())


@pytest.mark.parametrize("seed", range(16))
def test_differential_random_spaces(seed):
    """A standing differential check: random valid spaces (kernels 1-7, strides,
    widths, resolutions, SE on and off) built into pools; every entry on every
    ISA table against the NumPy reference (the fuzz target `plan`, fed with
    seeded bytes)."""
    import numpy as np
    TARGETS["plan"](np.random.default_rng(seed).bytes(256))

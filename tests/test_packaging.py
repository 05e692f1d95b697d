"""The runtime install: numpy and psutil only, never torch."""
from __future__ import annotations

import re
import subprocess
import sys
from importlib import metadata

import pytest


def test_runtime_requirements_have_no_torch():
    try:
        reqs = metadata.requires("adaptive-rt") or []
    except metadata.PackageNotFoundError:
        pytest.skip("package not installed")
    base = [r for r in reqs if "extra ==" not in r]
    names = {re.split(r"[<>=!~ ;\[]", r, maxsplit=1)[0].lower() for r in base}
    assert names == {"numpy", "psutil"}, base
    assert any("torch" in r and 'extra == "train"' in r for r in reqs)


def test_runtime_modules_import_without_torch_or_onnx():
    code = ("import sys, adaptive_rt, adaptive_rt.model.space, adaptive_rt.model.graph, adaptive_rt.model.reference, "
            "adaptive_rt.io.poolfile, adaptive_rt.io.data, adaptive_rt.model.weights, adaptive_rt.cli, adaptive_rt.engine, "
            "adaptive_rt.serve.monitor, adaptive_rt.serve.policy, adaptive_rt.serve.profile;"
            "bad = [m for m in ('torch', 'onnx', 'onnxruntime', 'mlxtend', 'sklearn') if m in sys.modules];"
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", out.stdout


def test_no_pickle_in_sources():
    import pathlib
    root = pathlib.Path(__file__).resolve().parents[1] / "adaptive_rt"
    for f in root.rglob("*.py"):
        text = f.read_text()
        assert "import pickle" not in text and "allow_pickle=True" not in text, f

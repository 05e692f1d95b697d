"""The adaptive-rt command line, run as a real process."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from adaptive_rt.io.poolfile import load_pool


def run(*args, check=True):
    p = subprocess.run([sys.executable, "-m", "adaptive_rt", *map(str, args)],
                       capture_output=True, text=True, timeout=120)
    if check:
        assert p.returncode == 0, p.stderr
    return p


def test_inspect_prints_table(tiny_pool_path):
    out = run("inspect", tiny_pool_path).stdout
    assert "valid pool file" in out and "mbv3-tiny28" in out
    pool = load_pool(tiny_pool_path)
    for e in pool.entries:
        line = next(l for l in out.splitlines() if l.startswith(e.id + " "))
        assert f"{e.mflops:.2f}" in line and f"{e.params:,}" in line and e.config.id in line


def test_inspect_json(tiny_pool_path):
    d = json.loads(run("inspect", "--json", tiny_pool_path).stdout)
    assert [e["id"] for e in d["entries"]] == ["e0", "e1", "e2", "e3"]
    assert d["space"]["name"] == "mbv3-tiny28"


@pytest.mark.parametrize("content", [b"", b"\x10\x00\x00\x00\x00\x00\x00\x00{}", b"garbage" * 10])
def test_inspect_invalid_file_exit_2_one_line(tmp_path, content):
    p = tmp_path / "bad.safetensors"
    p.write_bytes(content)
    r = run("inspect", p, check=False)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("adaptive-rt: invalid pool file") and str(p) in lines[0]
    assert "Traceback" not in r.stderr


def test_inspect_missing_file(tmp_path):
    r = run("inspect", tmp_path / "nope.safetensors", check=False)
    assert r.returncode == 2 and "cannot read" in r.stderr


def test_export_onnx_runs_in_onnxruntime(tmp_path, tiny_pool_path):
    ort = pytest.importorskip("onnxruntime")
    from adaptive_rt.model import reference
    out = tmp_path / "e1.onnx"
    run("export", tiny_pool_path, "--entry", "e1", "--format", "onnx", "--out", out)
    pool = load_pool(tiny_pool_path)
    e = pool.entry("e1")
    x = np.random.default_rng(0).random((2, 28, 28, 1), dtype=np.float32)
    ref = reference.run(pool.graph(e), pool.tensors, x, e.bn)
    got = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    assert np.abs(got - ref).max() <= 1e-4 * np.abs(ref).max()


def test_export_unknown_entry(tmp_path, tiny_pool_path):
    r = run("export", tiny_pool_path, "--entry", "nope", "--out", tmp_path / "x.onnx", check=False)
    assert r.returncode == 2 and "no entry 'nope'" in r.stderr
    assert not (tmp_path / "x.onnx").exists()


def test_make_random_pool(tmp_path):
    p = tmp_path / "r.safetensors"
    run("make-random-pool", "--entries", "3", "--out", p)
    pool = load_pool(p)
    assert len(pool.entries) == 3
    assert pool.entries[0].mflops < pool.entries[1].mflops < pool.entries[2].mflops


def test_console_script_installed(tiny_pool_path):
    exe = shutil.which("adaptive-rt")
    if exe is None:
        from importlib import metadata
        try:
            metadata.distribution("adaptive-rt")
        except metadata.PackageNotFoundError:
            pytest.skip("package not installed (running from a source tree)")
        pytest.fail("adaptive-rt is installed but its console script is not on PATH")
    r = subprocess.run([exe, "inspect", str(tiny_pool_path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "valid pool file" in r.stdout

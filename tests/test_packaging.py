"""The runtime install: numpy, psutil and h11 (the daemon's HTTP parser) only, never torch; the shipped systemd unit."""
from __future__ import annotations

import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_runtime_requirements_have_no_torch():
    try:
        reqs = metadata.requires("adaptive-rt") or []
    except metadata.PackageNotFoundError:
        pytest.skip("package not installed")
    base = [r for r in reqs if "extra ==" not in r]
    names = {re.split(r"[<>=!~ ;\[]", r, maxsplit=1)[0].lower() for r in base}
    assert names == {"numpy", "psutil", "h11"}, base
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


def _unit_for_analysis(tmp_path):
    """The shipped unit with ExecStart pointing at this environment's
    adaptive-rt (verify checks the binary exists; the unit's path is the venv
    under /opt its install steps create)."""
    import shutil
    unit = (ROOT / "packaging" / "adaptive-rt.service").read_text()
    exe = shutil.which("adaptive-rt")
    assert "/opt/adaptive-rt/venv/bin/adaptive-rt serve" in unit and exe
    path = tmp_path / "adaptive-rt.service"
    path.write_text(unit.replace("/opt/adaptive-rt/venv/bin/adaptive-rt", exe))
    return path


def test_systemd_unit_verifies_and_is_hardened(tmp_path):
    import shutil
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    unit = _unit_for_analysis(tmp_path)
    r = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and not r.stderr.strip(), r.stderr
    r = subprocess.run(["systemd-analyze", "security", "--offline=yes", str(unit)], capture_output=True, text=True,
                       timeout=60)
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", r.stdout + r.stderr)
    assert m and float(m.group(1)) <= 2.5, (r.stdout + r.stderr)[-3000:]
    text = unit.read_text()
    assert "RuntimeDirectory=adaptive-rt" in text and "--socket /run/adaptive-rt/adaptive-rt.sock" in text


def test_one_socket_path_everywhere():
    """The system service's socket is the one the client falls back to, and
    no doc writes another /run path."""
    from adaptive_rt.daemon.base import SYSTEM_SOCKET
    assert SYSTEM_SOCKET == "/run/adaptive-rt/adaptive-rt.sock"
    assert SYSTEM_SOCKET in (ROOT / "packaging" / "adaptive-rt.service").read_text()
    for md in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for path in re.findall(r"/run/[\w./-]*\.sock", md.read_text()):
            assert path == SYSTEM_SOCKET, (md.name, path)

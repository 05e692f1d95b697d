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


# ----------------------------------------------------------------------------- one way to give a pool
def test_pool_positional_or_option_and_shipped_by_name(tmp_path, tiny_pool_path):
    a = run("inspect", tiny_pool_path).stdout
    assert run("inspect", "--pool", tiny_pool_path).stdout == a
    r = run("inspect", tiny_pool_path, "--pool", tmp_path / "other.safetensors", check=False)
    assert r.returncode == 2 and "two pools given" in r.stderr
    r = run("inspect", check=False)
    assert r.returncode == 2 and "give the pool" in r.stderr
    out = subprocess.run([sys.executable, "-m", "adaptive_rt", "inspect", "mnist5k-mbv3"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "valid pool file" in out.stdout, out.stderr
    assert "dominated" not in out.stdout          # the shipped pool is Pareto-clean on its test split
    r = run("serve", check=False)
    assert r.returncode == 2 and "give the pool" in r.stderr


def test_help_shows_defaults_and_choices():
    h = run("serve", "--help").stdout
    assert "{adaptive,fixed-largest,fixed-smallest}" in h and "(default: adaptive)" in h
    h = run("train", "--help").stdout
    assert "{uniform,rss,sandwich,ps,pss}" in h and "(default: sandwich)" in h and "(default: 10)" in h


def test_a_file_that_is_no_pool_is_told_apart(tmp_path):
    f = tmp_path / "notes.md"
    f.write_text("# some markdown, long enough to have eight bytes and more\n")
    r = run("inspect", f, check=False)
    assert r.returncode == 2 and "not a safetensors pool file" in r.stderr


def test_export_format_from_the_extension_and_metadata(tmp_path, tiny_pool_path):
    onnx = pytest.importorskip("onnx")
    pool = load_pool(tiny_pool_path)
    run("export", tiny_pool_path, "--entry", "e1", "--out", tmp_path / "e1.onnx")
    m = onnx.load(str(tmp_path / "e1.onnx"))
    props = {p.key: p.value for p in m.metadata_props}
    assert m.producer_name == "adaptive_rt" and m.producer_version
    assert props["adaptive_rt.entry"] == "e1" and props["adaptive_rt.pool_sha256"] == pool.sha256
    assert props["adaptive_rt.config"] == pool.entry("e1").config.id
    r = run("export", tiny_pool_path, "--entry", "e1", "--out", tmp_path / "e1.tflite", "--format", "onnx",
            check=False)
    assert r.returncode == 2 and "would hold onnx bytes" in r.stderr and not (tmp_path / "e1.tflite").exists()
    r = run("export", tiny_pool_path, "--entry", "e1", "--out", tmp_path / "e1.bin", check=False)
    assert r.returncode == 2 and ".onnx or .tflite" in r.stderr
    pytest.importorskip("ai_edge_litert")
    from ai_edge_litert import schema_py_generated as s
    from ai_edge_litert.interpreter import Interpreter
    run("export", tiny_pool_path, "--entry", "e1", "--out", tmp_path / "e1.tflite")
    it = Interpreter(model_path=str(tmp_path / "e1.tflite"))
    assert it.get_signature_list() == {"serving_default": {"inputs": ["input"], "outputs": ["logits"]}}
    x = np.random.default_rng(0).random((1, 28, 28, 1), dtype=np.float32)
    y = it.get_signature_runner("serving_default")(input=x)["logits"]
    from adaptive_rt.model import reference
    e = pool.entry("e1")
    want = reference.run(pool.graph(e), pool.tensors, x, e.bn)
    assert np.abs(y - want).max() <= 1e-4 * np.abs(want).max()
    m = s.ModelT.InitFromPackedBuf((tmp_path / "e1.tflite").read_bytes(), 0)
    md = {x.name.decode(): bytes(m.buffers[x.buffer].data).decode() for x in m.metadata}
    assert md["adaptive_rt.entry"] == "e1" and md["adaptive_rt.pool_sha256"] == pool.sha256


def test_output_piped_into_head_is_not_an_error(tiny_pool_path):
    r = subprocess.run(f"{sys.executable} -m adaptive_rt inspect {tiny_pool_path} | head -1", shell=True,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "valid pool file" in r.stdout and "Traceback" not in r.stderr


def test_inspect_flags_dominated_entries_of_older_pools(tmp_path, tiny_space, tiny_pool_parts):
    """Pools written before build-pool's Pareto filter may hold entries a cheaper one beats: inspect names them."""
    import dataclasses
    from adaptive_rt.io.poolfile import write_pool
    entries, tensors = tiny_pool_parts
    accs = [0.97, 0.96, 0.98, 0.975]        # e1 is beaten by the cheaper e0, e3 by e2
    old = [dataclasses.replace(e, accuracy=a, dataset="mnist5k", split="test") for e, a in zip(entries, accs)]
    path = tmp_path / "old.safetensors"
    write_pool(path, tiny_space, old, tensors)
    out = run("inspect", path).stdout
    assert f"dominated: e1 ({old[1].mflops:.2f} MFLOPs, 96.00%) by e0 ({old[0].mflops:.2f} MFLOPs, 97.00%)" in out
    assert "dominated: e3" in out and "by e2" in out
    assert "dominated: e0" not in out and "dominated: e2" not in out

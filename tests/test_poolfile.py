"""Pool file: round trip, every malformed case of docs/pool-format.md, atomic writes."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import struct
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from adaptive_rt.model.layout import PANEL, gemm_weight_names, pack_panels, unpack_panels
from adaptive_rt.io.poolfile import (MAX_HEADER_BYTES, PoolEntry, PoolFileError, load_pool, make_entry,
                                  write_pool)


# ----------------------------------------------------------------------------- helpers
def split_file(raw: bytes) -> tuple[dict, bytes]:
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def join_file(header: dict | str | bytes, data: bytes, fix_sha: bool = True) -> bytes:
    if isinstance(header, dict) and fix_sha:
        header["__metadata__"]["adaptive_rt.sha256"] = hashlib.sha256(data).hexdigest()
    if isinstance(header, dict):
        header = json.dumps(header)
    if isinstance(header, str):
        header = header.encode()
    header += b" " * (-len(header) % 8)   # keep tensors aligned, as safetensors writers do
    return struct.pack("<Q", len(header)) + header + data


def mutate_pool(header: dict, fn) -> None:
    table = json.loads(header["__metadata__"]["adaptive_rt.pool"])
    fn(table)
    header["__metadata__"]["adaptive_rt.pool"] = json.dumps(table)


def tensors_of(header: dict) -> dict:
    return {k: v for k, v in header.items() if k != "__metadata__"}


def last_tensor(header: dict) -> str:
    return max(tensors_of(header), key=lambda k: header[k]["data_offsets"][0])


@pytest.fixture()
def good(tiny_pool_path):
    return tiny_pool_path.read_bytes()


def expect_error(tmp_path, raw: bytes, *needles: str) -> PoolFileError:
    p = tmp_path / "bad.safetensors"
    p.write_bytes(raw)
    with pytest.raises(PoolFileError) as ei:
        load_pool(p)
    msg = str(ei.value)
    assert str(p) in msg
    for n in needles:
        assert n in msg, (n, msg)
    return ei.value


# ----------------------------------------------------------------------------- round trip
def test_round_trip_bit_exact(tmp_path, tiny_space, tiny_pool_parts):
    entries, tensors = tiny_pool_parts
    path = tmp_path / "p.safetensors"
    pool = write_pool(path, tiny_space, entries, tensors, {"note": "hello"})
    assert pool.path == str(path)
    back = load_pool(path)
    assert back.space == tiny_space
    assert back.entries == tuple(entries)
    assert set(back.tensors) == set(tensors)
    for name, a in tensors.items():
        t = back.tensors[name]
        assert t.dtype == np.float32 and t.shape == a.shape
        assert t.tobytes() == np.asarray(a, np.float32).tobytes(), name
    assert back.metadata["note"] == "hello"
    assert (8 + struct.unpack("<Q", path.read_bytes()[:8])[0]) % 64 == 0   # data section aligned


@pytest.mark.parametrize("mode", ["read", "mmap"])
def test_weights_are_read_only_views_of_one_buffer(tiny_pool_path, mode):
    pool = load_pool(tiny_pool_path, mode=mode)
    stored = {name: pool.gemm_weight(name)[0] if name in pool.panels else t for name, t in pool.tensors.items()}
    for name, t in stored.items():
        assert not t.flags.writeable and not t.flags.owndata, name
    with pytest.raises(ValueError):
        pool.tensors["stem.conv.weight"][0, 0] = 1.0
    # one copy of the data section (private, or the mapping): every stored tensor's address lies inside it
    addrs = sorted(t.__array_interface__["data"][0] for t in stored.values())
    assert addrs[-1] - addrs[0] < pool.file_bytes
    # a read load holds the 1x1/SE/linear weights in panels (what the engine reads), a mapping row-major;
    # either way `tensors` hands out the row-major matrix, read-only
    assert bool(pool.panels) == (mode == "read")
    assert set(pool.panels) <= gemm_weight_names(pool.space) and "stem.conv.weight" not in pool.panels
    other = load_pool(tiny_pool_path, mode="mmap" if mode == "read" else "read")
    for name in gemm_weight_names(pool.space):
        a = pool.tensors[name]
        assert not a.flags.writeable and a.tobytes() == other.tensors[name].tobytes(), name
        flat, kn = pool.gemm_weight(name)
        if kn is not None:
            assert flat.ndim == 1 and kn == a.shape
            np.testing.assert_array_equal(unpack_panels(flat, *kn), a)
            if a.shape[0] > 1 and a.shape[1] > PANEL:
                assert flat.tobytes() != a.tobytes(), name   # really rearranged
    with pytest.raises(ValueError, match="mode"):
        load_pool(tiny_pool_path, mode="copy")


def test_leading_slices_unpack_only_the_slice():
    # a weight in panels gives any leading [rows, cols] slice (the reference's and exporters' read of an
    # entry) equal to the row-major matrix's, for slices ending inside, at and past a panel's edge
    rng = np.random.default_rng(3)
    for K, N in [(1, 1), (5, 7), (9, PANEL), (9, PANEL + 1), (13, 3 * PANEL + 5)]:
        a = rng.standard_normal((K, N)).astype(np.float32)
        flat = np.empty(K * N, np.float32)
        pack_panels(a, flat)
        for rows in {0, 1, K // 2, K}:
            for cols in range(N + 1):
                got = unpack_panels(flat, K, N, rows, cols, np.float64)
                assert got.dtype == np.float64 and got.shape == (rows, cols)
                np.testing.assert_array_equal(got, a[:rows, :cols])
        with pytest.raises(ValueError, match="slice"):
            unpack_panels(flat, K, N, K + 1, N)


def test_reference_reads_the_same_from_panels_and_a_mapping(tiny_pool_path):
    read, mapped = load_pool(tiny_pool_path), load_pool(tiny_pool_path, mode="mmap")
    assert read.panels and not mapped.panels
    x = np.random.default_rng(0).standard_normal((2,) + read.input_shape).astype(np.float32)
    for e in read.entries:
        assert read.reference(e.id, x).tobytes() == mapped.reference(e.id, x).tobytes(), e.id
    # membership and shapes without unpacking; a missing name is still a KeyError
    t = read.tensors
    name = sorted(read.panels)[0]
    assert name in t and "no.such.tensor" not in t and t.shape(name) == read.panels[name]
    with pytest.raises(KeyError):
        t["no.such.tensor"]


def test_safetensors_library_reads_our_files(tiny_pool_path, tiny_pool_parts):
    st = pytest.importorskip("safetensors.numpy")
    loaded = st.load_file(str(tiny_pool_path))
    _, tensors = tiny_pool_parts
    assert set(loaded) == set(tensors)
    assert all(np.array_equal(loaded[k], tensors[k]) for k in tensors)


def test_entry_lookup_and_weight_bytes(tiny_pool_path, tiny_pool_parts):
    pool = load_pool(tiny_pool_path)
    entries, tensors = tiny_pool_parts
    assert pool.entry("e2") == entries[2]
    with pytest.raises(KeyError, match="no entry 'zz'"):
        pool.entry("zz")
    per_entry = sum(a.nbytes for n, a in tensors.items() if n.startswith("bn.e"))
    assert pool.weight_bytes == sum(a.nbytes for a in tensors.values()) - per_entry
    assert pool.graph("e1").config == entries[1].config


def test_entry_json_round_trip(tiny_space):
    e = make_entry(tiny_space, tiny_space.max_config(), "big", "bn.big.", 0.98, "mnist5k", "test", 1.5)
    assert PoolEntry.from_dict(json.loads(json.dumps(e.to_dict())), "x") == e


# ----------------------------------------------------------------------------- malformed
def test_truncated_files(tmp_path, good):
    expect_error(tmp_path, good[:5], "truncated", "5 bytes")
    header, _ = split_file(good)
    n = struct.unpack("<Q", good[:8])[0]
    expect_error(tmp_path, good[:8 + n // 2], "truncated", "header length")
    cut = good[:len(good) - 100]
    expect_error(tmp_path, cut, "run past the end", last_tensor(header))


def test_header_length_over_limit(tmp_path, good):
    raw = struct.pack("<Q", MAX_HEADER_BYTES + 1) + good[8:]
    expect_error(tmp_path, raw, "over the limit")
    raw = struct.pack("<Q", 2**64 - 1) + good[8:]
    expect_error(tmp_path, raw, "over the limit")


def test_invalid_utf8(tmp_path, good):
    header, data = split_file(good)
    text = json.dumps(header).encode().replace(b'"adaptive_rt.note"', b'"x"')
    text = text[:-1] + b',"\xff\xfe":1}'
    expect_error(tmp_path, join_file(text, data), "not valid UTF-8")


def test_invalid_json(tmp_path, good):
    header, data = split_file(good)
    text = json.dumps(header)[:-1] + ",}"
    expect_error(tmp_path, join_file(text, data), "header: invalid JSON")
    expect_error(tmp_path, join_file("[1, 2]", data), "not a JSON object")


def test_duplicate_keys(tmp_path, good):
    header, data = split_file(good)
    name = last_tensor(header)
    text = json.dumps(header)[:-1] + f', "{name}": ' + json.dumps(header[name]) + "}"
    expect_error(tmp_path, join_file(text, data), "duplicate key", name)


def test_duplicate_keys_inside_metadata_json(tmp_path, good):
    header, data = split_file(good)
    space = header["__metadata__"]["adaptive_rt.space"]
    header["__metadata__"]["adaptive_rt.space"] = space[:-1] + ',"name":"other"}'
    expect_error(tmp_path, join_file(header, data), "adaptive_rt.space", "duplicate key 'name'")


def test_absurd_nesting(tmp_path, good):
    header, data = split_file(good)
    text = json.dumps(header)[:-1] + ', "deep": ' + "[" * 100000 + "]" * 100000 + "}"
    expect_error(tmp_path, join_file(text, data), "nests", "deep")
    header["__metadata__"]["adaptive_rt.pool"] = "[" * 50 + "]" * 50
    expect_error(tmp_path, join_file(header, data), "adaptive_rt.pool", "nests 50 levels")


def test_json_depth_limit_is_exact():
    """The depth is counted on what the parser built (brackets inside strings
    do not count): a document at the limit parses, one level more is refused
    with its depth, whatever else is wrong with it, and so is one too deep
    for the parser itself."""
    from adaptive_rt.io.jsonio import strict_json
    assert strict_json("[" * 16 + "]" * 16, "x") == json.loads("[" * 16 + "]" * 16)
    assert strict_json('{"a": [1, {"b": ["[[[[[[["]}]}', "x", 4) == {"a": [1, {"b": ["[[[[[[["]}]}
    assert strict_json("null", "x") is None and strict_json("0", "x", 0) == 0   # scalars are depth 0
    for text, depth in (("[" * 17 + "]" * 17, 17), ('{"a": [1, {"b": []}], "c": {}}', 4),
                        ('[[[[[[[[[[[[[[[[[[1, 1}', 18), ("[" * 5000 + "]" * 5000, 5000)):
        with pytest.raises(ValueError, match=f"x: JSON nests {depth} levels deep"):
            strict_json(text, "x", 16 if depth > 4 else 3)


def test_nan_in_json_rejected(tmp_path, good):
    header, data = split_file(good)
    mutate_pool(header, lambda t: t[0].update(mflops=float("nan")))
    expect_error(tmp_path, join_file(header, data), "NaN is not valid JSON")


def test_unknown_schema_version(tmp_path, good):
    header, data = split_file(good)
    header["__metadata__"]["adaptive_rt.schema"] = "3"
    expect_error(tmp_path, join_file(header, data), "adaptive_rt.schema='3' is not supported")


@pytest.mark.parametrize("key", ["adaptive_rt.schema", "adaptive_rt.space", "adaptive_rt.pool", "adaptive_rt.sha256"])
def test_missing_metadata(tmp_path, good, key):
    header, data = split_file(good)
    del header["__metadata__"][key]
    expect_error(tmp_path, join_file(header, data, fix_sha=False), key)


def test_no_metadata_at_all(tmp_path, good):
    header, data = split_file(good)
    del header["__metadata__"]
    expect_error(tmp_path, join_file(header, data, fix_sha=False), "no __metadata__")


def test_offsets_past_end(tmp_path, good):
    header, data = split_file(good)
    name = last_tensor(header)
    b, e = header[name]["data_offsets"]
    header[name]["data_offsets"] = [b + 4, e + 4]
    expect_error(tmp_path, join_file(header, data), name, "run past the end")


def test_overlapping_offsets(tmp_path, good):
    header, data = split_file(good)
    names = sorted(tensors_of(header), key=lambda k: header[k]["data_offsets"][0])
    a, b = names[3], names[4]
    # make b start inside a; keep its size and the total size by growing the gap at the end
    sa, ea = header[a]["data_offsets"]
    sb, eb = header[b]["data_offsets"]
    header[b]["data_offsets"] = [sb - 4, eb - 4]
    expect_error(tmp_path, join_file(header, data), "overlaps", b)


def test_gap_between_tensors(tmp_path, good):
    header, data = split_file(good)
    names = sorted(tensors_of(header), key=lambda k: header[k]["data_offsets"][0])
    # shift every tensor after the 5th by 4 bytes and insert 4 bytes of padding there
    cut = header[names[5]]["data_offsets"][0]
    for n in names[5:]:
        s, e = header[n]["data_offsets"]
        header[n]["data_offsets"] = [s + 4, e + 4]
    data = data[:cut] + b"\0" * 4 + data[cut:]
    expect_error(tmp_path, join_file(header, data), "gap of 4 bytes", names[5])


def test_gap_at_end(tmp_path, good):
    header, data = split_file(good)
    expect_error(tmp_path, join_file(header, data + b"\0" * 8), "8 bytes after the last tensor")


def test_shape_product_overflow(tmp_path, good):
    header, data = split_file(good)
    name = last_tensor(header)
    header[name]["shape"] = [2**32, 2**32, 2]
    expect_error(tmp_path, join_file(header, data), name, "overflows 64 bits")


def test_shape_times_dtype_mismatch(tmp_path, good):
    header, data = split_file(good)
    name = last_tensor(header)
    header[name]["shape"] = header[name]["shape"][:-1] + [header[name]["shape"][-1] + 1]
    expect_error(tmp_path, join_file(header, data), name, "bytes but data_offsets span")


def test_unknown_dtype(tmp_path, good):
    header, data = split_file(good)
    name = last_tensor(header)
    header[name]["dtype"] = "F31"
    expect_error(tmp_path, join_file(header, data), name, "unknown dtype 'F31'")


@pytest.mark.parametrize("dtype", [["F32"], {"a": 1}, 32, None, True])
def test_dtype_of_another_json_type(tmp_path, good, dtype):
    header, data = split_file(good)
    name = last_tensor(header)
    header[name]["dtype"] = dtype
    expect_error(tmp_path, join_file(header, data), name, "unknown dtype")


def _set_floats(header: dict, data: bytes, name: str, values) -> bytes:
    begin = header[name]["data_offsets"][0]
    b = bytearray(data)
    b[begin: begin + 4 * len(values)] = np.asarray(values, "<f4").tobytes()
    return bytes(b)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_weights_refused(tmp_path, good, value):
    header, data = split_file(good)
    data = _set_floats(header, data, "stem.conv.weight", [value])
    expect_error(tmp_path, join_file(header, data), "stem.conv.weight", "non-finite")


def test_negative_bn_variance_refused(tmp_path, good):
    header, data = split_file(good)
    name = next(n for n in tensors_of(header) if n.endswith(".bn.var"))
    data = _set_floats(header, data, name, [-0.5])
    expect_error(tmp_path, join_file(header, data), name, "negative variance")


def test_entry_count_limit(tmp_path, good):
    from adaptive_rt.io.poolfile import MAX_ENTRIES
    header, data = split_file(good)
    table = json.loads(header["__metadata__"]["adaptive_rt.pool"])
    header["__metadata__"]["adaptive_rt.pool"] = json.dumps(table * (MAX_ENTRIES // len(table) + 1))
    expect_error(tmp_path, join_file(header, data), "entries, limit")


def test_not_a_regular_file(tmp_path):
    import os
    fifo = tmp_path / "p.safetensors"
    os.mkfifo(fifo)
    with pytest.raises(PoolFileError, match="not a regular file"):
        load_pool(fifo)


def test_wrong_dtype_for_weight(tmp_path, good):
    header, data = split_file(good)
    name = last_tensor(header)
    header[name]["dtype"] = "I32"   # same byte size, wrong type
    expect_error(tmp_path, join_file(header, data), name, "dtype I32, expected F32")


def test_entry_names_missing_tensor(tmp_path, good):
    header, data = split_file(good)
    mutate_pool(header, lambda t: t[1].update(bn="bn.nowhere."))
    expect_error(tmp_path, join_file(header, data), "missing tensor 'bn.nowhere.stem.conv.bn.mean'", "entry 'e1'")


def test_entry_tensor_of_wrong_shape(tmp_path, good):
    header, data = split_file(good)
    # entry e0 (narrowest) pointed at e3's statistics: same names, wider shapes
    mutate_pool(header, lambda t: t[0].update(bn="bn.e3."))
    err = expect_error(tmp_path, join_file(header, data), "has shape", "expected", "entry 'e0'")
    assert "bn.e3." in str(err)


def test_missing_weight_tensor(tmp_path, good):
    header, data = split_file(good)
    name = "s1.b2.dw7.weight"
    s, e = header.pop(name)["data_offsets"]
    for n, v in tensors_of(header).items():
        if v["data_offsets"][0] >= e:
            v["data_offsets"] = [v["data_offsets"][0] - (e - s), v["data_offsets"][1] - (e - s)]
    data = data[:s] + data[e:]
    expect_error(tmp_path, join_file(header, data), f"missing tensor {name!r}")


def test_unexpected_tensor(tmp_path, good):
    header, data = split_file(good)
    header["evil"] = {"dtype": "U8", "shape": [4], "data_offsets": [len(data), len(data) + 4]}
    expect_error(tmp_path, join_file(header, data + b"abcd"), "unexpected tensor 'evil'")


def test_config_invalid_for_space(tmp_path, good):
    header, data = split_file(good)

    def bad(t):
        t[2]["config"]["kernels"][1][0] = 9
    mutate_pool(header, bad)
    expect_error(tmp_path, join_file(header, data), "entry 'e2'", "kernels[1][0]=9")


def test_config_malformed(tmp_path, good):
    header, data = split_file(good)
    mutate_pool(header, lambda t: t[0]["config"].pop("widths"))
    expect_error(tmp_path, join_file(header, data), "entry 'e0'", "missing field 'widths'")


def test_cost_mismatch(tmp_path, good):
    header, data = split_file(good)
    mutate_pool(header, lambda t: t[0].update(mflops=t[0]["mflops"] * 2))
    expect_error(tmp_path, join_file(header, data), "entry 'e0'.mflops")


def test_duplicate_entry_id(tmp_path, good):
    header, data = split_file(good)
    mutate_pool(header, lambda t: t[1].update(id="e0"))
    expect_error(tmp_path, join_file(header, data), "entry 'e0'", "duplicate entry id")


@pytest.mark.parametrize("field, value, needle", [
    ("id", "../etc/passwd", "must be 1-64 characters"),
    ("accuracy", {"top1": 1.5, "dataset": "x", "split": "test"}, "accuracy.top1=1.5"),
    ("latency_ms", -1, "latency_ms=-1"),
    ("params", 1.5, "params=1.5"),
    ("bn", "a b", "bn='a b'"),
])
def test_bad_entry_fields(tmp_path, good, field, value, needle):
    header, data = split_file(good)
    mutate_pool(header, lambda t: t[0].update({field: value}))
    expect_error(tmp_path, join_file(header, data), needle)


def test_invalid_space(tmp_path, good):
    header, data = split_file(good)
    sp = json.loads(header["__metadata__"]["adaptive_rt.space"])
    sp["stages"][0]["stride"] = 5
    header["__metadata__"]["adaptive_rt.space"] = json.dumps(sp)
    expect_error(tmp_path, join_file(header, data), "adaptive_rt.space", "stages[0].stride=5")


def test_checksum_mismatch(tmp_path, good):
    raw = bytearray(good)
    raw[-3] ^= 0x01
    expect_error(tmp_path, bytes(raw), "checksum mismatch")
    p = tmp_path / "flipped.safetensors"
    p.write_bytes(bytes(raw))
    load_pool(p, verify_checksum=False)   # structurally fine; only the hash catches it


def test_not_a_file(tmp_path):
    with pytest.raises(PoolFileError, match="cannot read"):
        load_pool(tmp_path / "missing.safetensors")
    with pytest.raises(PoolFileError, match="cannot read"):
        load_pool(tmp_path)


def test_writer_refuses_bad_input(tmp_path, tiny_space, tiny_pool_parts):
    entries, tensors = tiny_pool_parts
    path = tmp_path / "p.safetensors"
    bad = dict(tensors)
    bad["stem.conv.weight"] = np.full_like(tensors["stem.conv.weight"], np.nan)
    with pytest.raises(PoolFileError, match="stem.conv.weight.*non-finite"):
        write_pool(path, tiny_space, entries, bad)
    bad = dict(tensors)
    del bad["head.conv.weight"]
    with pytest.raises(PoolFileError, match="missing tensor 'head.conv.weight'"):
        write_pool(path, tiny_space, entries, bad)
    assert not path.exists()
    assert os.listdir(tmp_path) == []     # no temp file left behind


# ----------------------------------------------------------------------------- atomic writes
_WRITER = textwrap.dedent("""
    import sys
    from adaptive_rt.io.poolfile import write_pool
    from adaptive_rt.model.presets import get_space
    from adaptive_rt.io.randompool import random_pool
    space = get_space("mbv3-224")
    entries, tensors = random_pool(space, 3, seed=int(sys.argv[2]))
    print("ready", flush=True)
    write_pool(sys.argv[1], space, entries, tensors)
""")


def test_writer_killed_mid_write_leaves_old_file(tmp_path, tiny_space, tiny_pool_parts):
    entries, tensors = tiny_pool_parts
    path = tmp_path / "pool.safetensors"
    write_pool(path, tiny_space, entries, tensors)
    before = path.read_bytes()
    killed_mid_write = False
    for attempt in range(5):
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path), str(attempt)],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 60
        tmp = None
        while time.monotonic() < deadline and proc.poll() is None:
            tmps = [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]
            if tmps and os.path.getsize(tmp_path / tmps[0]) > 0:
                tmp = tmps[0]
                break
            time.sleep(0.0005)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        if tmp is not None and proc.returncode == -signal.SIGKILL and path.read_bytes() == before:
            killed_mid_write = True
            break
        # the writer finished before we could kill it: start over from the old file
        write_pool(path, tiny_space, entries, tensors)
        before = path.read_bytes()
    assert killed_mid_write, "could not kill the writer while it was writing"
    assert path.read_bytes() == before
    pool = load_pool(path)
    assert pool.space == tiny_space and pool.entries == tuple(entries)


def test_misaligned_tensor_named(tmp_path, good):
    header, data = split_file(good)
    header["__metadata__"]["adaptive_rt.sha256"] = hashlib.sha256(data).hexdigest()
    text = json.dumps(header).encode()
    text += b" " * ((-len(text) % 8) + 2)       # data section starts 2 bytes off alignment
    raw = struct.pack("<Q", len(text)) + text + data
    expect_error(tmp_path, raw, "not 4-byte aligned")


def test_written_file_mode_follows_umask_or_old_file(tmp_path, tiny_space, tiny_pool_parts):
    entries, tensors = tiny_pool_parts
    path = tmp_path / "m.safetensors"
    old = os.umask(0o022)
    try:
        write_pool(path, tiny_space, entries, tensors)
    finally:
        os.umask(old)
    assert (path.stat().st_mode & 0o777) == 0o644
    os.chmod(path, 0o600)
    write_pool(path, tiny_space, entries, tensors)
    assert (path.stat().st_mode & 0o777) == 0o600


def test_finite_check_covers_every_chunk_of_a_large_tensor():
    from adaptive_rt.io.poolfile import _FINITE_CHUNK, _all_finite
    a = np.zeros((3 * _FINITE_CHUNK + 5,), np.float32)
    assert _all_finite(a)
    for i, bad in ((0, np.nan), (_FINITE_CHUNK, np.inf), (a.size - 1, -np.inf), (2 * _FINITE_CHUNK + 7, np.nan)):
        b = a.copy()
        b[i] = bad
        assert not _all_finite(b.reshape(-1, 1)), i

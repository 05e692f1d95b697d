"""Writes the seed corpora of fuzz/corpus/ (checked in; run again only to
change them): small valid inputs of every format, and a few broken ones."""
from __future__ import annotations

import json
import os
import struct

import numpy as np

from adaptive_rt.daemon.protocol import npy_bytes, pack_frame
from adaptive_rt.io.poolfile import write_pool
from adaptive_rt.io.randompool import random_pool
from adaptive_rt.model.space import SearchSpace

HERE = os.path.dirname(os.path.abspath(__file__))

TINY = {"name": "seed-tiny", "in_channels": 1, "num_classes": 3, "input_size": 12, "resolutions": [8, 12],
        "stem_channels": 4, "stem_kernel": 3, "stem_stride": 1, "stem_act": "hswish",
        "stages": [{"channels": 8, "stride": 2, "depths": [1, 2], "kernel_sizes": [3, 5], "expand_ratios": [2.0],
                    "width_mults": [0.5, 1.0], "act": "relu", "se": True}],
        "head_channels": 8, "head_act": "hswish"}


def put(target: str, name: str, data: bytes) -> None:
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def main() -> None:
    space = SearchSpace.from_dict(TINY)
    entries, tensors = random_pool(space, 3, seed=0)
    path = os.path.join(HERE, "corpus", "poolfile", "tiny.safetensors")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    pool = write_pool(path, space, entries, tensors)
    raw = open(path, "rb").read()
    put("poolfile", "truncated", raw[: len(raw) // 2])
    x = np.zeros((1, 12, 12, 1), np.float32)
    put("npy", "v1", npy_bytes(x))
    put("npy", "v2", b"\x93NUMPY\x02\x00" + struct.pack("<I", 44) + b"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }".ljust(44)[:44] + b"\0" * 8)
    put("npy", "dict-key", b"\x93NUMPY\x01\x00" + struct.pack("<H", 10) + b"{[1]: 2}  ")
    put("frame", "infer", pack_frame({"op": "infer", "dtype": "float32", "shape": [1, 12, 12, 1]}, x.tobytes()))
    put("frame", "status", pack_frame({"op": "status", "id": 7}))
    put("http", "npy", b"POST /v1/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-npy\r\n"
                       b"Content-Length: 10\r\n\r\n" + npy_bytes(x)[:10])
    put("http", "json", b"POST /v1/infer HTTP/1.1\r\nContent-Length: 20\r\n\r\n" + json.dumps({"inputs": [[1.0, 2.0]]}).encode())
    put("http", "digits", b"GET /metrics HTTP/1.1\r\nContent-Length: \xc2\xb2\r\n\r\n")
    x = np.zeros((1, 2, 2, 1), np.float32)
    js = json.dumps({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 2, 2, 1],
                                 "data": x.ravel().tolist()}]}).encode()
    # shm: the input slot (3 images of the seed pool's 12x12x1), then request records
    slot = np.zeros(3 * 144, np.float32).tobytes()
    rec = lambda n, seq, magic=b"ARS1": struct.pack("<4sIQ", magic, n, seq)  # noqa: E731
    put("shm", "records", slot + rec(0, 1) + rec(2, 2) + rec(3, 3) + rec(1, 4))
    put("shm", "too-many", slot + rec(0, 1) + rec(4, 2) + rec(0, 3))
    put("shm", "bad-magic", slot + rec(0, 1) + rec(0, 2, b"XXXX") + rec(0, 3))
    put("shm", "nan-input", np.full(3 * 144, np.nan, np.float32).tobytes() + rec(0, 1) + rec(0, 2)[:9])
    put("kserve", "json", b"\n/v2/models/m/infer\n" + js)
    h = json.dumps({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 2, 2, 1],
                                "parameters": {"binary_data_size": 16}}],
                    "outputs": [{"name": "logits", "parameters": {"binary_data": True}}]}).encode()
    put("kserve", "binary", str(len(h)).encode() + b"\n/v2/models/m/versions/1/infer\n" + h + x.tobytes())
    put("kserve", "bad-size", b"999\n/v2/health/ready\n" + h)
    put("kserve", "nested", b"\n/v2\n" + json.dumps({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 2],
                                                                 "data": [[1e40, 2]]}]}).encode())
    prof = {"schema": 2, "pool_sha256": pool.sha256, "backend": "native", "entries": {
        e.id: {"memory_bytes": 1000, "batches": {"1": {"1": {"p50_ms": 0.1, "p95_ms": 0.2}}}} for e in pool.entries}}
    put("profile", "good", json.dumps(prof).encode())
    from adaptive_rt.serve.latency import measure_tables
    tables = measure_tables(space, [("native", 1, 1), ("native", 2, 1), ("native", 1, 4)], n=8, repeats=3)
    put("latency", "tables-schema2", json.dumps({"schema": 2, "space": space.to_dict(), "device": tables[0].device,
                                                 "tables": [t.table_dict() for t in tables]}).encode())
    put("trace", "json", json.dumps([{"time": 0, "other_cpu_cores": 0.5}, {"time": 1, "other_cpu_cores": 2}]).encode())
    put("trace", "csv", b"time,other_cpu_cores,battery_percent\n0,0.5,80\n1,2,79\n")
    put("plan", "zeros", b"\0" * 64)
    put("plan", "ones", b"\x01\x02\x03\x04" * 32)


if __name__ == "__main__":
    main()

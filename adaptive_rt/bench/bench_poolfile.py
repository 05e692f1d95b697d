"""Pool file cost: write, validate + map (with and without the checksum pass),
for the shipped presets over random weights.

    python -m adaptive_rt.bench.bench_poolfile --json PATH [--pool P] [--quick]
"""
from __future__ import annotations

import json
import os
import statistics
import tempfile
import time

from adaptive_rt.io.poolfile import load_pool, write_pool
from adaptive_rt.model.presets import get_space
from adaptive_rt.io.randompool import random_pool

from .common import parse_args


def _times(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1e3)
    return out


def main(argv: list[str] | None = None) -> int:
    a = parse_args(__doc__, argv)
    repeats = 5 if a.quick else 21
    results = []
    if a.pool:   # a given pool: only its validate + map cost
        full = _times(lambda: load_pool(a.pool), repeats)
        nohash = _times(lambda: load_pool(a.pool, verify_checksum=False), repeats)
        pool = load_pool(a.pool)
        results.append({"pool": a.pool, "entries": len(pool.entries), "file_mb": pool.file_bytes / 1e6,
                        "weight_mb": pool.weight_bytes / 1e6, "load_ms_p50": statistics.median(full),
                        "load_nochecksum_ms_p50": statistics.median(nohash)})
        with open(a.json, "w") as f:
            json.dump({"pools": results, "repeats": repeats}, f, indent=2)
        return 0
    with tempfile.TemporaryDirectory() as d:
        for space_name, k in (("mbv3-tiny28", 8), ("mbv3-224", 8)):
            space = get_space(space_name)
            entries, tensors = random_pool(space, k, seed=0)
            path = os.path.join(d, f"{space_name}.safetensors")
            w = _times(lambda: write_pool(path, space, entries, tensors), max(3, repeats // 4))
            full = _times(lambda: load_pool(path), repeats)
            nohash = _times(lambda: load_pool(path, verify_checksum=False), repeats)
            pool = load_pool(path)
            row = {"space": space_name, "entries": k, "file_mb": pool.file_bytes / 1e6,
                   "weight_mb": pool.weight_bytes / 1e6,
                   "write_ms_p50": statistics.median(w),
                   "load_ms_p50": statistics.median(full),
                   "load_nochecksum_ms_p50": statistics.median(nohash)}
            results.append(row)
            print(json.dumps(row))
    with open(a.json, "w") as f:
        json.dump({"pools": results, "repeats": repeats}, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

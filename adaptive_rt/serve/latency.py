"""Device latency tables: what a subnet of a space costs *on a device*.

PSS buckets and ``build-pool --metric latency`` need the latency of any
subnet of the space, not only of pool entries. ``LatencyTable.measure``
runs ``n`` subnets spread over the space's cost range on one backend (the
native engine, or ONNX Runtime / LiteRT where installed) at a thread count
and batch size (random weights of the space's shapes: latency does not
depend on the values), then fits a non-negative linear model over
per-op-family work — MMACs of 1x1, depthwise, dense and linear layers, SE
MACs, op count (fixed cost per op) and MB of activations written — so every
other subnet is predicted from its graph. The measured subnets and the
model's error on a held-out quarter are kept with the table.

No torch: ``adaptive-rt latency-table`` makes the tables on the device
itself with the runtime install only, and training on another machine uses
the file (``--latency-table FILE``). A file (schema 2) holds the device it
was measured on and one table per (backend, threads, batch)::

    {"schema": 2, "space": {...}, "device": {"cpu": ..., "machine": ..., "cores": ..., "isa": ...},
     "tables": [{"backend": "native", "threads": 1, "batch": 1, "features": [...], "coef": [...],
                 "holdout_mape": 0.05, "samples": [{"config": ID, "p50_ms": 0.2}, ...]}, ...]}

Schema 1 files (one native table, its fields at the top level) still load.
"""
from __future__ import annotations

import json
import os
import platform
import tempfile
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from ..model.graph import cached_graph
from ..io.atomic import atomic_write_bytes
from ..io.jsonio import read_json_file
from ..model.space import SearchSpace, SubnetConfig

__all__ = ["FEATURES", "features", "LatencyTable", "LatencyTableError", "device_info", "save_tables", "load_tables"]

FEATURES = ("one", "pw_mmacs", "dw_mmacs", "conv_mmacs", "linear_mmacs", "se_mmacs", "ops", "act_mb")
SCHEMA = 2
MAX_TABLES = 64


class LatencyTableError(ValueError):
    """A latency table is invalid or belongs to another space."""


def features(space: SearchSpace, config: SubnetConfig) -> np.ndarray:
    g = cached_graph(space, config)
    f = dict.fromkeys(FEATURES, 0.0)
    f["one"] = 1.0
    for op in g.ops:
        ho, wo, co = op.out_shape
        ci = op.in_shape[2]
        if op.kind == "pwconv":
            f["pw_mmacs"] += ho * wo * co * ci / 1e6
        elif op.kind == "dwconv":
            f["dw_mmacs"] += ho * wo * co * op.kernel * op.kernel / 1e6
        elif op.kind == "conv":
            f["conv_mmacs"] += ho * wo * co * op.kernel * op.kernel * ci / 1e6
        elif op.kind == "linear":
            f["linear_mmacs"] += co * ci / 1e6
        if op.se is not None:
            r = op.se[0].active[1]
            f["se_mmacs"] += 2 * co * r / 1e6
        f["ops"] += 1
        f["act_mb"] += ho * wo * co * 4 / 1e6
    return np.array([f[k] for k in FEATURES])


def _nnls(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least squares with non-negative coefficients (drop the most negative
    feature and refit until none is negative; fine for a few features)."""
    active = list(range(x.shape[1]))
    while True:
        c, *_ = np.linalg.lstsq(x[:, active], y, rcond=None)
        if (c >= 0).all() or len(active) == 1:
            out = np.zeros(x.shape[1])
            out[active] = np.maximum(c, 0)
            return out
        del active[int(np.argmin(c))]


def device_info(isa: str | None = None) -> dict:
    """The device a table is measured on: CPU model, machine, cores, the native ISA."""
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, val = line.partition(":")
                if key.strip() in ("model name", "Model", "Hardware") and val.strip():
                    cpu = val.strip()
                    if key.strip() != "Hardware":
                        break
    except OSError:
        pass
    return {"cpu": cpu or platform.machine(), "machine": platform.machine(), "cores": os.cpu_count(),
            **({"isa": isa} if isa else {})}


@dataclass
class LatencyTable:
    space: SearchSpace
    threads: int
    coef: np.ndarray
    samples: list[tuple[str, float]] = field(default_factory=list)   # (config id, measured p50 ms)
    holdout_mape: float | None = None
    device: dict = field(default_factory=dict)
    backend: str = "native"
    batch: int = 1

    def predict(self, config: SubnetConfig) -> float:
        """Predicted p50 ms of ``config`` at ``threads`` threads and ``batch`` images."""
        return float(max(features(self.space, config) @ self.coef, 1e-6))

    def describe(self) -> str:
        err = f", held-out error {100 * self.holdout_mape:.0f}%" if self.holdout_mape is not None else ""
        return f"{self.backend}, {self.threads} thread(s), batch {self.batch}: {len(self.samples)} subnets{err}"

    # ------------------------------------------------------------------ measuring
    @classmethod
    def measure(cls, space: SearchSpace, n: int = 40, threads: int = 1, seed: int = 0, repeats: int = 15,
                progress: Callable[[str], None] | None = None,
                expect: Callable[[int], None] | None = None, backend: str = "native",
                batch: int = 1) -> "LatencyTable":
        return measure_tables(space, [(backend, threads, batch)], n, seed, repeats, progress, expect)[0]

    @classmethod
    def fit(cls, space: SearchSpace, threads: int, measured: list[tuple[SubnetConfig, float]], seed: int = 0,
            device: dict | None = None, backend: str = "native", batch: int = 1) -> "LatencyTable":
        x = np.stack([features(space, c) for c, _ in measured])
        y = np.array([ms for _, ms in measured])
        idx = np.random.default_rng(seed).permutation(len(y))
        hold, train = idx[: len(y) // 4], idx[len(y) // 4:]
        c = _nnls(x[train], y[train])
        mape = float(np.mean(np.abs(x[hold] @ c - y[hold]) / y[hold])) if len(hold) else None
        return cls(space, threads, _nnls(x, y), [(cfg.id, ms) for cfg, ms in measured], mape, device or {},
                   backend, batch)

    # ------------------------------------------------------------------ files
    def table_dict(self) -> dict:
        return {"backend": self.backend, "threads": self.threads, "batch": self.batch, "features": list(FEATURES),
                "coef": [float(v) for v in self.coef], "holdout_mape": self.holdout_mape,
                "samples": [{"config": cid, "p50_ms": ms} for cid, ms in self.samples]}

    def to_dict(self) -> dict:
        """A file of this one table."""
        return {"schema": SCHEMA, "space": self.space.to_dict(), "device": self.device,
                "tables": [self.table_dict()]}

    def save(self, path: str) -> None:
        save_tables(path, [self])

    @classmethod
    def load(cls, path: str, space: SearchSpace, backend: str = "native", threads: int | None = None,
             batch: int = 1) -> "LatencyTable":
        """The table of ``backend`` at ``threads`` (default: the fewest the
        file has) and ``batch`` from a file, validated against ``space``."""
        return cls.from_dict(read_json_file(path, "latency table", LatencyTableError), space, path, backend,
                             threads, batch)

    @classmethod
    def from_dict(cls, d, space: SearchSpace, path: str = "latency table", backend: str = "native",
                  threads: int | None = None, batch: int = 1) -> "LatencyTable":
        """The matching table of a file's dict, validated (``path`` names it in errors)."""
        tables = tables_from_dict(d, space, path)
        match = [t for t in tables if t.backend == backend and t.batch == batch
                 and (threads is None or t.threads == threads)]
        if not match:
            have = ", ".join(f"{t.backend}/{t.threads} thread(s)/batch {t.batch}" for t in tables)
            want = f"{backend}/{'any' if threads is None else threads} thread(s)/batch {batch}"
            raise LatencyTableError(f"{path}: no table for {want}; it has {have}")
        return min(match, key=lambda t: t.threads)


def measure_tables(space: SearchSpace, setups: Sequence[tuple[str, int, int]], n: int = 40, seed: int = 0,
                   repeats: int = 15, progress: Callable[[str], None] | None = None,
                   expect: Callable[[int], None] | None = None) -> list[LatencyTable]:
    """One table per (backend, threads, batch) of ``setups``, every one over
    the same ``n`` subnets (the min and max configs and ``n - 2`` spread over
    MFLOPs between them; fewer where the space has fewer): each subnet's p50
    of ``repeats`` timed runs after 3 warm-up runs."""
    from ..io.poolfile import write_pool
    from ..io.randompool import random_pool
    from ..model.weights import spread_configs
    from .backends import make_backend
    from .profile import time_runs
    if n < 8:
        raise ValueError("a latency table needs at least 8 measured subnets")
    configs = spread_configs(space, n, seed)     # the min and max configs among them
    tables = []
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "latency.safetensors")
        entries, tensors = random_pool(space, len(configs), seed=seed, configs=configs)
        pool = write_pool(path, space, entries, tensors)
        if expect:
            expect(len(pool.entries) * len(setups))
        isa = None
        for backend, threads, batch in setups:
            be = make_backend(backend, pool, threads)
            isa = isa or (be.isa if backend == "native" else None)
            measured = []
            for e in pool.entries:
                run = be.prepare(e.id)
                x = np.random.default_rng(0).random((batch,) + pool.input_shape, dtype=np.float32)
                measured.append((e.config, float(np.median(time_runs(run, x, threads, 3, repeats)))))
                if progress:
                    progress(f"{backend} t{threads} b{batch} {e.config.id}: {measured[-1][1]:.3f} ms")
            del be
            tables.append(LatencyTable.fit(space, threads, measured, seed, None, backend, batch))
    dev = device_info(isa)
    for t in tables:
        t.device = dev
    return tables


def save_tables(path: str, tables: Sequence[LatencyTable]) -> None:
    """One file of ``tables`` (one space; the first table's device)."""
    if not tables or any(t.space.to_dict() != tables[0].space.to_dict() for t in tables):
        raise LatencyTableError("a latency table file holds one or more tables of one space")
    d = {"schema": SCHEMA, "space": tables[0].space.to_dict(), "device": tables[0].device,
         "tables": [t.table_dict() for t in tables]}
    atomic_write_bytes(path, json.dumps(d, indent=1).encode())


def load_tables(path: str, space: SearchSpace) -> list[LatencyTable]:
    """Every table of a file, validated against ``space``."""
    return tables_from_dict(read_json_file(path, "latency table", LatencyTableError), space, path)


def _count(v, lo: int, hi: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def tables_from_dict(d, space: SearchSpace, path: str) -> list[LatencyTable]:
    if not isinstance(d, dict) or d.get("schema") not in (1, SCHEMA):
        raise LatencyTableError(f"{path}: not a latency table (schema 1 or {SCHEMA})")
    if d.get("space") != space.to_dict():
        name = d.get("space", {}).get("name") if isinstance(d.get("space"), dict) else None
        raise LatencyTableError(f"{path}: latency table is for another search space"
                                + (f" ({name!r}, not {space.name!r})" if isinstance(name, str) else ""))
    device = d.get("device") if isinstance(d.get("device"), dict) else {}
    if d["schema"] == 1:
        raw = [dict(d, backend="native", batch=1)]
    else:
        raw = d.get("tables")
        if not isinstance(raw, list) or not (1 <= len(raw) <= MAX_TABLES):
            raise LatencyTableError(f"{path}: tables must be a list of 1..{MAX_TABLES} tables")
    out, seen = [], set()
    for i, t in enumerate(raw):
        where = f"{path}: table {i + 1}"
        if not isinstance(t, dict):
            raise LatencyTableError(f"{where} is not an object")
        backend = t.get("backend")
        if not isinstance(backend, str) or not backend.isidentifier() or len(backend) > 32:
            raise LatencyTableError(f"{where}: backend missing or invalid")
        threads, batch = t.get("threads"), t.get("batch")
        if not _count(threads, 1, 1024):
            raise LatencyTableError(f"{where}: threads missing or invalid")
        if not _count(batch, 1, 1 << 16):
            raise LatencyTableError(f"{where}: batch missing or invalid")
        if (backend, threads, batch) in seen:
            raise LatencyTableError(f"{where}: a second table for {backend}/{threads} thread(s)/batch {batch}")
        seen.add((backend, threads, batch))
        if t.get("features") != list(FEATURES):
            raise LatencyTableError(f"{where}: latency table features differ: {t.get('features')}")
        coef = t.get("coef")
        if (not isinstance(coef, list) or len(coef) != len(FEATURES)
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < 1e6 for v in coef)):
            raise LatencyTableError(f"{where}: coefficients missing or invalid")
        samples = t.get("samples", [])
        if not isinstance(samples, list) or not all(
                isinstance(s, dict) and isinstance(s.get("config"), str) and isinstance(s.get("p50_ms"), (int, float))
                and not isinstance(s.get("p50_ms"), bool) for s in samples):
            raise LatencyTableError(f"{where}: samples must be a list of {{config, p50_ms}}")
        mape = t.get("holdout_mape")
        out.append(LatencyTable(space, threads, np.array(coef, float),
                                [(s["config"], float(s["p50_ms"])) for s in samples],
                                float(mape) if isinstance(mape, (int, float)) and not isinstance(mape, bool) else None,
                                device, backend, batch))
    return out

"""Device latency table: what a subnet of a space costs *on this device*.

PSS buckets and ``build-pool --metric latency`` need the latency of any
subnet of the space, not only of pool entries. ``LatencyTable.measure``
runs ``n`` subnets spread over the space's cost range with the native engine
(random weights of the space's shapes: latency does not depend on the
values), then fits a non-negative linear model over per-op-family work —
MMACs of 1x1, depthwise, dense and linear layers, SE MACs, op count (fixed
cost per op) and MB of activations written — so every other subnet is
predicted from its graph. The measured subnets and the model's error on a
held-out quarter are kept in the JSON table.
"""
from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..model.graph import cached_graph
from ..io.atomic import atomic_write_bytes
from ..io.jsonio import read_json_file
from ..model.space import SearchSpace, SubnetConfig

__all__ = ["FEATURES", "features", "LatencyTable", "LatencyTableError"]

FEATURES = ("one", "pw_mmacs", "dw_mmacs", "conv_mmacs", "linear_mmacs", "se_mmacs", "ops", "act_mb")
SCHEMA = 1


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


@dataclass
class LatencyTable:
    space: SearchSpace
    threads: int
    coef: np.ndarray
    samples: list[tuple[str, float]] = field(default_factory=list)   # (config id, measured p50 ms)
    holdout_mape: float | None = None
    device: dict = field(default_factory=dict)

    def predict(self, config: SubnetConfig) -> float:
        """Predicted p50 ms of ``config`` at ``threads`` threads, batch 1."""
        return float(max(features(self.space, config) @ self.coef, 1e-6))

    # ------------------------------------------------------------------ measuring
    @classmethod
    def measure(cls, space: SearchSpace, n: int = 40, threads: int = 1, seed: int = 0, repeats: int = 15,
                progress: Callable[[str], None] | None = None,
                expect: Callable[[int], None] | None = None) -> "LatencyTable":
        from ..engine import Engine
        from ..io.poolfile import write_pool
        from ..io.randompool import random_pool
        from ..model.weights import spread_configs
        if n < 8:
            raise ValueError("a latency table needs at least 8 measured subnets")
        configs = list(dict.fromkeys([space.min_config(), space.max_config()] + spread_configs(space, n - 2, seed)))
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "latency.safetensors")
            entries, tensors = random_pool(space, len(configs), seed=seed, configs=configs)
            write_pool(path, space, entries, tensors)
            eng = Engine.open(path, max_threads=threads)
            measured = []
            if expect:
                expect(len(eng.pool.entries))
            for e in eng.pool.entries:
                plan = eng.plan(e)
                x = np.random.default_rng(0).random((1,) + plan.input_shape, dtype=np.float32)
                out = np.empty((1, plan.num_classes), np.float32)
                for _ in range(3):
                    eng.run(plan, x, threads=threads, out=out)
                ts = []
                for _ in range(repeats):
                    t0 = time.perf_counter()
                    eng.run(plan, x, threads=threads, out=out)
                    ts.append((time.perf_counter() - t0) * 1e3)
                measured.append((e.config, float(np.median(ts))))
                if progress:
                    progress(f"{e.config.id}: {measured[-1][1]:.3f} ms")
            isa = eng.isa
            del eng
        return cls.fit(space, threads, measured, seed, {"machine": platform.machine(), "isa": isa,
                                                       "cpus": os.cpu_count()})

    @classmethod
    def fit(cls, space: SearchSpace, threads: int, measured: list[tuple[SubnetConfig, float]], seed: int = 0,
            device: dict | None = None) -> "LatencyTable":
        x = np.stack([features(space, c) for c, _ in measured])
        y = np.array([ms for _, ms in measured])
        idx = np.random.default_rng(seed).permutation(len(y))
        hold, train = idx[: len(y) // 4], idx[len(y) // 4:]
        c = _nnls(x[train], y[train])
        mape = float(np.mean(np.abs(x[hold] @ c - y[hold]) / y[hold])) if len(hold) else None
        return cls(space, threads, _nnls(x, y), [(cfg.id, ms) for cfg, ms in measured], mape, device or {})

    # ------------------------------------------------------------------ files
    def to_dict(self) -> dict:
        return {"schema": SCHEMA, "space": self.space.to_dict(), "threads": self.threads,
                "features": list(FEATURES), "coef": [float(v) for v in self.coef],
                "holdout_mape": self.holdout_mape, "device": self.device,
                "samples": [{"config": cid, "p50_ms": ms} for cid, ms in self.samples]}

    def save(self, path: str) -> None:
        atomic_write_bytes(path, json.dumps(self.to_dict(), indent=1).encode())

    @classmethod
    def load(cls, path: str, space: SearchSpace) -> "LatencyTable":
        return cls.from_dict(read_json_file(path, "latency table", LatencyTableError), space, path)

    @classmethod
    def from_dict(cls, d, space: SearchSpace, path: str = "latency table") -> "LatencyTable":
        """The table ``to_dict`` wrote, validated (``path`` names it in errors)."""
        if not isinstance(d, dict) or d.get("schema") != SCHEMA:
            raise LatencyTableError(f"{path}: not a latency table of schema {SCHEMA}")
        if d.get("space") != space.to_dict():
            raise LatencyTableError(f"{path}: latency table is for another search space")
        if d.get("features") != list(FEATURES):
            raise LatencyTableError(f"{path}: latency table features differ: {d.get('features')}")
        coef = d.get("coef")
        if (not isinstance(coef, list) or len(coef) != len(FEATURES)
                or not all(isinstance(v, (int, float)) and 0 <= v < 1e6 for v in coef)):
            raise LatencyTableError(f"{path}: coefficients missing or invalid")
        threads = d.get("threads")
        if not isinstance(threads, int) or threads < 1:
            raise LatencyTableError(f"{path}: threads missing or invalid")
        raw = d.get("samples", [])
        if not isinstance(raw, list) or not all(
                isinstance(s, dict) and isinstance(s.get("config"), str) and isinstance(s.get("p50_ms"), (int, float))
                and not isinstance(s.get("p50_ms"), bool) for s in raw):
            raise LatencyTableError(f"{path}: samples must be a list of {{config, p50_ms}}")
        samples = [(s["config"], float(s["p50_ms"])) for s in raw]
        mape = d.get("holdout_mape")
        return cls(space, threads, np.array(coef, float), samples,
                   float(mape) if isinstance(mape, (int, float)) else None,
                   d.get("device") if isinstance(d.get("device"), dict) else {})

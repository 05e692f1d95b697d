"""On-device calibration: the device profile the policy plans with.

``calibrate(pool)`` measures every entry on this device with the native
engine at each batch size and thread count (warm-up, then repeats; median and
p95 of one request) and the memory each entry needs (the weights it reads plus
its activation arena; an int8 entry's weights at a byte each). The profile is JSON, tied to the pool by
its SHA-256, written atomically into the user's cache folder
(``$XDG_CACHE_HOME/adaptive_rt/profiles/``, default ``~/.cache``), named by
that hash: never into the pool's folder (which may be the installed package).
"""
from __future__ import annotations

import json
import os
import platform
import time
from typing import Callable

import numpy as np

from ..engine import DEFAULT_THREADS
from ..io.atomic import atomic_write_bytes
from ..io.jsonio import read_json_file
from ..io.poolfile import PoolFile
from .backends import make_backend
from .monitor import PsutilSource
from .policy import EntryProfile

__all__ = ["calibrate", "default_profile_path", "save_profile", "load_profile", "read_profile", "profile_entries",
           "merge_profiles", "ProfileError", "taken_under_load", "LOADED_CORES"]

PROFILE_SCHEMA = 2
#: Other processes busier than this (in cores) during a calibration make its profile provisional
LOADED_CORES = 0.25


class ProfileError(ValueError):
    """A device profile is missing, invalid or belongs to another pool."""


def default_profile_path(sha256: str, backend: str = "native") -> str:
    """Where the device profile of the pool with this SHA-256 lives: the
    user's cache folder, keyed by the hash (the same pool anywhere shares it)."""
    suffix = ".profile.json" if backend == "native" else f".{backend}.profile.json"
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "adaptive_rt", "profiles", f"{sha256[:32]}{suffix}")


def _positive_ints(values, what: str) -> list[int]:
    out = sorted(set(int(v) for v in values))
    if not out or out[0] < 1:
        raise ValueError(f"{what} must be positive integers")
    return out


def time_runs(run, x, threads: int, warmup: int, repeats: int) -> list[float]:
    """Milliseconds of ``repeats`` timed calls ``run(x, threads)`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        run(x, threads)
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run(x, threads)
        ts.append((time.perf_counter() - t0) * 1e3)
    return ts


def calibrate(pool: PoolFile, threads: list[int] | None = None, warmup: int = 5, repeats: int = 30,
              progress: Callable[[str], None] | None = None, batches: list[int] | None = None,
              backend=None) -> dict:
    """Measure every entry at every (batch size, thread count): latency of one
    request of ``batch`` images, median and p95 over ``repeats`` runs — on the
    native engine, or on ``backend`` (an ``adaptive_rt.serve.backends.Backend``,
    at the thread count its sessions were made with)."""
    ncpu = os.cpu_count() or 1
    if backend is None:
        threads = _positive_ints(threads or range(1, DEFAULT_THREADS + 1), "thread counts")
        backend = make_backend("native", pool, max(threads))
    else:
        threads = backend.thread_counts()
    batches = _positive_ints(batches or [1], "batch sizes")
    if repeats < 1 or warmup < 0:
        raise ValueError("repeats must be at least 1 and warmup not negative")
    load = PsutilSource()     # the other processes' CPU over the whole measurement
    entries = {}
    shape = pool.input_shape
    for e in pool.entries:
        run = backend.prepare(e.id)
        per_batch = {}
        for b in batches:
            x = np.random.default_rng(0).random((b,) + shape, dtype=np.float32)
            per = {}
            for t in threads:
                ts = time_runs(run, x, t, warmup, repeats)
                per[str(t)] = {"p50_ms": float(np.percentile(ts, 50)), "p95_ms": float(np.percentile(ts, 95))}
                if progress:
                    progress(f"{e.id} b{b} t{t}: p50 {per[str(t)]['p50_ms']:.3f} ms")
            per_batch[str(b)] = per
        weight_bytes = pool.entry_weight_bytes(e)
        arena = backend.arena_bytes(e.id)
        entries[e.id] = {"mflops": e.mflops, "accuracy": e.accuracy, "weight_bytes": weight_bytes,
                         "arena_bytes": arena, "memory_bytes": weight_bytes + arena, "batches": per_batch}
    isa = backend.isa
    return {"schema": PROFILE_SCHEMA, "pool_sha256": pool.sha256, "backend": backend.name, "isa": isa,
            "device": {"machine": platform.machine(), "processor": platform.processor(), "cpus": ncpu},
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "warmup": warmup, "repeats": repeats,
            "other_cpu_cores": round(load.sample().other_cpu_cores, 3), "entries": entries}


def taken_under_load(profile: dict) -> bool:
    """Whether other processes used more than ``LOADED_CORES`` of the CPUs
    while the profile was measured (its latencies are then too slow)."""
    v = profile.get("other_cpu_cores")
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v > LOADED_CORES


def merge_profiles(old: dict, new: dict) -> dict:
    """``new`` with the batch sizes only ``old`` measured (same pool) kept."""
    if not isinstance(old, dict) or (old.get("pool_sha256"), old.get("schema"), old.get("backend", "native")) != (
            new.get("pool_sha256"), new.get("schema"), new.get("backend", "native")):
        return new
    merged = json.loads(json.dumps(new))
    old_entries = old.get("entries")
    for eid, r in merged["entries"].items():
        o = old_entries.get(eid) if isinstance(old_entries, dict) else None
        batches = o.get("batches") if isinstance(o, dict) else None
        for b, per in (batches.items() if isinstance(batches, dict) else ()):
            r["batches"].setdefault(b, per)
    return merged


def save_profile(profile: dict, path: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    atomic_write_bytes(path, json.dumps(profile, indent=1).encode())


def read_profile(path: str) -> dict:
    """The raw profile JSON at ``path`` (ProfileError if unreadable or not a profile)."""
    d = read_json_file(path, "device profile", ProfileError, 8 << 20)
    if not isinstance(d, dict) or d.get("schema") != PROFILE_SCHEMA:
        raise ProfileError(f"{path}: not a device profile of schema {PROFILE_SCHEMA}: recalibrate")
    return d


def profile_entries(d: dict, pool: PoolFile, batch: int = 1, where: str = "profile",
                    backend: str = "native") -> list[EntryProfile]:
    """A profile dict as EntryProfiles for ``pool``'s entries at ``batch``
    images per request; ProfileError if malformed, of another pool or
    backend, or without that batch size."""
    if d.get("pool_sha256") != pool.sha256:
        raise ProfileError(f"{where}: profile was measured for another pool (sha256 differs): recalibrate")
    if d.get("backend", "native") != backend:
        raise ProfileError(f"{where}: profile was measured on backend {d.get('backend')!r}, not {backend!r}")
    entries = d.get("entries")
    if not isinstance(entries, dict):
        raise ProfileError(f"{where}: entries missing")
    out = []
    for e in pool.entries:
        r = entries.get(e.id)
        try:
            per_batch = r["batches"]
            mem = int(r["memory_bytes"])
        except (TypeError, KeyError, ValueError, OverflowError):
            raise ProfileError(f"{where}: entry {e.id!r} is missing or malformed") from None
        if not isinstance(per_batch, dict) or str(batch) not in per_batch:
            raise ProfileError(f"{where}: entry {e.id!r} was not measured at batch {batch}")
        try:
            lat = {int(t): float(v["p95_ms"]) for t, v in per_batch[str(batch)].items()}
        except (TypeError, KeyError, ValueError, AttributeError, OverflowError):
            raise ProfileError(f"{where}: entry {e.id!r} is missing or malformed") from None
        if not lat or any(not (0 < v < 1e7) for v in lat.values()) or min(lat) < 1 or not (0 <= mem < 1 << 50):
            raise ProfileError(f"{where}: entry {e.id!r} has invalid latencies")
        out.append(EntryProfile(e.id, e.mflops, e.accuracy, mem, lat))
    return out


def load_profile(path: str, pool: PoolFile, batch: int = 1, backend: str = "native") -> list[EntryProfile]:
    """The profile at ``path`` as EntryProfiles for ``pool``'s entries;
    ProfileError if it is unreadable, malformed or of another pool."""
    return profile_entries(read_profile(path), pool, batch, path, backend)

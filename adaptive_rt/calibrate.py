"""On-device calibration: the device profile the policy plans with.

``calibrate(pool)`` measures every entry on this device with the native
engine at each thread count (warm-up, then repeats; median and p95) and the
activation memory each plan needs. The profile is JSON, tied to the pool by
its SHA-256, written atomically beside the pool (``POOL.profile.json``) or,
where that folder is not writable, in the user's cache folder.
"""
from __future__ import annotations

import json
import os
import platform
import time
from typing import Callable

import numpy as np

from .poolfile import PoolFile, atomic_write_bytes, strict_json
from .policy import EntryProfile

__all__ = ["calibrate", "default_profile_path", "save_profile", "load_profile", "ProfileError"]

PROFILE_SCHEMA = 1


class ProfileError(ValueError):
    """A device profile is missing, invalid or belongs to another pool."""


def default_profile_path(pool_path: str, sha256: str) -> str:
    beside = os.path.abspath(pool_path) + ".profile.json"
    folder = os.path.dirname(beside)
    if os.access(folder, os.W_OK):
        return beside
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "adaptive_rt", f"{sha256[:32]}.profile.json")


def calibrate(pool: PoolFile, threads: list[int] | None = None, warmup: int = 5, repeats: int = 30,
              progress: Callable[[str], None] | None = None) -> dict:
    from .engine import Engine
    ncpu = os.cpu_count() or 1
    threads = sorted(set(threads or range(1, min(ncpu, 4) + 1)))
    if not threads or min(threads) < 1:
        raise ValueError("thread counts must be positive")
    eng = Engine(pool, max_threads=max(threads))
    entries = {}
    for e in pool.entries:
        plan = eng.plan(e)
        x = np.random.default_rng(0).random((1,) + plan.input_shape, dtype=np.float32)
        out = np.empty((1, plan.num_classes), np.float32)
        per = {}
        for t in threads:
            for _ in range(warmup):
                eng.run(plan, x, threads=t, out=out)
            ts = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                eng.run(plan, x, threads=t, out=out)
                ts.append((time.perf_counter() - t0) * 1e3)
            per[str(t)] = {"p50_ms": float(np.percentile(ts, 50)), "p95_ms": float(np.percentile(ts, 95))}
            if progress:
                progress(f"{e.id} t{t}: p50 {per[str(t)]['p50_ms']:.3f} ms")
        entries[e.id] = {"mflops": e.mflops, "accuracy": e.accuracy, "memory_bytes": plan.arena_bytes,
                         "threads": per}
    return {"schema": PROFILE_SCHEMA, "pool_sha256": pool.sha256, "isa": eng.isa,
            "device": {"machine": platform.machine(), "processor": platform.processor(), "cpus": ncpu},
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "warmup": warmup, "repeats": repeats,
            "entries": entries}


def save_profile(profile: dict, path: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    atomic_write_bytes(path, json.dumps(profile, indent=1).encode())


def load_profile(path: str, pool: PoolFile) -> list[EntryProfile]:
    """The profile at ``path`` as EntryProfiles for ``pool``'s entries;
    ProfileError if it is unreadable, malformed or of another pool."""
    try:
        with open(path, "rb") as f:
            raw = f.read(8 << 20)
        d = strict_json(raw.decode("utf-8"), "profile")
    except (OSError, UnicodeDecodeError) as e:
        raise ProfileError(f"{path}: cannot read device profile: {e}") from None
    except ValueError as e:
        raise ProfileError(f"{path}: {e}") from None
    if not isinstance(d, dict) or d.get("schema") != PROFILE_SCHEMA:
        raise ProfileError(f"{path}: not a device profile of schema {PROFILE_SCHEMA}")
    if d.get("pool_sha256") != pool.sha256:
        raise ProfileError(f"{path}: profile was measured for another pool (sha256 differs): recalibrate")
    out = []
    entries = d.get("entries")
    if not isinstance(entries, dict):
        raise ProfileError(f"{path}: entries missing")
    for e in pool.entries:
        r = entries.get(e.id)
        try:
            lat = {int(t): float(v["p95_ms"]) for t, v in r["threads"].items()}
            mem = int(r["memory_bytes"])
        except (TypeError, KeyError, ValueError):
            raise ProfileError(f"{path}: entry {e.id!r} is missing or malformed") from None
        if not lat or any(not (v > 0) for v in lat.values()) or min(lat) < 1:
            raise ProfileError(f"{path}: entry {e.id!r} has invalid latencies")
        out.append(EntryProfile(e.id, e.mflops, e.accuracy, mem, lat))
    return out

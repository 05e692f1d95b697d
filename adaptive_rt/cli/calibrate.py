"""adaptive-rt calibrate: the device profile."""
from __future__ import annotations

import argparse
import os
import sys

from ..engine import DEFAULT_THREADS
from .common import GrowingBar, UsageError, arguments, command, int_list, open_pool, progress_bar, pool_argument


def _calibrate_args(p: argparse.ArgumentParser) -> None:
    pool_argument(p)
    p.add_argument("--out", help="profile path (default: the user cache folder, $XDG_CACHE_HOME/adaptive_rt/profiles/, keyed by the pool's hash)")
    p.add_argument("--threads", default=None, help="thread counts to measure, e.g. 1,2 (default: 1..min(cpus, 4))")
    p.add_argument("--batch", default="1", help="images per request to measure, e.g. 1,16 (default: 1)")
    p.add_argument("--repeats", type=int, default=30, help="timed runs per entry, batch size and thread count")
    p.add_argument("--warmup", type=int, default=5, help="untimed runs first")
    p.add_argument("--force", action="store_true",
                   help="keep the profile as final even when other processes loaded the CPU meanwhile")




@command("calibrate", "measure every pool entry on this device and write the device profile")
@arguments(_calibrate_args)
def cmd_calibrate(a: argparse.Namespace) -> int:
    from ..serve.profile import (ProfileError, calibrate, default_profile_path, merge_profiles, read_profile,
                                 save_profile, taken_under_load)
    pool = open_pool(a.pool)
    threads = int_list(a.threads, "--threads", 256) if a.threads else None
    batches = int_list(a.batch, "--batch", 4096)
    if a.repeats < 1 or a.warmup < 0:
        raise UsageError("--repeats must be at least 1 and --warmup not negative")
    out = a.out or default_profile_path(pool.sha256)
    n = len(pool.entries) * len(batches) * len(threads or range(1, DEFAULT_THREADS + 1))
    bar, cb = progress_bar(n, "calibrate")
    prof = calibrate(pool, threads, a.warmup, a.repeats, cb, batches=batches)
    if bar is not None:
        bar.close()
    if taken_under_load(prof) and not a.force:
        prof["provisional"] = True
        print(f"adaptive-rt calibrate: other processes used {prof['other_cpu_cores']:.2f} cores during the "
              "measurement: the profile is saved as provisional (the runtime measures again when it opens the "
              "pool); run again on a quiet machine, or pass --force to keep it as final", file=sys.stderr)
    if os.path.exists(out):   # keep the other batch sizes measured before for this pool
        try:
            prof = merge_profiles(read_profile(out), prof)
        except ProfileError:
            pass
    try:
        save_profile(prof, out)
    except OSError as e:
        raise UsageError(f"cannot write profile {out}: {e.strerror or e}") from None
    print(f"wrote {out}")
    for eid, r in prof["entries"].items():
        for b in batches:
            cols = "  ".join(f"t{t}: p50 {v['p50_ms']:.3f} / p95 {v['p95_ms']:.3f} ms"
                             for t, v in r["batches"][str(b)].items())
            print(f"  {eid}: {r['mflops']:7.2f} MFLOPs  batch {b}  {cols}")
    return 0


def _latency_table_args(p: argparse.ArgumentParser) -> None:
    from ..model.presets import list_spaces
    p.add_argument("--space", required=True, choices=list_spaces(), help="search space the table is for")
    p.add_argument("--out", required=True, help="latency table file to write (.json)")
    p.add_argument("--threads", default="1", help="thread counts, e.g. 1,2: a table each")
    p.add_argument("--batch", default="1", help="images per run, e.g. 1,8: a table each")
    p.add_argument("--backends", default="native",
                   help="native, onnxruntime, litert (comma-separated; 'all': every one installed here)")
    p.add_argument("--subnets", type=int, default=40, help="subnets measured per table (spread over MFLOPs)")
    p.add_argument("--repeats", type=int, default=15, help="timed runs per subnet (p50 kept)")
    p.add_argument("--seed", type=int, default=0, help="seed of the measured subnets")


@command("latency-table", "measure this device's latency table of a search space (for --metric latency "
                          "in train, build-pool and import-ofa elsewhere); runtime install only")
@arguments(_latency_table_args)
def cmd_latency_table(a: argparse.Namespace) -> int:
    from ..model.presets import get_space
    from ..serve.backends import available_backends
    from ..serve.latency import measure_tables, save_tables
    threads = int_list(a.threads, "--threads", 256)
    batches = int_list(a.batch, "--batch", 4096)
    have = available_backends()
    names = [b for b in have if b != "torch"] if a.backends == "all" else [b for b in a.backends.split(",") if b]
    for b in names:
        if b not in have or b == "torch":
            raise UsageError(f"--backends: {b!r} is not available here (installed: "
                             f"{', '.join(x for x in have if x != 'torch')})")
    if not names:
        raise UsageError("--backends names no backend")
    if not 8 <= a.subnets <= 1000 or not 1 <= a.repeats <= 10000:
        raise UsageError("--subnets must be in 8..1000 and --repeats in 1..10000")
    folder = os.path.dirname(os.path.abspath(a.out))
    if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
        raise UsageError(f"cannot write {a.out}: {folder} is not a writable folder")
    space = get_space(a.space)
    setups = [(b, t, n) for b in dict.fromkeys(names) for t in dict.fromkeys(threads) for n in dict.fromkeys(batches)]
    with GrowingBar("latency-table", "run") as bar:
        tables = measure_tables(space, setups, a.subnets, a.seed, a.repeats, bar.progress, bar.expect)
    try:
        save_tables(a.out, tables)
    except OSError as e:
        raise UsageError(f"cannot write {a.out}: {e.strerror or e}") from None
    dev = tables[0].device
    print(f"wrote {a.out}: {len(tables)} table(s) of {space.name} on {dev.get('cpu')} ({dev.get('cores')} cores"
          + (f", {dev['isa']}" if dev.get("isa") else "") + ")")
    for t in tables:
        print("  " + t.describe())
    return 0

"""adaptive-rt calibrate: the device profile."""
from __future__ import annotations

import argparse
import os
import sys

from ..engine import DEFAULT_THREADS
from .common import UsageError, arguments, command, int_list, open_pool, progress_bar, pool_argument


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

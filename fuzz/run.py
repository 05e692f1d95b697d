"""Run the fuzz targets (fuzz/targets.py) with atheris, each in its own
process, for a bounded time:

    python fuzz/run.py all --seconds 30        # what CI runs
    python fuzz/run.py poolfile --seconds 3600 # a long run of one target

New interesting inputs go to a scratch corpus (the checked-in seeds in
fuzz/corpus/TARGET/ are read, never written); an input that crashes a target
is saved as fuzz/crashes/TARGET-crash-<sha1> and the run exits non-zero.
Reproduce one with ``python fuzz/run.py TARGET --input PATH``.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
NAMES = ["poolfile", "npy", "frame", "http", "kserve", "profile", "latency", "trace", "plan", "shm"]   # = targets.TARGETS


def _one(name: str, fuzzer_args: list[str]) -> None:
    import atheris
    sys.path.insert(0, HERE)
    from targets import TARGETS
    atheris.Setup([sys.argv[0]] + fuzzer_args, TARGETS[name])
    atheris.Fuzz()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("target", choices=NAMES + ["all"])
    ap.add_argument("--seconds", type=int, default=30, help="time per target (default 30)")
    ap.add_argument("--input", help="run the target once on this file (reproduce a crash)")
    ap.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    a, rest = ap.parse_known_args()
    if a.one:
        _one(a.target, rest)
        return 0
    names = NAMES if a.target == "all" else [a.target]
    crashes = os.path.join(HERE, "crashes")
    os.makedirs(crashes, exist_ok=True)
    failed = []
    for name in names:
        seeds = os.path.join(HERE, "corpus", name)
        work = tempfile.mkdtemp(prefix=f"fuzz-{name}-")
        try:
            if a.input:
                args = [a.input]
            else:
                args = [f"-max_total_time={a.seconds}", "-timeout=20", "-rss_limit_mb=4096",
                        f"-artifact_prefix={os.path.join(crashes, name)}-", "-print_final_stats=1", work, seeds]
            r = subprocess.run([sys.executable, os.path.abspath(__file__), name, "--one", *args],
                               capture_output=True, text=True)
            tail = (r.stdout + r.stderr).strip().splitlines()
            runs = next((ln.split(":")[-1].strip() for ln in reversed(tail) if "stat::number_of_executed_units" in ln), "?")
            status = "ok" if r.returncode == 0 else f"FAILED (exit {r.returncode})"
            print(f"fuzz {name}: {status}, {runs} runs", flush=True)
            if r.returncode != 0:
                failed.append(name)
                print("\n".join(tail[-40:]), flush=True)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    if failed:
        print(f"fuzz: {', '.join(failed)} failed; inputs saved in {crashes}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

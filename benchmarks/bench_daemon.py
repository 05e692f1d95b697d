"""`python -m benchmarks.bench_daemon --json PATH [--pool P] [--quick]` — see adaptive_rt.benchmarks.bench_daemon."""
from adaptive_rt.benchmarks.bench_daemon import main

if __name__ == "__main__":
    raise SystemExit(main())

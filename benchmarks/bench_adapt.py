"""`python -m benchmarks.bench_adapt --json PATH [--pool P] [--quick]` — see adaptive_rt.benchmarks.bench_adapt."""
from adaptive_rt.benchmarks.bench_adapt import main

if __name__ == "__main__":
    raise SystemExit(main())

"""`python -m benchmarks.bench_poolfile --json PATH [--pool P] [--quick]` — see adaptive_rt.benchmarks.bench_poolfile."""
from adaptive_rt.benchmarks.bench_poolfile import main

if __name__ == "__main__":
    raise SystemExit(main())

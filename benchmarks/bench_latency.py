"""`python -m benchmarks.bench_latency --json PATH [--pool P] [--quick]` — see adaptive_rt.benchmarks.bench_latency."""
from adaptive_rt.benchmarks.bench_latency import main

if __name__ == "__main__":
    raise SystemExit(main())

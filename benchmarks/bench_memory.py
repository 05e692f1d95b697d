"""`python -m benchmarks.bench_memory --json PATH [--pool P] [--quick]` — see adaptive_rt.benchmarks.bench_memory."""
from adaptive_rt.benchmarks.bench_memory import main

if __name__ == "__main__":
    raise SystemExit(main())

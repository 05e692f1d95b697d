"""`python -m benchmarks.bench_threads --json PATH [--pool P] [--quick]` — see adaptive_rt.benchmarks.bench_threads."""
from adaptive_rt.benchmarks.bench_threads import main

if __name__ == "__main__":
    raise SystemExit(main())

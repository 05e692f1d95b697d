"""`python -m benchmarks.bench_dist --json PATH [--quick]` — see adaptive_rt.benchmarks.bench_dist."""
from adaptive_rt.benchmarks.bench_dist import main

if __name__ == "__main__":
    raise SystemExit(main())

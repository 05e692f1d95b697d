"""`python -m benchmarks.bench_train --json PATH [--pool P] [--quick]` — see adaptive_rt.benchmarks.bench_train."""
from adaptive_rt.benchmarks.bench_train import main

if __name__ == "__main__":
    raise SystemExit(main())

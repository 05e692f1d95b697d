"""`python -m benchmarks.bench_switch --json PATH [--pool P] [--quick]` — see adaptive_rt.benchmarks.bench_switch."""
from adaptive_rt.benchmarks.bench_switch import main

if __name__ == "__main__":
    raise SystemExit(main())

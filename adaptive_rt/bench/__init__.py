"""Benchmarks (each ``python -m adaptive_rt.bench.bench_X --json PATH [--pool P]
[--quick]``, or all of them through ``adaptive-rt bench``), the report they
feed (``report``), and the demo's load generator (``demo``). Results of the
runs the docs quote are in the repository's ``docs/results/``."""

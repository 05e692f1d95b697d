"""The benchmark harness (``python -m adaptive_rt.benchmarks.bench_X`` or
``adaptive-rt bench``); the repository's ``benchmarks/`` folder keeps the
``python -m benchmarks.bench_X --json PATH [--pool P] [--quick]`` entry points."""

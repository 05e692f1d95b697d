"""Entry points ``python -m benchmarks.bench_X``: the code lives in
``adaptive_rt.benchmarks`` so that installed copies run it too."""

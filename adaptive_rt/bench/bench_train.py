"""Every sampler on the same dataset, epochs and seed: training wall time,
the pool build-pool makes of it, and the hypervolume of its (test accuracy,
MFLOPs) front. JSON plus a PNG of the fronts.

    python -m adaptive_rt.bench.bench_train --json PATH [--quick] [--dataset D] [--epochs N]

--quick: the digits dataset, 1 epoch each (under a minute on 2 cores);
default: mnist5k, 10 epochs each. (--pool does not apply: this benchmark
makes its own pools.)
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

from .common import machine, write_json


def hypervolume(points: list[tuple[float, float]], ref_mflops: float, ref_acc: float = 0.0) -> float:
    """Area dominated by (mflops, accuracy) points — less MFLOPs and more
    accuracy are better — up to the reference point (ref_mflops, ref_acc),
    with MFLOPs normalised by ref_mflops (so the result is in [0, 1])."""
    pts = sorted((m / ref_mflops, a) for m, a in points if m <= ref_mflops and a >= ref_acc)
    area, best = 0.0, ref_acc
    for i, (m, a) in enumerate(pts):
        if a <= best:
            continue
        nxt = 1.0
        for m2, a2 in pts[i + 1:]:
            if a2 > a:
                nxt = m2
                break
        area += (nxt - m) * (a - ref_acc)
        best = a
    return area


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--pool", help="ignored: this benchmark builds its own pools")
    ap.add_argument("--dataset")
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--samplers", default="uniform,rss,sandwich,ps,pss")
    a = ap.parse_args(argv)
    import torch
    torch.set_num_threads(os.cpu_count() or 1)
    from adaptive_rt.io.data import load_dataset
    from adaptive_rt.model.graph import subnet_cost
    from adaptive_rt.model.presets import get_space
    from adaptive_rt.train.loop import TrainConfig, Trainer
    from adaptive_rt.train.pool import build_pool
    dataset = a.dataset or ("digits" if a.quick else "mnist5k")
    epochs = a.epochs or (1 if a.quick else 10)
    space = get_space("mbv3-tiny28")
    data = load_dataset(dataset, seed=0)
    ref_mflops = subnet_cost(space, space.max_config()).mflops * 1.05
    out: dict = {"samplers": {}, "dataset": dataset, "epochs": epochs, "seed": 0, "machine": machine()}
    with tempfile.TemporaryDirectory() as d:
        for name in a.samplers.split(","):
            run = os.path.join(d, name)
            tr = Trainer(TrainConfig(sampler=name, dataset=dataset, epochs=epochs, seed=0,
                                     batch_size=128 if a.quick else 64), data, space, run)
            t0 = time.perf_counter()
            for _ in range(epochs):
                tr.train_epoch()
            wall = time.perf_counter() - t0
            tr.save()
            pool = build_pool(run, os.path.join(d, f"{name}.safetensors"), buckets=3 if a.quick else 6,
                              per_bucket=2 if a.quick else 6)
            entries = [{"id": e.id, "mflops": e.mflops, "accuracy": e.accuracy, "config": e.config.id}
                       for e in pool.entries]
            hv = hypervolume([(e["mflops"], e["accuracy"]) for e in entries], ref_mflops)
            out["samplers"][name] = {"wall_s": wall, "hypervolume": hv, "entries": entries}
            print(f"{name}: {wall:.1f} s training, hypervolume {hv:.4f}, accuracy "
                  f"{min(e['accuracy'] for e in entries):.4f}-{max(e['accuracy'] for e in entries):.4f}",
                  file=sys.stderr)
    write_json(a.json, out)
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(6, 4))
        for name, r in out["samplers"].items():
            xs = [e["mflops"] for e in r["entries"]]
            ys = [100 * e["accuracy"] for e in r["entries"]]
            ax.plot(xs, ys, marker="o", label=f"{name} (HV {r['hypervolume']:.3f})")
        ax.set_xlabel("MFLOPs")
        ax.set_ylabel(f"test accuracy on {dataset} (%)")
        ax.set_title(f"pool fronts, {epochs} epoch{'s' if epochs != 1 else ''} each, seed 0")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(os.path.splitext(a.json)[0] + ".png", dpi=110)
    except ImportError:
        print("matplotlib not installed: no plot", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The subnet samplers compared fairly: the same compute, the same yardstick,
several seeds.

- Compute: every sampler gets the same budget of subnet passes (one subnet's
  forward and backward on one batch). Samplers train different numbers of
  subnets a step (uniform and RSS 1, PSS 3, the sandwich rule 4, progressive
  shrinking 1 then 3), so each trains for the number of epochs that brings
  its passes nearest the budget; the passes it actually ran are reported.
- Yardstick: one fixed population of subnets, stratified over the MFLOPs
  range (``--buckets`` equal-width buckets, ``--per-bucket`` subnets drawn
  into each by rejection, plus the smallest and largest subnet), drawn once
  from its own seed, the same for every sampler and seed. Each trained
  supernet scores every member with its BN recalibrated, on the validation
  and the test split. The pool a sampler yields is the population's Pareto
  front on validation accuracy vs MFLOPs — one pool builder for all; its
  hypervolume is computed on test accuracy above an accuracy floor
  (``--floor``, default 90%; MFLOPs normalised by 1.05x the largest subnet,
  area normalised by 1 - floor, so 1.0 is 100% at zero cost). Without the
  floor the area is nearly the rectangle under the smallest entry and tells
  samplers apart by a handful of images.
- Seeds: ``--seeds`` (default 0, 1, 2): training seed and data split;
  reported as mean +- std over seeds, per sampler and per bucket.

    python -m adaptive_rt.bench.bench_train --json PATH [--quick] [--dataset D] [--budget PASSES]
        [--seeds 0,1,2] [--samplers uniform,rss,sandwich,ps,pss] [--buckets 6] [--per-bucket 6] [--floor 0.9]

Default: mnist5k, 660 passes (uniform and RSS 12 epochs, PSS 4, the
sandwich rule 3, progressive shrinking 5), 6 buckets x 6 subnets + 2 = 38
subnets. --quick: 480 digits, 20 passes, 2 buckets x 1 + 2 subnets, one
seed (a smoke run). (--pool does not apply: this benchmark trains its own
supernets.)
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import time

import numpy as np

from .common import OtherCPU, machine, quick_subset, write_json

POPULATION_SEED = 20261201      # the population is drawn once, apart from every training seed


def hypervolume(points: list[tuple[float, float]], ref_mflops: float, ref_acc: float = 0.0) -> float:
    """Area dominated by (mflops, accuracy) points — less MFLOPs and more
    accuracy are better — up to the reference point (ref_mflops, ref_acc),
    MFLOPs normalised by ref_mflops and accuracy by 1 - ref_acc, so the
    result is in [0, 1]; points below the floor or beyond ref_mflops add nothing."""
    pts = sorted((m / ref_mflops, a) for m, a in points if m <= ref_mflops and a > ref_acc)
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
    return area / (1.0 - ref_acc)


def stratified_population(space, buckets: int, per_bucket: int, seed: int = POPULATION_SEED) -> list[tuple]:
    """``(config, bucket)``: the smallest and largest subnet plus
    ``per_bucket`` distinct subnets in each of ``buckets`` equal MFLOPs
    buckets, drawn with random tilts (uniform draws crowd the middle of the
    range) and rejected until each bucket is full. Cheapest first."""
    from adaptive_rt.model.graph import subnet_cost
    cost = lambda c: subnet_cost(space, c).mflops   # noqa: E731
    lo_c, hi_c = space.min_config(), space.max_config()
    lo, hi = cost(lo_c), cost(hi_c)
    edges = [lo + (hi - lo) * i / buckets for i in range(buckets + 1)]
    found: list[list] = [[] for _ in range(buckets)]
    r = random.Random(seed)
    for _ in range(2000 * buckets * per_bucket):
        if all(len(f) >= per_bucket for f in found):
            break
        c = space.sample(r, tilt=r.uniform(-6.0, 6.0))
        if c in (lo_c, hi_c):
            continue
        b = min(buckets - 1, int((cost(c) - lo) / (hi - lo) * buckets))
        if len(found[b]) < per_bucket and c not in found[b]:
            found[b].append(c)
    short = [b for b, f in enumerate(found) if len(f) < per_bucket]
    if short:
        raise RuntimeError(f"space {space.name}: buckets {short} hold fewer than {per_bucket} subnets")
    out = [(lo_c, 0)] + [(c, b) for b, f in enumerate(found) for c in f] + [(hi_c, buckets - 1)]
    return sorted(out, key=lambda t: cost(t[0]))


def passes_per_step(name: str, space, seed: int, steps: int = 400) -> float:
    """Mean number of subnets a step of sampler ``name`` trains, over a
    simulated run of ``steps`` steps (progressive shrinking's count grows by phase)."""
    from adaptive_rt.train.samplers import make_sampler
    s = make_sampler(name, space, seed=seed)
    return sum(len(s.tasks(i, i / steps)) for i in range(steps)) / steps


def summarize(values: list[float]) -> dict:
    v = np.asarray(values, dtype=np.float64)
    return {"mean": float(v.mean()), "std": float(v.std()), "runs": [float(x) for x in v]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--pool", help="ignored: this benchmark trains its own supernets")
    ap.add_argument("--dataset")
    ap.add_argument("--budget", type=int, help="subnet passes per sampler")
    ap.add_argument("--seeds", help="e.g. 0,1,2")
    ap.add_argument("--samplers", default="uniform,rss,sandwich,ps,pss")
    ap.add_argument("--buckets", type=int)
    ap.add_argument("--per-bucket", type=int)
    ap.add_argument("--floor", type=float, default=0.9, help="accuracy floor of the hypervolume")
    ap.add_argument("--batch-size", type=int, default=64)
    a = ap.parse_args(argv)
    if not 0.0 <= a.floor < 1.0:
        ap.error("--floor must be in [0, 1)")
    import torch
    torch.set_num_threads(os.cpu_count() or 1)
    from adaptive_rt.io.data import load_dataset
    from adaptive_rt.model.graph import subnet_cost
    from adaptive_rt.model.pareto import pareto_front
    from adaptive_rt.model.presets import get_space
    from adaptive_rt.train.loop import TrainConfig, Trainer
    dataset = a.dataset or ("digits" if a.quick else "mnist5k")
    budget = a.budget or (20 if a.quick else 660)
    seeds = [int(s) for s in a.seeds.split(",")] if a.seeds else ([0] if a.quick else [0, 1, 2])
    buckets = a.buckets or (2 if a.quick else 6)
    per_bucket = a.per_bucket or (1 if a.quick else 6)
    samplers = a.samplers.split(",")
    space = get_space("mbv3-tiny28")
    population = stratified_population(space, buckets, per_bucket)
    mflops = [subnet_cost(space, c).mflops for c, _ in population]
    ref_mflops = mflops[-1] * 1.05
    other = OtherCPU().start()
    def data_for(seed: int):
        d = load_dataset(dataset, seed=seed)
        return quick_subset(d) if a.quick and not a.dataset else d
    steps_per_epoch = -(-len(data_for(seeds[0]).y_train) // a.batch_size)
    plan = {}
    for name in samplers:
        pps = passes_per_step(name, space, seeds[0])
        plan[name] = {"passes_per_step": pps, "epochs": max(1, round(budget / (pps * steps_per_epoch)))}
    out: dict = {"space": space.name, "dataset": dataset + ("[:480]" if a.quick and not a.dataset else ""),
                 "budget_passes": budget, "seeds": seeds,
                 "batch_size": a.batch_size, "floor": a.floor, "ref_mflops": ref_mflops,
                 "population": [{"config": c.id, "mflops": round(m, 4), "bucket": b}
                                for (c, b), m in zip(population, mflops)],
                 "population_seed": POPULATION_SEED, "buckets": buckets, "per_bucket": per_bucket, "samplers": {}}
    for name in samplers:
        runs = {"hypervolume": [], "mean_accuracy": [], "wall_s": [], "passes": [], "front": [], "val": [], "test": []}
        for seed in seeds:
            data = data_for(seed)
            cfg = TrainConfig(space=space.name, dataset=dataset, sampler=name, epochs=plan[name]["epochs"],
                              seed=seed, batch_size=a.batch_size)
            tr = Trainer(cfg, data, space, "/nonexistent")
            passes = 0

            def count(r: dict) -> None:
                nonlocal passes
                passes += len(r["subnets"])
            t0 = time.perf_counter()
            while tr.epoch < cfg.epochs:
                tr.train_epoch(count)
            wall = time.perf_counter() - t0
            calib = tr.calibration_batches(8)
            val, test = [], []
            for c, _ in population:
                stats = tr.net.recalibrate_bn(c, calib)
                val.append(tr.accuracy(c, stats, "val"))
                test.append(tr.accuracy(c, stats, "test"))
            kept, _ = pareto_front([(m, v, i) for i, (m, v) in enumerate(zip(mflops, val))])
            front = sorted(i for _, _, i in kept)
            hv = hypervolume([(mflops[i], test[i]) for i in front], ref_mflops, a.floor)
            for k, v in (("hypervolume", hv), ("mean_accuracy", float(np.mean(test))), ("wall_s", wall),
                         ("passes", passes), ("front", front), ("val", val), ("test", test)):
                runs[k].append(v)
            print(f"{name} seed {seed}: {cfg.epochs} epochs, {passes} passes, {wall:.0f} s; hypervolume {hv:.4f}, "
                  f"mean test accuracy {100 * np.mean(test):.2f}%, front of {len(front)}", file=sys.stderr)
        test = np.asarray(runs["test"])                        # seeds x population
        bucket_of = np.array([b for _, b in population])
        per_bucket_acc = [summarize(test[:, bucket_of == b].mean(1)) for b in range(buckets)]
        out["samplers"][name] = {
            **plan[name], "passes": runs["passes"], "wall_s": summarize(runs["wall_s"]),
            "hypervolume": summarize(runs["hypervolume"]), "mean_accuracy": summarize(runs["mean_accuracy"]),
            "bucket_accuracy": per_bucket_acc, "smallest_accuracy": summarize(test[:, 0]),
            "largest_accuracy": summarize(test[:, -1]), "front": runs["front"],
            "val_accuracy": runs["val"], "test_accuracy": runs["test"]}
    out["other_processes_cpu_cores"] = other.stop()
    out["machine"] = machine()
    write_json(a.json, out)
    for name, r in out["samplers"].items():
        print(f"{name}: hypervolume {r['hypervolume']['mean']:.4f} +- {r['hypervolume']['std']:.4f}, mean accuracy "
              f"{100 * r['mean_accuracy']['mean']:.2f}% +- {100 * r['mean_accuracy']['std']:.2f} "
              f"({r['epochs']} epochs, {np.mean(r['passes']):.0f} passes)", file=sys.stderr)
    plot(out, os.path.splitext(a.json)[0] + ".png")
    return 0


def plot(out: dict, path: str) -> None:
    """Mean test accuracy per MFLOPs bucket, mean +- std over seeds, a line per sampler."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plot", file=sys.stderr)
        return
    pop = out["population"]
    centers = [float(np.mean([p["mflops"] for p in pop if p["bucket"] == b])) for b in range(out["buckets"])]
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, r in out["samplers"].items():
        ys = np.array([100 * b["mean"] for b in r["bucket_accuracy"]])
        es = np.array([100 * b["std"] for b in r["bucket_accuracy"]])
        ax.errorbar(centers, ys, yerr=es, marker="o", capsize=3,
                    label=f"{name} (HV {r['hypervolume']['mean']:.3f})")
    ax.set_xlabel("MFLOPs (bucket mean)")
    ax.set_ylabel(f"test accuracy on {out['dataset']} (%)")
    ax.set_title(f"{out['budget_passes']} subnet passes each, {len(out['seeds'])} seed(s)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    raise SystemExit(main())

"""Semi-supervised training against the labelled images alone, with the same
label budget and the same compute.

For each seed, two runs of ``mbv3-tiny28`` on a dataset with 10% of its
training labels: FixMatch (``semi="fixmatch"``: every step half labelled
images, weakly augmented, and half unlabelled ones, strongly augmented,
learning the confident pseudo-labels of an EMA teacher) and the baseline
(``semi="labelled-only"``: every step's batch from the labelled images,
weakly augmented) — the same sampler, batch size and steps, so the same
subnet forward/backward passes (FixMatch adds one forward of the teacher a
step, no backward). Both are scored on the test split (BN recalibrated per
subnet) over one fixed set of subnets spread over the MFLOPs range.
Reported: accuracy per subnet and seed, mean +- std over seeds per subnet,
and the mean over the subnets of each mode; the target is FixMatch >= 1
point above the baseline on that mean.

    python -m adaptive_rt.bench.bench_semi --json PATH [--quick] [--dataset D] [--seeds 0,1,2]

--quick: 480 digits, 1 epoch, one seed; default: digits, 30 epochs, seeds 0, 1, 2.
(--pool does not apply: this benchmark trains its own supernets.)
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from .common import OtherCPU, machine, quick_subset, write_json


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--pool", help="ignored: this benchmark trains its own supernets")
    ap.add_argument("--dataset", default="digits")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--seeds", default=None, help="e.g. 0,1,2")
    ap.add_argument("--labeled-fraction", type=float, default=0.1)
    a = ap.parse_args(argv)
    import torch
    torch.set_num_threads(os.cpu_count() or 1)
    from adaptive_rt.io.data import load_dataset
    from adaptive_rt.model.graph import subnet_cost
    from adaptive_rt.model.presets import get_space
    from adaptive_rt.model.weights import spread_configs
    from adaptive_rt.train.loop import TrainConfig, Trainer
    seeds = [int(s) for s in a.seeds.split(",")] if a.seeds else ([0] if a.quick else [0, 1, 2])
    epochs = a.epochs or (1 if a.quick else 30)
    space = get_space("mbv3-tiny28")
    subnets = spread_configs(space, 6, seed=0)
    other = OtherCPU().start()
    out = {"space": space.name, "dataset": a.dataset, "labeled_fraction": a.labeled_fraction, "epochs": epochs,
           "sampler": "sandwich", "seeds": seeds,
           "subnets": [{"config": c.id, "mflops": round(subnet_cost(space, c).mflops, 3)} for c in subnets]}
    runs: dict[str, dict[str, list[float]]] = {"fixmatch": {}, "labelled-only": {}}
    steps, secs_by_mode, confident = {}, {}, {}
    for seed in seeds:
        data = load_dataset(a.dataset, seed=seed)
        if a.quick:
            data = quick_subset(data)
        for mode in runs:
            cfg = TrainConfig(space=space.name, dataset=a.dataset, sampler="sandwich", epochs=epochs, seed=seed,
                              labeled_fraction=a.labeled_fraction, semi=mode)
            tr = Trainer(cfg, data, space, "/nonexistent")
            t0 = time.perf_counter()
            conf: list[float] = []
            while tr.epoch < cfg.epochs:
                tr.train_epoch(lambda r: conf.append(r["confident"]) if "confident" in r else None)
            secs = time.perf_counter() - t0
            accs = [tr.evaluate(c, split="test") for c in subnets]
            runs[mode][str(seed)] = accs
            steps[mode] = tr.step
            secs_by_mode.setdefault(mode, []).append(secs)
            if conf:
                confident[str(seed)] = float(np.mean(conf[-tr.steps_per_epoch:]))
            print(f"seed {seed} {mode}: {secs:.0f} s, {tr.step} steps; test accuracy "
                  + ", ".join(f"{v:.3f}" for v in accs), file=sys.stderr)
    out["runs"] = runs
    out["steps"] = steps
    out["train_s"] = secs_by_mode
    out["fixmatch_confident_share_last_epoch"] = confident
    summary = {}
    for mode, per_seed in runs.items():
        acc = np.array([per_seed[str(s)] for s in seeds])
        summary[mode] = {"per_subnet_mean": acc.mean(0).tolist(), "per_subnet_std": acc.std(0).tolist(),
                         "mean": float(acc.mean()), "std_over_seeds": float(acc.mean(1).std())}
    out["summary"] = summary
    out["fixmatch_minus_labelled_only_points"] = 100 * (summary["fixmatch"]["mean"] - summary["labelled-only"]["mean"])
    out["target_points"] = 1.0
    out["other_processes_cpu_cores"] = other.stop()
    out["machine"] = machine()
    write_json(a.json, out)
    f, b = summary["fixmatch"], summary["labelled-only"]
    print(f"{a.dataset} at {a.labeled_fraction:.0%} labels, {len(seeds)} seed(s): fixmatch {100 * f['mean']:.1f}% +- "
          f"{100 * f['std_over_seeds']:.1f}, labelled-only {100 * b['mean']:.1f}% +- {100 * b['std_over_seeds']:.1f} "
          f"(mean over {len(subnets)} subnets; {out['fixmatch_minus_labelled_only_points']:+.1f} points)",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

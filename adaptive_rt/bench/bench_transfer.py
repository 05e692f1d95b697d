"""Transfer from a pretrained supernet against training from scratch, with
the same label budget and the same compute (Transfer-OFA's setting).

A supernet of ``mbv3-tiny28`` is trained on mnist5k (the source task);
then, for each seed, two runs on scikit-learn's digits with 10% of the
training labels (semi-supervised: the other images enter the distillation
term): one started from the source supernet (``train --init``), one from
random weights — the same sampler, batch size, epochs and so the same
number of subnet forward/backward passes. Both are scored on the digits
test split (BN recalibrated per subnet on training batches) over one fixed
set of subnets spread over the MFLOPs range (the min and max configs among
them). Reported: accuracy per subnet and seed, mean +- std over seeds per
subnet, and the mean over the subnets of each mode.

    python -m adaptive_rt.bench.bench_transfer --json PATH [--quick] [--seeds 0,1,2]

--quick: the shipped pool (also a supernet trained on mnist5k) as the
source instead of training one, 1 target epoch on 480 digits, one seed
(seconds; the code paths, not a measurement); default:
8 source epochs, 15 target epochs, seeds 0, 1, 2.
(--pool does not apply: this benchmark trains its own supernets.)
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

from .common import OtherCPU, machine, quick_subset, write_json


def _train(space, data, cfg, out: str, init=None):
    from adaptive_rt.train.loop import Trainer
    tr = Trainer(cfg, data, space, out)
    if init is not None:
        fresh = tr.init_weights(init.params, init.buffers)
        assert not fresh, fresh        # same space, same classes: everything is taken over
    t0 = time.perf_counter()
    while tr.epoch < cfg.epochs:
        tr.train_epoch()
    return tr, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--pool", help="ignored: this benchmark trains its own supernets")
    ap.add_argument("--seeds", default=None, help="target-task seeds, e.g. 0,1,2")
    ap.add_argument("--labeled-fraction", type=float, default=0.1)
    a = ap.parse_args(argv)
    import torch
    torch.set_num_threads(os.cpu_count() or 1)
    from adaptive_rt.io.data import load_dataset
    from adaptive_rt.model.graph import subnet_cost
    from adaptive_rt.model.presets import get_space
    from adaptive_rt.model.weights import spread_configs
    from adaptive_rt.train.loop import TrainConfig
    from adaptive_rt.train.transfer import for_data, load_init
    seeds = [int(s) for s in a.seeds.split(",")] if a.seeds else ([0] if a.quick else [0, 1, 2])
    src_epochs, tgt_epochs = (0, 1) if a.quick else (8, 15)
    space = get_space("mbv3-tiny28")
    subnets = spread_configs(space, 6, seed=0)
    other = OtherCPU().start()
    out = {"space": space.name, "source": {"dataset": "mnist5k", "epochs": src_epochs, "sampler": "sandwich",
                                           "seed": 0},
           "target": {"dataset": "digits", "epochs": tgt_epochs, "sampler": "sandwich",
                      "labeled_fraction": a.labeled_fraction, "seeds": seeds},
           "subnets": [{"config": c.id, "mflops": round(subnet_cost(space, c).mflops, 3)} for c in subnets]}
    with tempfile.TemporaryDirectory() as d:
        if a.quick:     # the shipped pool's supernet as the source: nothing to train first
            from adaptive_rt.assets import SHIPPED_POOL, shipped_path
            source = shipped_path(SHIPPED_POOL)
            out["source"] = {"dataset": "mnist5k", "pool": SHIPPED_POOL}
        else:
            source = os.path.join(d, "source")
            src_cfg = TrainConfig(space=space.name, dataset="mnist5k", sampler="sandwich", epochs=src_epochs,
                                  seed=0)
            src, secs = _train(space, load_dataset("mnist5k", seed=0), src_cfg, source)
            src.save()
            out["source"]["train_s"] = secs
            out["source"]["test_accuracy"] = [src.evaluate(c, split="test") for c in subnets]
            print(f"source: mnist5k {src_epochs} epochs, {secs:.0f} s; test accuracy of the subnets "
                  + ", ".join(f"{v:.3f}" for v in out["source"]["test_accuracy"]), file=sys.stderr)
        runs: dict[str, dict[str, list[float]]] = {"transfer": {}, "scratch": {}}
        steps = {}
        for seed in seeds:
            data = load_dataset("digits", seed=seed)
            if a.quick:
                data = quick_subset(data)
            init = for_data(load_init(source), data.num_classes, data.image_shape[2])
            for mode in ("transfer", "scratch"):
                cfg = TrainConfig(space=space.name, dataset="digits", sampler="sandwich", epochs=tgt_epochs,
                                  seed=seed, labeled_fraction=a.labeled_fraction,
                                  init=source if mode == "transfer" else "")
                tr, secs = _train(space, data, cfg, os.path.join(d, f"{mode}{seed}"),
                                  init if mode == "transfer" else None)
                accs = [tr.evaluate(c, split="test") for c in subnets]
                runs[mode][str(seed)] = accs
                steps[mode] = tr.step
                print(f"seed {seed} {mode}: {secs:.0f} s, {tr.step} steps; digits test accuracy "
                      + ", ".join(f"{v:.3f}" for v in accs), file=sys.stderr)
    out["runs"] = runs
    out["steps"] = steps           # equal: the same epochs, batch and sampler (4 subnets a step)
    summary = {}
    for mode, per_seed in runs.items():
        acc = np.array([per_seed[str(s)] for s in seeds])          # [seeds, subnets]
        summary[mode] = {"per_subnet_mean": acc.mean(0).tolist(), "per_subnet_std": acc.std(0).tolist(),
                         "mean": float(acc.mean()), "std_over_seeds": float(acc.mean(1).std())}
    out["summary"] = summary
    out["transfer_minus_scratch_points"] = 100 * (summary["transfer"]["mean"] - summary["scratch"]["mean"])
    out["other_processes_cpu_cores"] = other.stop()
    out["machine"] = machine()
    write_json(a.json, out)
    print(f"digits at {a.labeled_fraction:.0%} labels, {len(seeds)} seed(s): transfer "
          f"{100 * summary['transfer']['mean']:.1f}% +- {100 * summary['transfer']['std_over_seeds']:.1f}, scratch "
          f"{100 * summary['scratch']['mean']:.1f}% +- {100 * summary['scratch']['std_over_seeds']:.1f} "
          f"(mean over {len(subnets)} subnets)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

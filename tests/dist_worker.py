"""Test helper: one process of a short training run, alone or as one rank
under torchrun. Trains ``--epochs`` epochs on the first ``--n-train``
digits and writes this rank's complete state (parameters, BN buffers,
momentum; sampler state, step) after the first step and at the end to
OUT/rank{R}-step1.* and OUT/rank{R}.* (.safetensors / .json), so a test
can compare ranks with each other and with a single-process run.

    python tests/dist_worker.py OUT [--n-train N] [--batch B] [--sampler S] [--bn sync|local] [--labeled F]
    python -m torch.distributed.run --standalone --nproc_per_node 2 tests/dist_worker.py OUT ...
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--n-train", type=int, default=513)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--sampler", default="pss")
    ap.add_argument("--bn", default="sync")  # also in the single-process run: the same BN math
    ap.add_argument("--labeled", type=float, default=1.0)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--dataset", default="digits")
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--flip", action="store_true",
                    help="reverse the images of every batch: the same sums in another order (float noise only)")
    a = ap.parse_args()
    import torch
    from safetensors.torch import save_file

    from adaptive_rt.io.data import load_dataset
    from adaptive_rt.model.presets import get_space
    from adaptive_rt.train.distributed import init_from_env, shutdown
    from adaptive_rt.train.loop import TrainConfig, Trainer

    d = init_from_env("cpu", timeout_s=120)
    torch.set_num_threads(1)            # the same kernels (and summation order) in every run
    data = load_dataset(a.dataset, seed=0)
    data = dataclasses.replace(data, x_train=data.x_train[:a.n_train], y_train=data.y_train[:a.n_train])
    cfg = TrainConfig(sampler=a.sampler, dataset=a.dataset, lr=a.lr, epochs=a.epochs, batch_size=a.batch, seed=0,
                      labeled_fraction=a.labeled, bn=a.bn)
    tr = Trainer(cfg, data, get_space("mbv3-tiny28"), os.path.join(a.out, "run"), dist=d)
    if a.flip:
        step = tr.train_step
        tr.train_step = lambda x, y, lab, views=None: step(
            x.flip(0), y.flip(0), lab.flip(0), None if views is None else tuple(v.flip(0) for v in views))
    steps = []
    os.makedirs(a.out, exist_ok=True)

    def dump(tag: str) -> None:
        save_file({k: v.detach().contiguous().clone() for k, v in tr._state_tensors()},
                  os.path.join(a.out, f"rank{d.rank}{tag}.safetensors"))
        with open(os.path.join(a.out, f"rank{d.rank}{tag}.json"), "w") as f:
            json.dump({"step": tr.step, "sampler": tr.sampler.state_dict(), "world": d.world,
                       "history": tr.history, "steps": steps}, f)

    def on_step(r: dict) -> None:
        steps.append([r["loss"], r["subnets"]])
        if tr.step == 1:
            dump("-step1")
    for _ in range(a.epochs):
        tr.train_epoch(on_step)
    dump("")
    shutdown(d)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

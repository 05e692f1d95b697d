"""Distributed training on this machine: the same run (PSS sampler, same
global batch and seed) in one process and in N processes under torchrun
(gloo on CPUs), with synchronised and per-process BN; epoch time, images
per second, how far the N-process parameters are from the one-process ones,
and build-pool spread over N processes vs one.

    python -m adaptive_rt.bench.bench_dist --json PATH [--quick] [--dataset D] [--epochs E] [--nproc N]

--quick: 256 digits, 1 epoch, the two sync runs and a small build-pool (~30 s);
default: mnist5k, 2 epochs (the second, warm one is timed), all five runs
(one process also with one thread: the per-core baseline).
One process uses every core as torch threads; under torchrun each process
gets cores / N threads (torchrun's OMP_NUM_THREADS=1 on this 2-core box).
(--pool does not apply: this benchmark trains its own supernet.)
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from .common import machine, write_json


def _probe(out: str) -> None:
    """Under torchrun: the latency of one small all-reduce (a BN layer's
    sums) between the processes, rank 0 writes p50/p90 microseconds."""
    import torch
    import torch.distributed as tdist
    tdist.init_process_group("gloo")
    t = torch.zeros(2 * 96 + 1)
    for _ in range(50):
        tdist.all_reduce(t)
    ts = []
    for _ in range(500):
        t0 = time.perf_counter()
        tdist.all_reduce(t)
        ts.append((time.perf_counter() - t0) * 1e6)
    ts.sort()
    if tdist.get_rank() == 0:
        with open(out, "w") as f:
            json.dump({"p50_us": ts[len(ts) // 2], "p90_us": ts[int(len(ts) * 0.9)]}, f)
    tdist.barrier()
    tdist.destroy_process_group()


def _launch(args: list[str], nproc: int, threads: int | None = None,
            module: str = "adaptive_rt.cli") -> tuple[float, subprocess.CompletedProcess]:
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "OMP_NUM_THREADS")}
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    if nproc > 1:
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // nproc))
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               "-m", module, *args]
    else:
        cmd = [sys.executable, "-m", module, *args]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}")
    return wall, r


def _params(run: str) -> dict:
    from safetensors.numpy import load_file
    with open(os.path.join(run, "state.json")) as f:
        state = json.load(f)
    t = load_file(os.path.join(run, state["files"]["checkpoint"]))
    return {k: v.astype("float64") for k, v in t.items() if k.startswith("p.")}


def _rel(a: dict, b: dict) -> float:
    num = sum(float(((a[k] - b[k]) ** 2).sum()) for k in a)
    den = sum(float((a[k] ** 2).sum()) for k in a)
    return (num / den) ** 0.5


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json")
    ap.add_argument("--probe", help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--pool", help="ignored: this benchmark trains its own supernet")
    ap.add_argument("--dataset")
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--nproc", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=64)
    a = ap.parse_args(argv)
    if a.probe:
        _probe(a.probe)
        return 0
    if not a.json:
        ap.error("--json is required")
    from adaptive_rt.io.data import load_dataset
    with tempfile.TemporaryDirectory() as tmp:
        dataset = a.dataset or "mnist5k"
        if a.quick and not a.dataset:       # 256 digits: the code paths in seconds, not a measurement
            import numpy as np
            d = load_dataset("digits", seed=0)
            dataset = os.path.join(tmp, "digits256.npz")
            np.savez(dataset, x=d.x_train[:256], y=d.y_train[:256])
        epochs = a.epochs or (1 if a.quick else 2)
        n_train = len(load_dataset(dataset, seed=0).y_train)
        n = a.nproc
        # (name, processes, BN, threads of a single process: None = every core)
        plan = [("1proc_sync", 1, "sync", None), (f"{n}proc_sync", n, "sync", None)]
        if not a.quick:
            plan = ([("1proc_local", 1, "local", None), ("1proc_local_1thread", 1, "local", 1)] + plan
                    + [(f"{n}proc_local", n, "local", None)])
        res: dict = {"dataset": a.dataset or ("digits[:256]" if a.quick else "mnist5k"), "n_train": n_train,
                     "epochs": epochs, "batch_size": a.batch_size, "sampler": "pss", "nproc": n, "runs": {},
                     "machine": machine()}
        probe = os.path.join(tmp, "allreduce.json")
        _launch(["--probe", probe], n, module="adaptive_rt.bench.bench_dist")
        with open(probe) as f:
            res["allreduce_small_us"] = json.load(f)
        print(f"all-reduce of 193 floats over {n} processes: p50 {res['allreduce_small_us']['p50_us']:.0f} us",
              flush=True)
        for name, procs, bn, threads in plan:
            run = os.path.join(tmp, name)
            wall, _ = _launch(["train", "--dataset", dataset, "--sampler", "pss", "--epochs", str(epochs),
                               "--batch-size", str(a.batch_size), "--bn", bn, "--device", "cpu", "--out", run],
                              procs, threads)
            with open(os.path.join(run, "state.json")) as f:
                hist = json.load(f)["history"]
            epoch_s = hist[-1]["seconds"]
            res["runs"][name] = {"processes": procs, "bn": bn, "wall_s": wall, "epoch_s": epoch_s,
                                 "threads_per_process": threads or max(1, (os.cpu_count() or 1) // procs),
                                 "images_per_s": n_train / epoch_s, "loss": hist[-1]["loss"]}
            print(f"{name}: epoch {epoch_s:.1f} s, {n_train / epoch_s:.0f} img/s (wall {wall:.1f} s)", flush=True)
        single, multi = os.path.join(tmp, "1proc_sync"), os.path.join(tmp, f"{n}proc_sync")
        res["param_rel_diff_sync"] = _rel(_params(single), _params(multi))
        if "1proc_local_1thread" in res["runs"]:
            # the same one-process run with 1 thread instead of 2: only the kernels' summation order differs
            res["param_rel_diff_threads"] = _rel(_params(os.path.join(tmp, "1proc_local")),
                                                 _params(os.path.join(tmp, "1proc_local_1thread")))
        base = res["runs"].get("1proc_local", res["runs"]["1proc_sync"])
        for name, r in res["runs"].items():
            r["speedup_vs_1proc_default"] = base["epoch_s"] / r["epoch_s"]
        # build-pool: candidates spread over processes
        bp = ["build-pool", multi, "--buckets", "3" if a.quick else "4", "--candidates", "2" if a.quick else "4",
              "--device", "cpu"]
        w1, _ = _launch(bp + ["--out", os.path.join(tmp, "p1.safetensors")], 1)
        w1t = None if a.quick else _launch(bp + ["--out", os.path.join(tmp, "p1t.safetensors")], 1, 1)[0]
        wn, _ = _launch(bp + ["--out", os.path.join(tmp, "pn.safetensors")], n)
        from adaptive_rt.io.poolfile import load_pool
        p1, pn = load_pool(os.path.join(tmp, "p1.safetensors")), load_pool(os.path.join(tmp, "pn.safetensors"))
        res["build_pool"] = {"wall_s_1proc": w1, "wall_s_1proc_1thread": w1t, f"wall_s_{n}proc": wn,
                             "speedup": w1 / wn,
                             "same_entries": [e.config for e in p1.entries] == [e.config for e in pn.entries],
                             "same_accuracy": [e.accuracy for e in p1.entries] == [e.accuracy for e in pn.entries]}
        print(f"build-pool: 1 process {w1:.1f} s, {n} processes {wn:.1f} s; same entries "
              f"{res['build_pool']['same_entries']}", flush=True)
    write_json(a.json, res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

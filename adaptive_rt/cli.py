"""The ``adaptive-rt`` command line. Subcommands register themselves in
``COMMANDS``; each is a (configure-parser, run) pair so that ``main`` stays
a dispatcher. Errors users can cause print one line and exit 2."""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
from typing import Callable

from . import __version__

COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int], str]] = {}


class UsageError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


def command(name: str, help: str):
    def deco(fn):
        COMMANDS[name] = (fn.configure, fn, help)  # type: ignore[attr-defined]
        return fn
    return deco


def _args(configure: Callable[[argparse.ArgumentParser], None]):
    def deco(fn):
        fn.configure = configure
        return fn
    return deco


def _open_pool(path: str):
    from .poolfile import PoolFileError, load_pool
    try:
        return load_pool(path)
    except PoolFileError as e:
        raise UsageError(f"invalid pool file {e}") from None


# ----------------------------------------------------------------------------- inspect
def _inspect_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("pool", help="pool file (.safetensors)")
    p.add_argument("--json", action="store_true", help="print the table as JSON")


@command("inspect", "validate a pool file and print its table")
@_args(_inspect_args)
def cmd_inspect(a: argparse.Namespace) -> int:
    pool = _open_pool(a.pool)
    if a.json:
        print(json.dumps({"path": pool.path, "space": pool.space.to_dict(), "sha256": pool.sha256,
                          "file_bytes": pool.file_bytes, "weight_bytes": pool.weight_bytes,
                          "entries": [e.to_dict() for e in pool.entries]}, indent=2))
        return 0
    print(f"{pool.path}: valid pool file, space {pool.space.name}, {len(pool.entries)} entries, "
          f"{pool.weight_bytes / 1e6:.2f} MB of weights, sha256 {pool.sha256[:16]}...")
    for key, label in (("adaptive_rt.import", "imported"), ("adaptive_rt.note", "note")):
        if key in pool.metadata:
            print(f"{label}: {pool.metadata[key][:300]}")
    lat = any(e.latency_ms is not None for e in pool.entries)
    rows = [("id", "MFLOPs", "params", "peak act KB") + (("ms (pred.)",) if lat else ()) + ("accuracy", "config")]
    for e in pool.entries:
        acc = "-" if e.accuracy is None else f"{100 * e.accuracy:.2f}% ({e.dataset}/{e.split})"
        ms = ((f"{e.latency_ms:.3f}" if e.latency_ms is not None else "-"),) if lat else ()
        rows.append((e.id, f"{e.mflops:.2f}", f"{e.params:,}", f"{e.peak_activation_bytes / 1024:.1f}") + ms
                    + (acc, e.config.id))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        print("  ".join(c.rjust(w) if i in (1, 2, 3, 4) and not (i == 4 and not lat) else c.ljust(w)
                        for i, (c, w) in enumerate(zip(r, widths))) + "  " + r[-1])
    return 0


# ----------------------------------------------------------------------------- export
def _export_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("pool", help="pool file (.safetensors)")
    p.add_argument("--entry", required=True, help="pool entry id (see `adaptive-rt inspect`)")
    p.add_argument("--format", choices=["onnx", "tflite"], default="onnx")
    p.add_argument("--out", required=True, help="output file")
    p.add_argument("--input-size", type=_hw, default=None, metavar="H[xW]",
                   help="input image size (default: the space's input size)")


def _hw(text: str) -> tuple[int, int]:
    try:
        parts = [int(v) for v in text.lower().split("x")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not H or HxW") from None
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2 or min(parts) < 1 or max(parts) > 16384:
        raise argparse.ArgumentTypeError(f"{text!r} is not H or HxW in 1..16384")
    return parts[0], parts[1]


@command("export", "export one pool entry as a standalone model")
@_args(_export_args)
def cmd_export(a: argparse.Namespace) -> int:
    pool = _open_pool(a.pool)
    try:
        entry = pool.entry(a.entry)
    except KeyError as e:
        raise UsageError(e.args[0]) from None
    try:
        if a.format == "tflite":
            from .export.tflite import save_tflite, to_tflite
            save_tflite(to_tflite(pool.space, entry.config, pool.tensors, entry.bn, a.input_size), a.out)
            print(f"wrote {a.out}: entry {entry.id} ({entry.config.id}), TFLite (float32, builtin ops)")
            return 0
        from .export.onnx import save_onnx, to_onnx
        model = to_onnx(pool.space, entry.config, pool.tensors, entry.bn, a.input_size)
        save_onnx(model, a.out)
    except ImportError as e:
        raise UsageError(str(e)) from None
    except OSError as e:
        raise UsageError(f"cannot write {a.out}: {e.strerror or e}") from None
    print(f"wrote {a.out}: entry {entry.id} ({entry.config.id}), ONNX opset {model.opset_import[0].version}")
    return 0


# ----------------------------------------------------------------------------- random pool
def _random_args(p: argparse.ArgumentParser) -> None:
    from .space import list_spaces
    p.add_argument("--space", default="mbv3-tiny28", choices=list_spaces())
    p.add_argument("--entries", type=int, default=4, help="number of pool entries (spread over MFLOPs)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)


@command("make-random-pool", "write a pool file of random (untrained) weights, for testing a device")
@_args(_random_args)
def cmd_random_pool(a: argparse.Namespace) -> int:
    from .poolfile import write_pool
    from .space import get_space
    from .weights import random_pool
    if not 1 <= a.entries <= 1000:
        raise UsageError("--entries must be in 1..1000")
    space = get_space(a.space)
    entries, tensors = random_pool(space, a.entries, a.seed)
    pool = write_pool(a.out, space, entries, tensors,
                      {"adaptive_rt.note": "random untrained weights (adaptive-rt make-random-pool)"})
    print(f"wrote {a.out}: {len(pool.entries)} entries, {pool.file_bytes / 1e6:.2f} MB")
    return 0


# ----------------------------------------------------------------------------- calibrate
def _calibrate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("pool", help="pool file (.safetensors)")
    p.add_argument("--out", help="profile path (default: POOL.profile.json, or the user cache folder)")
    p.add_argument("--threads", default=None, help="thread counts to measure, e.g. 1,2 (default: 1..min(cpus, 4))")
    p.add_argument("--batch", default="1", help="images per request to measure, e.g. 1,16 (default: 1)")
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)


def _int_list(text: str, flag: str, hi: int) -> list[int]:
    try:
        vals = [int(t) for t in text.split(",")]
    except ValueError:
        raise UsageError(f"{flag} {text!r} must be a comma-separated list of integers") from None
    if not vals or min(vals) < 1 or max(vals) > hi:
        raise UsageError(f"{flag} must list integers in 1..{hi}")
    return vals


@command("calibrate", "measure every pool entry on this device and write the device profile")
@_args(_calibrate_args)
def cmd_calibrate(a: argparse.Namespace) -> int:
    from .calibrate import ProfileError, calibrate, default_profile_path, merge_profiles, read_profile, save_profile
    pool = _open_pool(a.pool)
    threads = _int_list(a.threads, "--threads", 256) if a.threads else None
    batches = _int_list(a.batch, "--batch", 4096)
    if a.repeats < 1 or a.warmup < 0:
        raise UsageError("--repeats must be at least 1 and --warmup not negative")
    out = a.out or default_profile_path(a.pool, pool.sha256)
    n = len(pool.entries) * len(batches) * len(threads or range(1, min(os.cpu_count() or 1, 4) + 1))
    bar, cb = _progress(n, "calibrate")
    prof = calibrate(pool, threads, a.warmup, a.repeats, cb, batches=batches)
    if bar is not None:
        bar.close()
    if os.path.exists(out):   # keep the other batch sizes measured before for this pool
        try:
            prof = merge_profiles(read_profile(out), prof)
        except ProfileError:
            pass
    try:
        save_profile(prof, out)
    except OSError as e:
        raise UsageError(f"cannot write profile {out}: {e.strerror or e}") from None
    print(f"wrote {out}")
    for eid, r in prof["entries"].items():
        for b in batches:
            cols = "  ".join(f"t{t}: p50 {v['p50_ms']:.3f} / p95 {v['p95_ms']:.3f} ms"
                             for t, v in r["batches"][str(b)].items())
            print(f"  {eid}: {r['mflops']:7.2f} MFLOPs  batch {b}  {cols}")
    return 0


def _progress(total: int, desc: str):
    """(bar, callback): a tqdm bar where tqdm is installed, else lines on stderr."""
    try:
        from tqdm import tqdm
    except ImportError:
        return None, (lambda msg: print(msg, file=sys.stderr))
    bar = tqdm(total=total, desc=desc, unit="run", leave=False)
    return bar, (lambda msg: (bar.update(1), bar.set_postfix_str(msg)))


# ----------------------------------------------------------------------------- train
def _need_torch() -> None:
    try:
        import torch  # noqa: F401
    except ImportError:
        raise UsageError("training needs torch: pip install -c constraints.txt 'adaptive-rt[train]'") from None


def _train_args(p: argparse.ArgumentParser) -> None:
    from .space import list_spaces
    p.add_argument("--dataset", required=True, help="mnist5k, digits, or a PATH.npz with arrays x, y")
    p.add_argument("--sampler", default="sandwich", help="uniform, rss, sandwich, ps or pss")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--out", required=True, help="run directory (checkpoints, state)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p.add_argument("--auto-resume", action="store_true",
                   help="continue from the checkpoint in --out when there is one, else start: the same command "
                        "serves the first start and every restart (torchrun --max-restarts)")
    p.add_argument("--labeled-fraction", type=float, default=1.0,
                   help="fraction of the training split whose labels are used (semi-supervised below 1)")
    p.add_argument("--space", default="mbv3-tiny28", choices=list_spaces())
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--metric", default="mflops", choices=["mflops", "latency"],
                   help="resource metric of the PSS buckets: MFLOPs, or ms on this device (a latency table "
                        "measured once and kept in the run folder)")
    p.add_argument("--bn", default="auto", choices=["auto", "sync", "local"],
                   help="BN batch statistics: sync — over the whole global batch, exact (a run under torchrun "
                        "then equals a one-process --bn sync run with the same --batch-size); local — per "
                        "process, torch's fused kernel (faster, less communication); auto — sync under "
                        "torchrun, local in one process")
    _dist_args(p)


def _dist_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                   help="auto: this process's GPU (LOCAL_RANK) when CUDA is present, else the CPU")
    p.add_argument("--dist-timeout", type=float, default=600.0, metavar="S",
                   help="under torchrun: seconds a collective may wait for the other processes before this "
                        "one gives up (a process that dies is noticed at once)")


def _join_group(a: argparse.Namespace):
    """This process's Dist: a torch.distributed group when started by torchrun."""
    from .train.distributed import DistError, init_from_env
    try:
        return init_from_env(a.device, a.dist_timeout)
    except DistError as e:
        raise UsageError(str(e)) from None
    except (RuntimeError, ValueError) as e:
        raise UsageError(f"cannot join the distributed run: {e}") from None


def _run_distributed(d, what: str, fn, out_dir: str | None = None) -> int:
    """Run fn(); a failed collective (a rank died, was killed or stalled)
    ends this rank with a message, not a hang or a traceback."""
    from .train.distributed import ReplicaMismatch, is_comm_failure, shutdown
    try:
        rc = fn()
    except ReplicaMismatch as e:
        print(f"adaptive-rt {what}: {d.describe()}: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # noqa: BLE001
        if not (d.enabled and is_comm_failure(e)):
            raise
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        first = re.sub(r"^\[[^\]]*\]\s*", "", first)         # gloo's "[source.cc:123] " prefix
        keep = (f" The last checkpoint in {out_dir} is intact: start all processes again with --resume."
                if out_dir else "")
        print(f"{chr(10) if d.main else ''}adaptive-rt {what}: {d.describe()}: lost the other processes ({first[:200]}). A process died, was "
              f"killed, or stalled longer than --dist-timeout {d.timeout_s:g} s.{keep}", file=sys.stderr, flush=True)
        os._exit(1)     # the process group cannot be shut down cleanly without its peers
    shutdown(d)
    return rc


@command("train", "train a supernet with a subnet sampler (needs the train extra; runs under torchrun too)")
@_args(_train_args)
def cmd_train(a: argparse.Namespace) -> int:
    _need_torch()
    from .data import DatasetError, load_dataset
    from .space import get_space
    from .train.loop import STATE, TrainConfig, Trainer
    from .train.samplers import SAMPLERS
    if a.sampler not in SAMPLERS:
        raise UsageError(f"unknown sampler {a.sampler!r}; choose from {', '.join(sorted(SAMPLERS))}")
    if not (0.0 < a.labeled_fraction <= 1.0):
        raise UsageError(f"--labeled-fraction {a.labeled_fraction} must be in (0, 1]")
    if a.epochs < 1:
        raise UsageError("--epochs must be at least 1")
    if a.resume and a.auto_resume:
        raise UsageError("--resume and --auto-resume exclude each other")
    d = _join_group(a)
    err = None
    resume = a.resume
    if d.main:      # rank 0 alone writes the run directory and reads it on --resume
        try:
            os.makedirs(a.out, exist_ok=True)
            probe = os.path.join(a.out, ".write-test")
            with open(probe, "w"):
                pass
            os.unlink(probe)
        except OSError as e:
            err = f"cannot write to --out {a.out}: {e.strerror or e}"
        if not err and a.resume and not os.path.isfile(os.path.join(a.out, STATE)):
            err = f"--resume: no checkpoint in {a.out}"
        if a.auto_resume:
            resume = os.path.isfile(os.path.join(a.out, STATE))
    from .train.distributed import broadcast_json
    head = broadcast_json({"error": err, "resume": resume}, d)      # rank 0's findings, on every rank
    if head["error"]:
        raise UsageError(head["error"])
    resume = head["resume"]
    try:
        data = load_dataset(a.dataset, seed=a.seed)
    except DatasetError as e:
        raise UsageError(str(e)) from None
    cfg = TrainConfig(space=a.space, dataset=a.dataset, sampler=a.sampler, epochs=a.epochs,
                      batch_size=a.batch_size, lr=a.lr, labeled_fraction=a.labeled_fraction, seed=a.seed,
                      metric=a.metric, bn=a.bn)

    def run() -> int:
        try:
            tr = Trainer(cfg, data, get_space(a.space), a.out, dist=d)
        except ValueError as e:
            raise UsageError(str(e)) from None
        if resume:
            try:
                tr.load()
            except ValueError as e:
                raise UsageError(str(e)) from None
            if d.main:
                print(f"resuming {a.out} at epoch {tr.epoch}")
        if d.main and d.enabled:
            print(f"distributed: {d.world} processes ({d.backend}), global batch {cfg.batch_size} "
                  f"(~{cfg.batch_size // d.world} per process), BN {tr.bn_mode}")
        from tqdm import tqdm
        while tr.epoch < cfg.epochs:
            bar = tqdm(total=tr.steps_per_epoch, desc=f"epoch {tr.epoch + 1}/{cfg.epochs}", unit="step",
                       leave=False, disable=not d.main)

            def on_step(r, bar=bar):
                bar.update(1)
                bar.set_postfix_str(f"loss {r['loss']:.3f} {r['images_per_s']:.0f} img/s {r['subnets'][-1]}")
            rec = tr.train_epoch(on_step)
            bar.close()
            tr.save()
            if d.main:
                print(f"epoch {rec['epoch']}/{cfg.epochs}: loss {rec['loss']:.4f}, {rec['seconds']:.1f} s; "
                      f"checkpoint saved", flush=True)
        return 0
    return _run_distributed(d, "train", run, a.out)


def _pool_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="run directory written by adaptive-rt train")
    p.add_argument("--buckets", type=int, default=6, help="number of resource buckets (pool entries)")
    p.add_argument("--candidates", type=int, default=8, help="candidates evaluated per bucket")
    p.add_argument("--metric", default=None, choices=["mflops", "latency"],
                   help="resource metric of the buckets (default: the run's): MFLOPs, or ms predicted by this "
                        "device's latency table")
    p.add_argument("--search", default="auto", choices=["auto", "nsga2", "random"],
                   help="candidates: PSS pools for PSS runs, NSGA-II otherwise (auto)")
    p.add_argument("--out", required=True, help="pool file to write (.safetensors)")
    p.add_argument("--seed", type=int, default=0)
    _dist_args(p)


@command("build-pool", "pick the best subnet per resource bucket of a trained run and write a pool file")
@_args(_pool_args)
def cmd_build_pool(a: argparse.Namespace) -> int:
    _need_torch()
    from .train.pool import build_pool
    if not 1 <= a.buckets <= 256:
        raise UsageError("--buckets must be in 1..256")
    d = _join_group(a)
    from tqdm import tqdm
    bar = tqdm(total=None, desc="build-pool", unit="eval", leave=False, disable=not d.main)

    def progress(msg: str) -> None:
        bar.update(1)
        bar.set_postfix_str(msg[:60])

    def run() -> int:
        try:
            pool = build_pool(a.run, a.out, a.buckets, a.candidates, a.metric, progress=progress if d.main else None,
                              seed=a.seed, search=a.search, dist=d)
        except (FileNotFoundError, ValueError) as e:      # no run there, or a checkpoint that fails validation
            raise UsageError(str(e)) from None
        bar.close()
        if pool is not None:
            print(f"wrote {a.out}: {len(pool.entries)} entries" + (f" ({d.world} processes)" if d.enabled else ""))
            _print_entries(pool)
        return 0
    return _run_distributed(d, "build-pool", run)


def _print_entries(pool) -> None:
    """One line per entry of a freshly written pool: cost, predicted latency, accuracy, config."""
    for e in pool.entries:
        lat = f"  {e.latency_ms:.3f} ms (predicted)" if e.latency_ms is not None else ""
        acc = (f"top-1 {100 * e.accuracy:.2f}% ({e.dataset}/{e.split})" if e.accuracy is not None
               else "accuracy not measured")
        print(f"  {e.id}: {e.mflops:7.2f} MFLOPs{lat}  {acc}  {e.config.id}")


# ----------------------------------------------------------------------------- import-ofa
def _ofa_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="OFA MobileNetV3 state dict (.pth; read with torch.load(weights_only=True))")
    p.add_argument("--width", type=float, default=1.0, help="the supernet's width multiplier: 1.0 or 1.2")
    p.add_argument("--buckets", type=int, default=6, help="pool entries, spread over MFLOPs (default 6)")
    p.add_argument("--data", default=None,
                   help="PATH.npz of preprocessed NHWC images (x, y): recalibrate BN per entry and measure top-1")
    p.add_argument("--calib-batches", type=int, default=16, help="batches of 64 for BN recalibration")
    p.add_argument("--metric", default="mflops", choices=["mflops", "latency"],
                   help="spread the entries over MFLOPs or over this device's measured latency")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="pool file to write (.safetensors)")


@command("import-ofa", "turn a Once-for-All MobileNetV3 checkpoint into a pool file (needs torch)")
@_args(_ofa_args)
def cmd_import_ofa(a: argparse.Namespace) -> int:
    _need_torch()
    from .data import DatasetError
    from .ofa import OfaImportError, import_ofa
    if not 1 <= a.buckets <= 256 or a.calib_batches < 1:
        raise UsageError("--buckets must be in 1..256 and --calib-batches at least 1")
    try:
        pool = import_ofa(a.checkpoint, a.width, a.out, a.buckets, a.seed, a.data, a.calib_batches,
                          metric=a.metric, progress=lambda m: print(m, file=sys.stderr, flush=True))
    except (OfaImportError, DatasetError) as e:
        raise UsageError(str(e)) from None
    except OSError as e:
        raise UsageError(f"cannot write {a.out}: {e.strerror or e}") from None
    print(f"wrote {a.out}: {len(pool.entries)} entries of {pool.space.name}")
    _print_entries(pool)
    return 0


# ----------------------------------------------------------------------------- demo
def _demo_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seconds", type=float, default=30.0, help="length of the run (default 30)")
    p.add_argument("--hogs", type=int, default=1, help="CPU-hog child processes in the middle phase (default 1)")
    p.add_argument("--batch", type=int, default=16, help="digits per request (default 16)")
    p.add_argument("--interval-ms", type=float, default=0.0,
                   help="time between request starts (default 0: back to back, as fast as served)")
    p.add_argument("--slo-ms", type=float, default=None,
                   help="p95 latency target per request (default: 1.3 x the largest entry's calibrated p95)")
    p.add_argument("--pool", default=None, help="pool file (default: the shipped MNIST pool)")
    p.add_argument("--png", default="adaptive-rt-demo.png", help="timeline plot to write ('' for none)")
    p.add_argument("--json", default=None, help="write the summary as JSON here")


@command("demo", "serve the shipped pool under a changing CPU load and show it adapt")
@_args(_demo_args)
def cmd_demo(a: argparse.Namespace) -> int:
    from .demo import run_demo
    if not (1.0 <= a.seconds <= 3600):
        raise UsageError("--seconds must be in 1..3600")
    if not (0 <= a.hogs <= 64):
        raise UsageError("--hogs must be in 0..64")
    if not (1 <= a.batch <= 4096):
        raise UsageError("--batch must be in 1..4096")
    if not (0 <= a.interval_ms <= 10_000):
        raise UsageError("--interval-ms must be in 0..10000")
    if a.slo_ms is not None and not (a.slo_ms > 0):
        raise UsageError("--slo-ms must be positive")
    if a.pool is not None:
        _open_pool(a.pool)   # a clear error for a bad file
    try:
        run_demo(a.seconds, a.hogs, a.batch, a.interval_ms, a.slo_ms, a.pool, a.png or None, a.json,
                 out=lambda line: print(line, flush=True))
    except (OSError, ValueError) as e:
        raise UsageError(str(e)) from None
    return 0


# ----------------------------------------------------------------------------- bench
def _bench_args(p: argparse.ArgumentParser) -> None:
    from .report import BENCHES
    p.add_argument("--pool", default=None, help="pool file (default: each benchmark's own test pools / the shipped pool)")
    p.add_argument("--out", default="adaptive-rt-bench", help="folder for the JSON results, logs, report.md and plots")
    p.add_argument("--quick", action="store_true", help="short runs on small pools (about 5 minutes in all)")
    p.add_argument("--only", default=None, help=f"comma-separated subset of: {', '.join(BENCHES)}")


@command("bench", "run the benchmarks that apply on this device and write a report (tables and plots)")
@_args(_bench_args)
def cmd_bench(a: argparse.Namespace) -> int:
    from .report import BENCHES, run_benches, write_report
    only = [s.strip() for s in a.only.split(",")] if a.only else None
    if only and (bad := [s for s in only if s not in BENCHES]):
        raise UsageError(f"--only: unknown benchmark {bad[0]!r}; choose from {', '.join(BENCHES)}")
    if a.pool is not None:
        _open_pool(a.pool)
    try:
        os.makedirs(a.out, exist_ok=True)
    except OSError as e:
        raise UsageError(f"cannot write to --out {a.out}: {e.strerror or e}") from None
    status = run_benches(a.out, a.pool, a.quick, only, say=lambda m: print(m, flush=True))
    path = write_report(a.out, status, a.quick)
    print(f"wrote {path}")
    return 0 if all(st == "ok" or st.startswith("skipped") for st in status.values()) else 1


# ----------------------------------------------------------------------------- serve
def _default_socket() -> str:
    run = os.environ.get("XDG_RUNTIME_DIR")
    return os.path.join(run, "adaptive-rt.sock") if run else f"/tmp/adaptive-rt-{os.getuid()}.sock"


def _serve_args(p: argparse.ArgumentParser) -> None:
    from .daemon.server import Limits
    d = Limits()
    p.add_argument("--pool", required=True, help="pool file (.safetensors); SIGHUP reloads it")
    p.add_argument("--socket", default=None,
                   help="Unix socket path (default: $XDG_RUNTIME_DIR/adaptive-rt.sock, or /tmp/adaptive-rt-UID.sock)")
    p.add_argument("--no-socket", action="store_true", help="HTTP only")
    p.add_argument("--group-access", action="store_true", help="socket mode 0660 instead of 0600")
    p.add_argument("--http", default=None, help="also serve HTTP on HOST:PORT (loopback only unless --allow-remote)")
    p.add_argument("--allow-remote", action="store_true", help="allow a non-loopback HTTP address")
    p.add_argument("--enable-admin", action="store_true", help="enable POST /v1/reload")
    p.add_argument("--slo-ms", type=float, default=None, help="p95 latency target per request")
    p.add_argument("--memory-cap", default=None, help="e.g. 64MB: entries needing more are never used")
    p.add_argument("--policy", default="adaptive", help="adaptive, fixed-largest or fixed-smallest")
    p.add_argument("--backend", default="native", help="native, onnxruntime or litert")
    p.add_argument("--max-threads", type=int, default=None)
    p.add_argument("--max-body", type=int, default=d.max_body, help=f"bytes (default {d.max_body})")
    p.add_argument("--max-header", type=int, default=d.max_header, help=f"bytes (default {d.max_header})")
    p.add_argument("--max-json-depth", type=int, default=d.max_json_depth)
    p.add_argument("--header-timeout", type=float, default=d.header_timeout_s, help="seconds")
    p.add_argument("--body-timeout", type=float, default=d.body_timeout_s, help="seconds")
    p.add_argument("--idle-timeout", type=float, default=d.idle_timeout_s, help="seconds")
    p.add_argument("--max-concurrent", type=int, default=d.max_concurrent)
    p.add_argument("--max-queue", type=int, default=d.max_queue)
    p.add_argument("--drain", type=float, default=d.drain_s, help="seconds in-flight requests get on SIGTERM")
    p.add_argument("--log-format", default="text", choices=["text", "json"])
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warn", "error"])


@command("serve", "run the inference daemon (Unix socket, optional loopback HTTP)")
@_args(_serve_args)
def cmd_serve(a: argparse.Namespace) -> int:
    import asyncio
    from .daemon.server import Daemon, Limits, Log
    from .runtime import POLICIES
    _open_pool(a.pool)   # a clear error for a bad file before anything listens
    http = None
    if a.http:
        host, _, port = a.http.rpartition(":")
        if not host or not port.isdigit() or int(port) > 65535:
            raise UsageError(f"--http {a.http!r} must be HOST:PORT")
        http = (host.strip("[]"), int(port))
    if a.no_socket and not http:
        raise UsageError("--no-socket needs --http")
    if a.policy.replace("_", "-") not in POLICIES:
        raise UsageError(f"--policy must be one of {', '.join(POLICIES)}")
    for name in ("max_body", "max_header", "max_json_depth", "max_concurrent"):
        if getattr(a, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1")
    if a.max_queue < 0 or min(a.header_timeout, a.body_timeout, a.idle_timeout, a.drain) <= 0:
        raise UsageError("--max-queue must be >= 0 and timeouts positive")
    limits = Limits(a.max_body, a.max_header, a.max_json_depth, a.header_timeout, a.body_timeout, a.idle_timeout,
                    a.max_concurrent, a.max_queue, a.drain)
    from .backends import BACKENDS
    if a.backend not in BACKENDS:
        raise UsageError(f"--backend must be one of {', '.join(BACKENDS)}")
    kw = {"slo_ms": a.slo_ms, "memory_cap": a.memory_cap, "policy": a.policy, "backend": a.backend}
    if a.max_threads:
        kw["max_threads"] = a.max_threads
    try:
        d = Daemon(a.pool, None if a.no_socket else (a.socket or _default_socket()), http, a.allow_remote,
                   0o660 if a.group_access else 0o600, a.enable_admin, limits, kw, Log(a.log_format, a.log_level))
        return asyncio.run(d.run())
    except (ValueError, OSError) as e:
        raise UsageError(str(e)) from None


# ----------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="adaptive-rt", description="On-device runtime for resource-adaptive neural networks.")
    p.add_argument("--version", action="version", version=f"adaptive-rt {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (configure, _, help) in COMMANDS.items():
        configure(sub.add_parser(name, help=help, description=help))
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _, run, _ = COMMANDS[args.command]
    try:
        return run(args)
    except UsageError as e:
        print(f"adaptive-rt: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())

"""Training commands: train, build-pool, import-ofa (torch; under torchrun too)."""
from __future__ import annotations

import argparse
import os

from ..train.driver import DriverError, join_group, run_distributed
from .common import GrowingBar, UsageError, arguments, command, need_torch, print_entries



def _join(a: argparse.Namespace):
    try:
        return join_group(a)
    except DriverError as e:
        raise UsageError(str(e)) from None

def _train_args(p: argparse.ArgumentParser) -> None:
    from ..model.presets import list_spaces
    p.add_argument("--dataset", required=True, help="mnist5k, digits, or a PATH.npz with arrays x, y")
    p.add_argument("--sampler", default="sandwich", choices=["uniform", "rss", "sandwich", "ps", "pss"],
                   help="which subnets each step trains")
    p.add_argument("--epochs", type=int, default=10, help="passes over the training split")
    p.add_argument("--out", required=True, help="run directory (checkpoints, state)")
    p.add_argument("--seed", type=int, default=0, help="seed of weights, sampling and data order")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p.add_argument("--auto-resume", action="store_true",
                   help="continue from the checkpoint in --out when there is one, else start: the same command "
                        "serves the first start and every restart (torchrun --max-restarts)")
    p.add_argument("--labeled-fraction", type=float, default=1.0,
                   help="fraction of the training split whose labels are used (semi-supervised below 1)")
    p.add_argument("--semi", default="fixmatch", choices=["fixmatch", "labelled-only"],
                   help="below --labeled-fraction 1: fixmatch (confident pseudo-labels of an EMA teacher on the "
                        "unlabelled images) or labelled-only (the baseline: the labelled images alone, same steps)")
    p.add_argument("--pseudo-threshold", type=float, default=0.9,
                   help="fixmatch: the teacher confidence a pseudo-label needs")
    p.add_argument("--space", default=None, choices=list_spaces(),
                   help="search space (default: mbv3-tiny28, or --init's)")
    p.add_argument("--init", default=None, metavar="SOURCE",
                   help="start from a pretrained supernet: a run directory of adaptive-rt train, a pool file, or "
                        "a Once-for-All checkpoint (.pth); a new classifier when the dataset's class count differs")
    p.add_argument("--batch-size", type=int, default=64, help="global batch (over all processes)")
    p.add_argument("--lr", type=float, default=0.05, help="peak learning rate (SGD, cosine)")
    p.add_argument("--metric", default=None, choices=["mflops", "latency"],
                   help="resource metric of the PSS buckets (default: mflops, or latency with --latency-table): "
                        "MFLOPs, or ms on a device (a latency table kept in the run folder: --latency-table's, "
                        "else measured on this machine once)")
    _latency_table_arg(p)
    p.add_argument("--bn", default="auto", choices=["auto", "sync", "local"],
                   help="BN batch statistics: sync — over the whole global batch, exact (a run under torchrun "
                        "then equals a one-process --bn sync run with the same --batch-size); local — per "
                        "process, torch's fused kernel (faster, less communication); auto — sync under "
                        "torchrun, local in one process")
    _dist_args(p)


def _latency_table_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--latency-table", default=None, metavar="FILE",
                   help="a latency table made on the target device (adaptive-rt latency-table there; its native "
                        "table, fewest threads, batch 1): implies --metric latency")


def _metric(a: argparse.Namespace, default: str | None) -> str | None:
    """--metric, resolved against --latency-table (which needs latency)."""
    if a.latency_table is not None:
        if a.metric == "mflops":
            raise UsageError("--latency-table is for --metric latency, not mflops")
        if not os.path.isfile(a.latency_table):
            raise UsageError(f"--latency-table {a.latency_table}: no such file")
        return "latency"
    return a.metric or default


def _load_table(path: str, space):
    from ..serve.latency import LatencyTable, LatencyTableError
    try:
        return LatencyTable.load(path, space)
    except LatencyTableError as e:
        raise UsageError(str(e)) from None


def _keep_table(table, run_dir: str, given: str) -> str | None:
    """Write ``table`` as the run's latency table (an error message if the run has another)."""
    from ..serve.latency import LatencyTable, LatencyTableError
    from ..train.loop import LATENCY_TABLE
    path = os.path.join(run_dir, LATENCY_TABLE)
    if os.path.isfile(path):
        try:
            have = LatencyTable.load(path, table.space)
        except LatencyTableError:
            have = None
        if have is None or have.table_dict() != table.table_dict():
            return (f"--latency-table {given}: the run in {run_dir} has another latency table ({LATENCY_TABLE}); "
                    "a run keeps one table")
        return None
    try:
        table.save(path)
    except OSError as e:
        return f"cannot write {path}: {e.strerror or e}"
    return None


def _dist_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                   help="auto: this process's GPU (LOCAL_RANK) when CUDA is present, else the CPU")
    p.add_argument("--dist-timeout", type=float, default=600.0, metavar="S",
                   help="under torchrun: seconds a collective may wait for the other processes before this "
                        "one gives up (a process that dies is noticed at once)")






@command("train", "train a supernet with a subnet sampler (needs the train extra; runs under torchrun too)")
@arguments(_train_args)
def cmd_train(a: argparse.Namespace) -> int:
    from ..io.data import DatasetError, load_dataset
    from ..model.presets import get_space
    # the arguments and the dataset are checked before torch is imported (a second and a half here)
    if not (0.0 < a.labeled_fraction <= 1.0):
        raise UsageError(f"--labeled-fraction {a.labeled_fraction} must be in (0, 1]")
    if a.epochs < 1:
        raise UsageError("--epochs must be at least 1")
    if not 0.0 <= a.pseudo_threshold <= 1.0:
        raise UsageError(f"--pseudo-threshold {a.pseudo_threshold} must be in [0, 1]")
    if a.resume and a.auto_resume:
        raise UsageError("--resume and --auto-resume exclude each other")
    metric = _metric(a, "mflops")
    try:
        data = load_dataset(a.dataset, seed=a.seed)
    except DatasetError as e:
        raise UsageError(str(e)) from None
    need_torch()
    from ..train.checkpoint import STATE
    from ..train.loop import TrainConfig, Trainer
    init = None
    if a.init is not None:
        from ..train.transfer import InitError, for_data, load_init
        try:
            init = for_data(load_init(a.init), data.num_classes, data.image_shape[2])
        except InitError as e:
            raise UsageError(str(e)) from None
        base = init.space.name.rsplit("-", 1)[0] if init.space.name.endswith("cls") else init.space.name
        if a.space is not None and a.space != base:
            raise UsageError(f"--space {a.space}, but --init {a.init} is a supernet of {base} (leave --space out)")
    space = init.space if init is not None else get_space(a.space or "mbv3-tiny28")
    table = _load_table(a.latency_table, space) if a.latency_table else None
    d = _join(a)
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
        if not err and table is not None:   # the run keeps the device's table: build-pool and a resume use it
            err = _keep_table(table, a.out, a.latency_table)
    from ..train.distributed import broadcast_json
    head = broadcast_json({"error": err, "resume": resume}, d)      # rank 0's findings, on every rank
    if head["error"]:
        raise UsageError(head["error"])
    resume = head["resume"]
    cfg = TrainConfig(space=space.name, dataset=a.dataset, sampler=a.sampler, epochs=a.epochs,
                      batch_size=a.batch_size, lr=a.lr, labeled_fraction=a.labeled_fraction, seed=a.seed,
                      metric=metric, bn=a.bn, init=a.init or "", semi=a.semi, threshold=a.pseudo_threshold)

    def run() -> int:
        try:
            tr = Trainer(cfg, data, space, a.out, dist=d)
        except ValueError as e:
            raise UsageError(str(e)) from None
        if init is not None and not resume:
            fresh = tr.init_weights(init.params, init.buffers)
            if d.main:
                print(f"starting from {init.describe()}"
                      + (f"; initialised afresh: {', '.join(fresh)}" if fresh else ""), flush=True)
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
    return run_distributed(d, "train", run, a.out)


def _pool_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="run directory written by adaptive-rt train")
    p.add_argument("--buckets", type=int, default=6, help="number of resource buckets (pool entries)")
    p.add_argument("--candidates", type=int, default=8, help="candidates evaluated per bucket")
    p.add_argument("--metric", default=None, choices=["mflops", "latency"],
                   help="resource metric of the buckets (default: the run's): MFLOPs, or ms predicted by a "
                        "device's latency table (the run's, or --latency-table)")
    _latency_table_arg(p)
    p.add_argument("--search", default="auto", choices=["auto", "nsga2", "random"],
                   help="candidates: PSS pools for PSS runs, NSGA-II otherwise (auto)")
    p.add_argument("--min-gain", type=float, default=0.0, metavar="POINTS",
                   help="keep a bucket winner only if its validation accuracy beats every cheaper entry's by more "
                        "than this many percentage points (default 0: any gain)")
    p.add_argument("--out", required=True, help="pool file to write (.safetensors)")
    p.add_argument("--seed", type=int, default=0, help="seed of weights, sampling and data order")
    _dist_args(p)


@command("build-pool", "pick the best subnet per resource bucket of a trained run and write a pool file")
@arguments(_pool_args)
def cmd_build_pool(a: argparse.Namespace) -> int:
    need_torch()
    from ..train.pool import build_pool
    if not 1 <= a.buckets <= 256:
        raise UsageError("--buckets must be in 1..256")
    if not 0.0 <= a.min_gain < 100.0:
        raise UsageError("--min-gain must be in [0, 100) percentage points")
    metric = _metric(a, None)
    d = _join(a)
    bar = GrowingBar("build-pool", "step", enabled=d.main)

    def run() -> int:
        with bar:                                         # closed before any error prints: a line of its own
            try:
                pool = build_pool(a.run, a.out, a.buckets, a.candidates, metric,
                                  latency_table=a.latency_table,
                                  progress=bar.progress if d.main else None, seed=a.seed, search=a.search, dist=d,
                                  expect=bar.expect if d.main else None, min_gain=a.min_gain / 100.0)
            except (FileNotFoundError, ValueError) as e:  # no run there, or a checkpoint that fails validation
                bar.close()
                raise UsageError(str(e)) from None
        if pool is not None:
            print(f"wrote {a.out}: {len(pool.entries)} entries" + (f" ({d.world} processes)" if d.enabled else ""))
            print_entries(pool)
            import json
            dropped = json.loads(pool.metadata.get("adaptive_rt.build", "{}")).get("dropped_dominated", [])
            if dropped:
                why = (f"no cheaper entry trails by more than {a.min_gain:g} points on the validation split "
                       "(a step that noise could reverse, or none)" if a.min_gain else
                       "a cheaper entry matches or beats on the validation split (they could never be served)")
                print(f"note: left out {len(dropped)} bucket winner(s) that {why}: " + ", ".join(x["config"] for x in dropped))
        return 0
    return run_distributed(d, "build-pool", run)


def _ofa_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="OFA MobileNetV3 state dict (.pth; read with torch.load(weights_only=True))")
    p.add_argument("--width", type=float, default=1.0, choices=[1.0, 1.2], help="the supernet's width multiplier")
    p.add_argument("--buckets", type=int, default=6, help="pool entries, spread over MFLOPs (default 6)")
    p.add_argument("--data", default=None,
                   help="PATH.npz of preprocessed NHWC images (x, y): recalibrate BN per entry and measure top-1")
    p.add_argument("--calib-batches", type=int, default=16, help="batches of 64 for BN recalibration")
    p.add_argument("--metric", default=None, choices=["mflops", "latency"],
                   help="spread the entries over MFLOPs or over a device's latency (default: mflops, or latency "
                        "with --latency-table; without it the table is measured on this machine)")
    _latency_table_arg(p)
    p.add_argument("--seed", type=int, default=0, help="seed of weights, sampling and data order")
    p.add_argument("--out", required=True, help="pool file to write (.safetensors)")


@command("import-ofa", "turn a Once-for-All MobileNetV3 checkpoint into a pool file (needs torch)")
@arguments(_ofa_args)
def cmd_import_ofa(a: argparse.Namespace) -> int:
    need_torch()
    from ..io.data import DatasetError
    from ..train.ofa import OfaImportError, import_ofa
    if not 1 <= a.buckets <= 256 or a.calib_batches < 1:
        raise UsageError("--buckets must be in 1..256 and --calib-batches at least 1")
    with GrowingBar("import-ofa", "step") as bar:
        try:
            pool = import_ofa(a.checkpoint, a.width, a.out, a.buckets, a.seed, a.data, a.calib_batches,
                              metric=_metric(a, "mflops"), progress=bar.progress, expect=bar.expect,
                              latency_table=a.latency_table)
        except (OfaImportError, DatasetError) as e:
            bar.close()
            raise UsageError(str(e)) from None
        except OSError as e:
            bar.close()
            raise UsageError(f"cannot write {a.out}: {e.strerror or e}") from None
    print(f"wrote {a.out}: {len(pool.entries)} entries of {pool.space.name}")
    print_entries(pool)
    return 0

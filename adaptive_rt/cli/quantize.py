"""adaptive-rt quantize: int8 entries for a pool."""
from __future__ import annotations

import argparse
import os

import numpy as np

from .common import GrowingBar, UsageError, arguments, command, open_pool, pool_argument


def _quantize_args(p: argparse.ArgumentParser) -> None:
    pool_argument(p)
    p.add_argument("--data", required=True,
                   help="calibration and evaluation data: a bundled dataset's name (mnist5k, digits) or an .npz "
                        "with x (N, H, W, C float32) and y; calibration uses its train split, accuracy its test split")
    p.add_argument("--entries", default=None, help="float32 entries to quantize, e.g. e0,e3 (default: every one without an int8 entry)")
    p.add_argument("--out", required=True, help="pool file to write (the input pool is never modified)")
    p.add_argument("--drop-float", action="store_true",
                   help="leave out the float32 entries and the float copy of the quantized weights")
    p.add_argument("--calibration-images", type=int, default=500,
                   help="training images whose activation ranges set each entry's quantization")
    p.add_argument("--seed", type=int, default=0, help="seed of the dataset split and the calibration sample")


@command("quantize", "add int8 entries (one shared int8 weight copy, per-entry calibration) to a pool")
@arguments(_quantize_args)
def cmd_quantize(a: argparse.Namespace) -> int:
    from ..engine import Engine
    from ..io.data import DatasetError, load_dataset
    from ..io.poolfile import PoolFileError
    from ..quant.calibrate import QuantizeError, int8_entry_id, quantize_pool
    pool = open_pool(a.pool)
    if os.path.abspath(a.out) == os.path.abspath(pool.path):
        raise UsageError("--out must name a new file: the input pool is not modified")
    if not 1 <= a.calibration_images <= 100_000:
        raise UsageError("--calibration-images must be in 1..100000")
    try:
        ds = load_dataset(a.data, seed=a.seed)
    except DatasetError as e:
        raise UsageError(str(e)) from None
    if ds.image_shape != pool.input_shape:
        raise UsageError(f"--data {a.data} has images of {ds.image_shape}, the pool takes {pool.input_shape}")
    rng = np.random.default_rng(a.seed)
    n = min(a.calibration_images, len(ds.x_train))
    cal = np.ascontiguousarray(ds.x_train[np.sort(rng.choice(len(ds.x_train), n, replace=False))])
    entries = [e for e in a.entries.split(",") if e] if a.entries else None
    x_test, y_test = np.ascontiguousarray(ds.x_test), ds.y_test

    engines: dict = {}

    def evaluate(p, e):   # one engine for the written pool (its packed weights made once)
        eng = engines.get(p.path)
        if eng is None or eng.pool is not p:
            eng = engines[p.path] = Engine(p, max_threads=2)
        logits = eng.run(eng.plan(e), x_test, threads=2)
        return float((logits.argmax(1) == y_test).mean()), ds.name, "test"

    bar = GrowingBar("quantize", unit="entry")
    have = {e.id for e in pool.entries}
    bar.expect(len(entries) if entries else
               sum(not e.is_int8 and int8_entry_id(e) not in have for e in pool.entries))
    try:
        out = quantize_pool(pool, cal, a.out, entries, a.drop_float, evaluate=evaluate,
                            on_entry=lambda e: bar.progress(e.id),
                            metadata={"adaptive_rt.quantize": f"calibrated on {n} images of {ds.name} "
                                                              f"(train split, seed {a.seed})"})
    except (QuantizeError, PoolFileError) as e:
        bar.close()
        raise UsageError(str(e)) from None
    except OSError as e:
        bar.close()
        raise UsageError(f"cannot write {a.out}: {e.strerror or e}") from None
    bar.close()
    print(f"wrote {out.path}: {len(out.entries)} entries, int8 weights {out.int8_weight_bytes / 1e6:.2f} MB "
          f"(calibrated on {n} images of {ds.name})")
    by_id = {e.id: e for e in out.entries}
    for e in out.entries:
        if not e.is_int8:
            continue
        f = by_id.get(e.id[:-len("-int8")]) or pool.entry(e.id[:-len("-int8")])
        fa = "-" if f.accuracy is None else f"{100 * f.accuracy:.2f}%"
        qa = "-" if e.accuracy is None else f"{100 * e.accuracy:.2f}%"
        print(f"  {e.id}: top-1 {qa} ({e.dataset}/{e.split}); float32 {f.id}: {fa} ({f.dataset}/{f.split})")
    return 0

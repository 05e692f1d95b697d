"""Making int8 entries: the shared int8 weight copy, per-entry activation
ranges calibrated on data, and a pool file holding both precisions.

Calibration runs the float32 entry (the NumPy reference, with the entry's
own BN statistics) over the calibration images and records every value's
range — the way BN statistics are recalibrated per entry — then picks each
uint8 scale and zero point to cover [min, max] and 0
(:func:`~adaptive_rt.model.quant.choose_qparams`). A resize keeps its input's quantization.
"""
from __future__ import annotations

from typing import Callable, Iterable, Sequence

import numpy as np

from ..io.poolfile import PoolEntry, PoolFile, make_entry, write_pool
from ..model import reference
from ..model.quant import Q8, Q8SCALE, choose_qparams, quant_points, quantize_weight, quantized_weight_specs

__all__ = ["int8_weights", "calibrate_entry", "int8_entry_id", "quantize_pool", "QuantizeError"]


class QuantizeError(ValueError):
    """The pool or the data cannot be quantized (the message says why)."""


def int8_weights(pool: PoolFile) -> dict[str, np.ndarray]:
    """``<W>.q8`` and ``<W>.q8scale`` for every quantized weight of the pool
    (the existing int8 copy if the pool has one: every int8 entry reads the same)."""
    out = {}
    for name in quantized_weight_specs(pool.space):
        if name + Q8 in pool.tensors:
            out[name + Q8], out[name + Q8SCALE] = pool.tensors[name + Q8], pool.tensors[name + Q8SCALE]
        else:
            out[name + Q8], out[name + Q8SCALE] = quantize_weight(pool.tensors[name])
    return out


def calibrate_entry(pool: PoolFile, entry: PoolEntry, images: np.ndarray, batch: int = 50,
                    progress: Callable[[int], None] | None = None) -> np.ndarray:
    """The entry's qparams table ``[P, 2]`` (scale, zero point) from the
    ranges of its float32 values over ``images`` (NHWC float32)."""
    if entry.is_int8:
        raise QuantizeError(f"entry {entry.id!r} is already int8")
    g = pool.graph(entry)
    if images.ndim != 4 or tuple(images.shape[1:]) != g.input_shape:
        raise QuantizeError(f"calibration images have shape {images.shape[1:]}, the pool takes {g.input_shape}")
    if len(images) == 0:
        raise QuantizeError("no calibration images")
    if not np.isfinite(images).all():
        raise QuantizeError("the calibration images hold NaN or infinity")
    pts = quant_points(g)
    lo = dict.fromkeys(pts, np.inf)
    hi = dict.fromkeys(pts, -np.inf)
    for i in range(0, len(images), batch):
        rec: dict = {}
        reference.run(g, pool.tensors, images[i:i + batch], entry.bn, record=rec)
        for p in pts:
            v = rec[p]
            vmin, vmax = float(v.min()), float(v.max())   # NaN propagates into the check below
            lo[p] = vmin if not vmin >= lo[p] else lo[p]
            hi[p] = vmax if not vmax <= hi[p] else hi[p]
        if progress:
            progress(min(len(images), i + batch))
    bad = next((p for p in pts if not (np.isfinite(lo[p]) and np.isfinite(hi[p]))), None)
    if bad is not None:
        raise QuantizeError(f"entry {entry.id!r}: value {bad} has a non-finite range on the calibration images "
                            "(NaN or infinity in the images, or an overflow in the float32 entry)")
    table = np.array([choose_qparams(lo[p], hi[p]) for p in pts], np.float64)
    for op in g.ops:
        if op.kind == "resize":   # the output keeps the input's quantization (bilinear stays in range)
            table[op.output] = table[op.inputs[0]]
    return table.astype(np.float32)


def int8_entry_id(entry: PoolEntry) -> str:
    return f"{entry.id}-int8"[:64]


def quantize_pool(pool: PoolFile, images: np.ndarray, out: str, entries: Sequence[str] | None = None,
                  drop_float: bool = False,
                  evaluate: Callable[[PoolFile, PoolEntry], tuple[float, str, str] | None] | None = None,
                  on_entry: Callable[[PoolEntry], None] | None = None, metadata: dict | None = None) -> PoolFile:
    """Write ``out``: ``pool`` plus an int8 entry for each float32 entry in
    ``entries`` (default: every one that has no int8 entry yet), calibrated
    on ``images``; ``drop_float`` leaves the float32 entries (and the float
    weights only they read) out. ``evaluate(pool, entry)`` measures an
    entry's accuracy (top-1, dataset, split) on the written pool; each int8
    entry carries its own."""
    existing = {e.id for e in pool.entries}
    floats = [e for e in pool.entries if not e.is_int8]
    chosen = [e for e in floats if int8_entry_id(e) not in existing] if not entries else []
    for eid in entries or ():
        try:
            e = pool.entry(eid)
        except KeyError as err:
            raise QuantizeError(err.args[0]) from None
        if e.is_int8:
            raise QuantizeError(f"entry {eid!r} is already int8")
        chosen.append(e)
    if not chosen and not (drop_float and floats):
        raise QuantizeError("the pool has no float32 entry to quantize" if not floats else
                            "every float32 entry of the pool has its int8 entry already (--drop-float keeps "
                            "only those)")
    tensors = dict(pool.tensors)
    tensors.update(int8_weights(pool))
    new: list[PoolEntry] = []
    for e in chosen:
        qid = int8_entry_id(e)
        if qid in existing:
            raise QuantizeError(f"the pool already has an entry {qid!r} (quantize a pool without it)")
        prefix = f"q.{qid}."
        tensors[prefix + "qparams"] = calibrate_entry(pool, e, images)
        new.append(make_entry(pool.space, e.config, qid, e.bn, None, None, e.split, None, "int8", prefix))
    keep = [e for e in pool.entries if e.is_int8 or not drop_float]
    if drop_float:   # the float copy of quantized weights, and BN statistics no int8 entry reads, go
        for name in quantized_weight_specs(pool.space):
            tensors.pop(name, None)
        kept_bn = {q.bn for q in keep + new}
        for e in pool.entries:
            if not e.is_int8 and e.bn and e.bn not in kept_bn:
                for name in list(tensors):
                    if name.startswith(e.bn) and name.endswith((".mean", ".var")):
                        tensors.pop(name)
    meta = {k: v for k, v in pool.metadata.items()
            if k not in ("adaptive_rt.schema", "adaptive_rt.space", "adaptive_rt.pool", "adaptive_rt.sha256")}
    meta.update(metadata or {})
    table = _ordered(keep, new)
    written = write_pool(out, pool.space, table, tensors, meta)
    if evaluate is None:
        return written
    scored = []
    for e in written.entries:
        if e in new or any(e.id == n.id for n in new):
            res = evaluate(written, e)
            if res is not None:
                acc, dataset, split = res
                e = PoolEntry(e.id, e.config, e.mflops, e.params, e.peak_activation_bytes, e.bn, acc, dataset,
                              split, e.latency_ms, e.precision, e.quant)
            if on_entry:
                on_entry(e)
        scored.append(e)
    return write_pool(out, pool.space, scored, {n: written.tensors[n] for n in written.tensors}, meta)


def _ordered(old: Iterable[PoolEntry], new: Iterable[PoolEntry]) -> list[PoolEntry]:
    """Each int8 entry right after its float32 one (table order is by cost)."""
    out: list[PoolEntry] = []
    new = list(new)
    for e in old:
        out.append(e)
        out += [n for n in new if n.id == int8_entry_id(e)]
    placed = {e.id for e in out}
    return out + [n for n in new if n.id not in placed]

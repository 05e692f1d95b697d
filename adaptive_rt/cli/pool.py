"""Commands on pool files: inspect, export, make-random-pool."""
from __future__ import annotations

import argparse
import os
import json

from .common import UsageError, arguments, command, hw, open_pool, pool_argument


def _inspect_args(p: argparse.ArgumentParser) -> None:
    pool_argument(p)
    p.add_argument("--json", action="store_true", help="print the table as JSON")


@command("inspect", "validate a pool file and print its table")
@arguments(_inspect_args)
def cmd_inspect(a: argparse.Namespace) -> int:
    pool = open_pool(a.pool)
    if a.json:
        print(json.dumps({"path": pool.path, "space": pool.space.to_dict(), "sha256": pool.sha256,
                          "file_bytes": pool.file_bytes, "weight_bytes": pool.weight_bytes,
                          "int8_weight_bytes": pool.int8_weight_bytes,
                          "entries": [dict(e.to_dict(), precision=e.precision,
                                           entry_weight_bytes=pool.entry_weight_bytes(e)) for e in pool.entries]},
                         indent=2))
        return 0
    print(f"{pool.path}: valid pool file, space {pool.space.name}, {len(pool.entries)} entries, "
          f"{pool.weight_bytes / 1e6:.2f} MB of weights, sha256 {pool.sha256[:16]}...")
    for key, label in (("adaptive_rt.import", "imported"), ("adaptive_rt.note", "note")):
        if key in pool.metadata:
            print(f"{label}: {pool.metadata[key][:300]}")
    if pool.int8_weight_bytes:
        print(f"int8 weights: {pool.int8_weight_bytes / 1e6:.2f} MB (one copy shared by every int8 entry)")
    lat = any(e.latency_ms is not None for e in pool.entries)
    rows = [("id", "precision", "MFLOPs", "params", "weights KB", "peak act KB") + (("ms (pred.)",) if lat else ())
            + ("accuracy", "config")]
    numeric = {2, 3, 4, 5, 6} if lat else {2, 3, 4, 5}
    for e in pool.entries:
        acc = "-" if e.accuracy is None else f"{100 * e.accuracy:.2f}% ({e.dataset}/{e.split})"
        ms = ((f"{e.latency_ms:.3f}" if e.latency_ms is not None else "-"),) if lat else ()
        rows.append((e.id, e.precision, f"{e.mflops:.2f}", f"{e.params:,}",
                     f"{pool.entry_weight_bytes(e) / 1024:.1f}", f"{e.peak_activation_bytes / 1024:.1f}") + ms
                    + (acc, e.config.id))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        print("  ".join(c.rjust(w) if i in numeric else c.ljust(w)
                        for i, (c, w) in enumerate(zip(r, widths))) + "  " + r[-1])
    for line in dominated_lines(pool):
        print(line)
    return 0


def dominated_lines(pool) -> list[str]:
    """A line per entry another entry of its precision beats: no more MFLOPs and at
    least the accuracy (strictly better in one) — the policy can never pick it.
    Pools written by build-pool have none; older ones may."""
    from ..model.pareto import pareto_front
    out = []
    for precision in dict.fromkeys(e.precision for e in pool.entries):
        group = [e for e in pool.entries if e.precision == precision and e.accuracy is not None]
        kept, dropped = pareto_front([(e.mflops, e.accuracy, e) for e in group])
        for _, _, e in dropped:
            by = next(k for _, _, k in kept if k.mflops <= e.mflops and k.accuracy >= e.accuracy)
            out.append(f"dominated: {e.id} ({e.mflops:.2f} MFLOPs, {100 * e.accuracy:.2f}%) by {by.id} "
                       f"({by.mflops:.2f} MFLOPs, {100 * by.accuracy:.2f}%): never the best choice")
    return out


def _export_args(p: argparse.ArgumentParser) -> None:
    pool_argument(p)
    p.add_argument("--entry", required=True, help="pool entry id (see `adaptive-rt inspect`)")
    p.add_argument("--format", choices=["onnx", "tflite"], default=None,
                   help="model format (default: from --out's extension, .onnx or .tflite)")
    p.add_argument("--out", required=True, help="output file")
    p.add_argument("--input-size", type=hw, default=None, metavar="H[xW]",
                   help="input image size (default: the space's input size)")




@command("export", "export one pool entry as a standalone model")
@arguments(_export_args)
def cmd_export(a: argparse.Namespace) -> int:
    ext = os.path.splitext(a.out)[1].lower()
    by_ext = {".onnx": "onnx", ".tflite": "tflite"}.get(ext)
    fmt = a.format or by_ext
    if fmt is None:
        raise UsageError(f"--out {a.out}: give a .onnx or .tflite file name, or --format")
    if by_ext is not None and by_ext != fmt:
        raise UsageError(f"--format {fmt} but --out ends in {ext}: a {by_ext} file would hold {fmt} bytes")
    pool = open_pool(a.pool)
    try:
        entry = pool.entry(a.entry)
    except KeyError as e:
        raise UsageError(e.args[0]) from None
    meta = {"adaptive_rt.entry": entry.id, "adaptive_rt.pool_sha256": pool.sha256}
    try:
        if fmt == "tflite":
            from ..export.tflite import save_tflite, to_tflite, to_tflite_int8
            if entry.is_int8:
                data = to_tflite_int8(pool, entry, a.input_size, metadata=meta)
            else:
                data = to_tflite(pool.space, entry.config, pool.tensors, entry.bn, a.input_size, metadata=meta)
            save_tflite(data, a.out)
            print(f"wrote {a.out}: entry {entry.id} ({entry.config.id}), TFLite "
                  + ("(int8, full integer)" if entry.is_int8 else "(float32, builtin ops)"))
            return 0
        from ..export.onnx import save_onnx, to_onnx, to_onnx_int8
        if entry.is_int8:
            model = to_onnx_int8(pool, entry, a.input_size, metadata=meta)
        else:
            model = to_onnx(pool.space, entry.config, pool.tensors, entry.bn, a.input_size, metadata=meta)
        save_onnx(model, a.out)
    except ImportError as e:
        raise UsageError(str(e)) from None
    except OSError as e:
        raise UsageError(f"cannot write {a.out}: {e.strerror or e}") from None
    print(f"wrote {a.out}: entry {entry.id} ({entry.config.id}), ONNX opset {model.opset_import[0].version}"
          + (" (int8, QDQ)" if entry.is_int8 else ""))
    return 0


def _random_args(p: argparse.ArgumentParser) -> None:
    from ..model.presets import list_spaces
    p.add_argument("--space", default="mbv3-tiny28", choices=list_spaces(), help="search space")
    p.add_argument("--entries", type=int, default=4, help="number of pool entries (spread over MFLOPs)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights and entries")
    p.add_argument("--out", required=True, help="pool file to write")


@command("make-random-pool", "write a pool file of random (untrained) weights, for testing a device")
@arguments(_random_args)
def cmd_random_pool(a: argparse.Namespace) -> int:
    from ..io.poolfile import write_pool
    from ..model.presets import get_space
    from ..io.randompool import random_pool
    if not 1 <= a.entries <= 1000:
        raise UsageError("--entries must be in 1..1000")
    space = get_space(a.space)
    entries, tensors = random_pool(space, a.entries, a.seed)
    pool = write_pool(a.out, space, entries, tensors,
                      {"adaptive_rt.note": "random untrained weights (adaptive-rt make-random-pool)"})
    print(f"wrote {a.out}: {len(pool.entries)} entries, {pool.file_bytes / 1e6:.2f} MB")
    return 0

"""The ``adaptive-rt`` command line. Subcommands register themselves in
``COMMANDS``; each is a (configure-parser, run) pair so that ``main`` stays
a dispatcher. Errors users can cause print one line and exit 2."""
from __future__ import annotations

import argparse
import json
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
    rows = [("id", "MFLOPs", "params", "peak act KB", "accuracy", "config")]
    for e in pool.entries:
        acc = "-" if e.accuracy is None else f"{100 * e.accuracy:.2f}% ({e.dataset}/{e.split})"
        rows.append((e.id, f"{e.mflops:.2f}", f"{e.params:,}", f"{e.peak_activation_bytes / 1024:.1f}", acc, e.config.id))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        print("  ".join(c.rjust(w) if i in (1, 2, 3) else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))) + "  " + r[-1])
    return 0


# ----------------------------------------------------------------------------- export
def _export_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("pool", help="pool file (.safetensors)")
    p.add_argument("--entry", required=True, help="pool entry id (see `adaptive-rt inspect`)")
    p.add_argument("--format", choices=["onnx"], default="onnx")
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
    from .export.onnx import save_onnx, to_onnx
    model = to_onnx(pool.space, entry.config, pool.tensors, entry.bn, a.input_size)
    save_onnx(model, a.out)
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

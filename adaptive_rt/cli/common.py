"""What every command shares: the command registry, the one-line usage
error, and small argument and output helpers."""
from __future__ import annotations

import argparse
import sys
from typing import Callable

from ..registry import Registry

__all__ = ["COMMANDS", "UsageError", "command", "arguments", "open_pool", "pool_argument", "merge_pool_option",
           "progress_bar", "GrowingBar", "int_list", "hw", "need_torch", "print_entries"]

#: name -> (configure-parser, run, help)
COMMANDS: Registry[tuple] = Registry("command")


class UsageError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


def command(name: str, help: str):
    def deco(fn):
        COMMANDS.register(name, (fn.configure, fn, help))  # type: ignore[attr-defined]
        return fn
    return deco


def arguments(configure: Callable[[argparse.ArgumentParser], None]):
    def deco(fn):
        fn.configure = configure
        return fn
    return deco


POOL_HELP = "pool file (.safetensors), or a shipped pool's name (mnist5k-mbv3)"


def pool_argument(p: argparse.ArgumentParser, required: bool = True, help: str = POOL_HELP) -> None:
    """The pool, given the same way to every command: positional, with
    ``--pool`` accepted as well."""
    p.add_argument("pool", nargs="?", default=None, help=help)
    p.add_argument("--pool", dest="pool_option", default=None, metavar="POOL", help="the same, as an option")
    p.set_defaults(pool_required=required)


def merge_pool_option(a: argparse.Namespace) -> None:
    """After parsing: the positional pool or --pool, not two different ones."""
    opt = getattr(a, "pool_option", None)
    if opt is not None:
        if getattr(a, "pool", None) not in (None, opt):
            raise UsageError(f"two pools given ({a.pool} and --pool {opt}): give one")
        a.pool = opt
    if getattr(a, "pool_required", False) and a.pool is None:
        raise UsageError(f"{a.command}: give the pool (a file, or a shipped pool's name such as mnist5k-mbv3)")


def open_pool(path: str):
    from ..io.poolfile import PoolFileError, load_pool
    try:
        return load_pool(path)
    except PoolFileError as e:
        raise UsageError(f"invalid pool file {e}") from None


def progress_bar(total: int, desc: str):
    """(bar, callback): a tqdm bar where tqdm is installed, else lines on stderr."""
    try:
        from tqdm import tqdm
    except ImportError:
        return None, (lambda msg: print(msg, file=sys.stderr))
    bar = tqdm(total=total, desc=desc, unit="run", leave=False)
    return bar, (lambda msg: (bar.update(1), bar.set_postfix_str(msg)))


class GrowingBar:
    """A tqdm bar for work whose size becomes known as it goes: ``expect(n)``
    grows the total, ``progress(msg)`` moves it by one finished unit.
    ``close()`` before printing an error, so the error gets a line of its
    own. Disabled (no output) where ``enabled`` is false, e.g. on the
    non-main processes of a distributed run."""

    def __init__(self, desc: str, unit: str = "step", enabled: bool = True):
        from tqdm import tqdm
        self.bar = tqdm(total=0, desc=desc, unit=unit, leave=False, disable=not enabled)
        self.enabled = enabled

    def progress(self, msg: str) -> None:
        self.bar.update(1)
        self.bar.set_postfix_str(msg[:60])

    def expect(self, n: int) -> None:
        self.bar.total += n
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()

    def __enter__(self) -> "GrowingBar":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def int_list(text: str, flag: str, hi: int) -> list[int]:
    try:
        vals = [int(t) for t in text.split(",")]
    except ValueError:
        raise UsageError(f"{flag} {text!r} must be a comma-separated list of integers") from None
    if not vals or min(vals) < 1 or max(vals) > hi:
        raise UsageError(f"{flag} must list integers in 1..{hi}")
    return vals


def hw(text: str) -> tuple[int, int]:
    try:
        parts = [int(v) for v in text.lower().split("x")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not H or HxW") from None
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2 or min(parts) < 1 or max(parts) > 16384:
        raise argparse.ArgumentTypeError(f"{text!r} is not H or HxW in 1..16384")
    return parts[0], parts[1]


def need_torch() -> None:
    try:
        import torch  # noqa: F401
    except ImportError:
        raise UsageError("training needs torch: from the adaptive_rt checkout, pip install -c constraints.txt '.[train]'") from None


def print_entries(pool) -> None:
    """One line per entry of a freshly written pool: cost, predicted latency, accuracy, config."""
    for e in pool.entries:
        lat = f"  {e.latency_ms:.3f} ms (predicted)" if e.latency_ms is not None else ""
        acc = (f"top-1 {100 * e.accuracy:.2f}% ({e.dataset}/{e.split})" if e.accuracy is not None
               else "accuracy not measured")
        print(f"  {e.id}: {e.mflops:7.2f} MFLOPs{lat}  {acc}  {e.config.id}")

"""The ``adaptive-rt`` command line. Each command module registers its
subcommands in ``COMMANDS`` (a (configure-parser, run, help) triple), so
``main`` stays a dispatcher. Errors users can cause print one line and exit 2."""
from __future__ import annotations

import argparse
import sys

from .. import __version__
from . import pool, calibrate, train, serve, bench  # noqa: F401,I001  (they register their commands, in this order)
from .common import COMMANDS, UsageError

__all__ = ["main", "build_parser", "COMMANDS", "UsageError"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="adaptive-rt", description="On-device runtime for resource-adaptive neural networks.")
    p.add_argument("--version", action="version", version=f"adaptive-rt {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (configure, _, help) in COMMANDS.items():
        configure(sub.add_parser(name, help=help, description=help))
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _, run, _ = COMMANDS.get(args.command)
    try:
        return run(args)
    except UsageError as e:
        print(f"adaptive-rt: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())

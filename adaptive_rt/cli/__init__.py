"""The ``adaptive-rt`` command line. Each command module registers its
subcommands in ``COMMANDS`` (a (configure-parser, run, help) triple), so
``main`` stays a dispatcher. Errors users can cause print one line and exit 2."""
from __future__ import annotations

import argparse
import os
import sys

from .. import __version__
from . import pool, quantize, calibrate, train, serve, bench  # noqa: F401,I001  (they register their commands, in this order)
from .common import COMMANDS, UsageError, merge_pool_option

__all__ = ["main", "build_parser", "COMMANDS", "UsageError"]


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default where it has one and its help does not already say it."""

    def _get_help_string(self, action):
        h = action.help or ""
        if "default" in h or action.default in (None, False, argparse.SUPPRESS, []):
            return h
        return super()._get_help_string(action)


class Parser(argparse.ArgumentParser):
    """Usage errors on one line, like every other error of the command line."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="adaptive-rt", description="On-device runtime for resource-adaptive neural networks.")
    p.add_argument("--version", action="version", version=f"adaptive-rt {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (configure, _, help) in COMMANDS.items():
        configure(sub.add_parser(name, help=help, description=help, formatter_class=HelpFormatter))
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _, run, _ = COMMANDS.get(args.command)
    try:
        merge_pool_option(args)
        return run(args)
    except UsageError as e:
        print(f"adaptive-rt: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:      # e.g. `adaptive-rt inspect POOL | head`: the reader left, not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    raise SystemExit(main())

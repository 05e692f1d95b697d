"""The distributed driver: joining torchrun's process group and ending a rank
cleanly (one line, exit 1) when its peers die — shared by train and build-pool."""
from __future__ import annotations

import argparse
import os
import re
import sys

__all__ = ["join_group", "run_distributed", "DriverError"]


class DriverError(Exception):
    """This process cannot join the distributed run (the message says why)."""


def join_group(a: argparse.Namespace):
    """This process's Dist: a torch.distributed group when started by torchrun."""
    from .distributed import DistError, init_from_env
    try:
        return init_from_env(a.device, a.dist_timeout)
    except DistError as e:
        raise DriverError(str(e)) from None
    except (RuntimeError, ValueError) as e:
        raise DriverError(f"cannot join the distributed run: {e}") from None


def run_distributed(d, what: str, fn, out_dir: str | None = None) -> int:
    """Run fn(); a failed collective (a rank died, was killed or stalled)
    ends this rank with a message, not a hang or a traceback."""
    from .distributed import ReplicaMismatch, is_comm_failure, shutdown
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
    if d.enabled:
        # the group is gone and every output is written: leave now. torch/gloo's
        # static destructors at interpreter exit can abort a rank ("terminate
        # called without an active exception"), which would fail a finished run.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(rc or 0)
    return rc

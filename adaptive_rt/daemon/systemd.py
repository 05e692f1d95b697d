"""systemd integration: readiness/stopping notifications and the watchdog
(``Type=notify``, ``WatchdogSec=``; see ``packaging/adaptive-rt.service``)."""
from __future__ import annotations

import asyncio
import os
import socket
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .service import Daemon

__all__ = ["sd_notify", "watchdog"]


def sd_notify(message: str) -> bool:
    """Send ``message`` to systemd's $NOTIFY_SOCKET (a datagram); False when
    not under systemd."""
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return False
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.connect(addr)
            s.sendall(message.encode())
        return True
    except OSError:
        return False


async def watchdog(daemon: "Daemon") -> None:
    """WATCHDOG=1 pings at half of $WATCHDOG_USEC, only while inference really
    completes: an idle daemon proves it with a probe on the serving path."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or not usec.isdigit() or (pid and pid != str(os.getpid())):
        return
    period = int(usec) / 2e6
    last = -1
    while not daemon.draining:
        await asyncio.sleep(period)
        progressed = daemon.completed != last
        if not progressed:   # idle: prove an inference still completes on the serving path
            try:
                await asyncio.wait_for(asyncio.get_running_loop().run_in_executor(
                    daemon.executor, daemon.rt.probe), period)
                progressed = True
            except Exception as e:
                daemon.log("watchdog_probe_failed", level="error", error=repr(e))
        if progressed:
            last = daemon.completed
            sd_notify("WATCHDOG=1")

"""What every daemon transport shares: limits, the event log, timed reads and writes."""
from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .service import Daemon

__all__ = ["Limits", "Log", "Transport", "Busy", "ByteBudget", "is_loopback", "timed", "send", "linger",
           "SYSTEM_SOCKET",
           "default_socket_path", "socket_candidates", "find_socket"]


@dataclass(frozen=True)
class Limits:
    max_body: int = 16 << 20          # bytes of a request body / frame payload (after decompression too)
    max_header: int = 64 << 10        # bytes of HTTP headers / a frame's JSON header
    max_json_depth: int = 8
    header_timeout_s: float = 5.0     # to receive a request's head once it has started
    body_timeout_s: float = 10.0      # to receive its body
    idle_timeout_s: float = 60.0      # a kept-alive connection with no request
    max_concurrent: int = 4           # inferences at once
    max_queue: int = 64               # inferences waiting for a slot
    drain_s: float = 10.0             # SIGTERM: time in-flight requests get to finish
    inline_ms: float = 0.5            # inferences expected to take less run on the event loop itself
    max_connections: int = 64         # open client connections, both transports; beyond: busy, closed
    max_buffered: int = 64 << 20      # request bytes held at once over all connections; beyond: busy
    offload_bytes: int = 64 << 10     # bodies this large are parsed on a worker thread, not the event loop


class Log:
    """One line per event on stderr: ``time event key=value ...`` or JSON."""

    LEVELS = {"debug": 10, "info": 20, "warn": 30, "error": 40}

    def __init__(self, fmt: str = "text", level: str = "info", stream=None):
        self.json = fmt == "json"
        self.level = self.LEVELS[level]
        self.stream = stream or sys.stderr

    def __call__(self, event: str, level: str = "info", **kw) -> None:
        if self.LEVELS[level] < self.level:
            return
        t = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1000) % 1000:03d}Z"
        if self.json:
            line = json.dumps({"time": t, "level": level, "event": event, **kw}, default=str)
        else:
            line = f"{t} {level} {event}" + "".join(f" {k}={json.dumps(v, default=str)}" for k, v in kw.items())
        try:
            print(line, file=self.stream, flush=True)
        except (OSError, ValueError):
            pass


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False



if sys.version_info >= (3, 11):
    async def timed(aw, timeout: float):
        """``await aw`` with a timeout (asyncio.timeout: a timer, no extra task)."""
        async with asyncio.timeout(timeout):
            return await aw
else:  # pragma: no cover - Python 3.10
    async def timed(aw, timeout: float):
        return await asyncio.wait_for(aw, timeout)




async def send(writer: asyncio.StreamWriter, data: bytes, timeout: float) -> None:
    """Write ``data`` and wait (at most ``timeout`` s) until the peer has taken it."""
    writer.write(data)
    await timed(writer.drain(), timeout)


async def linger(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, limit: int, timeout: float) -> None:
    """A lingering close, after answering a request whose body was not read
    (too large, malformed): stop writing, then discard what the peer still
    sends — at most ``limit`` bytes for at most ``timeout`` s — so that the
    close does not reset the connection before the peer has read the answer."""
    try:
        if writer.can_write_eof():
            writer.write_eof()
        left = limit
        async with asyncio.timeout(timeout) if sys.version_info >= (3, 11) else _noop():
            while left > 0:
                chunk = await reader.read(min(1 << 16, left))
                if not chunk:
                    break
                left -= len(chunk)
    except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, RuntimeError):
        pass


class _noop:  # pragma: no cover - Python 3.10: linger bounded by size only
    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        return False


class Busy(Exception):
    """The daemon-wide budget is spent (connections or buffered bytes)."""


class ByteBudget:
    """Request bytes held at once, over every connection: a body is admitted
    (reserved) before it is read, and released once its request is answered,
    so the daemon's memory stays bounded whatever clients send."""

    def __init__(self, limit: int):
        self.limit, self.used, self.peak = limit, 0, 0

    def reserve(self, n: int) -> "_Held":
        if n > 0 and self.used + n > self.limit:
            raise Busy(f"busy: {self.used} request bytes held, limit {self.limit}")
        self.used += n
        self.peak = max(self.peak, self.used)
        return _Held(self, n)


class _Held:
    def __init__(self, budget: ByteBudget, n: int):
        self.budget, self.n = budget, n

    def extend(self, n: int) -> None:
        """Hold ``n`` more bytes under the same reservation (Busy if they do not fit)."""
        self.budget.reserve(n)
        self.n += n

    def release(self) -> None:
        self.budget.used -= self.n
        self.n = 0

    def __enter__(self) -> "_Held":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


class Transport:
    """A connection handler over the daemon core: for each request it waits
    (at most the idle timeout) for the first byte, then ``serve_one`` reads
    and answers the request and says whether the connection stays open."""

    def __init__(self, daemon: "Daemon"):
        self.daemon = daemon

    async def serve_one(self, first: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        raise NotImplementedError

    async def refuse_connection(self, writer: asyncio.StreamWriter, message: str) -> None:
        """Answer a connection over --max-connections (busy) before closing it."""

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        d = self.daemon
        if len(d.conns) >= d.limits.max_connections:
            msg = f"busy: {len(d.conns)} connections open, limit {d.limits.max_connections}"
            d.refuse(self.name, "busy", msg)
            try:
                await self.refuse_connection(writer, msg)
            except (OSError, asyncio.TimeoutError):
                pass
            writer.close()
            return
        d.conns.add(writer)
        try:
            while True:
                try:   # idle until a request starts
                    first = await timed(reader.readexactly(1), d.limits.idle_timeout_s)
                except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError):
                    return
                if not await self.serve_one(first, reader, writer):
                    return
        except (ConnectionError, asyncio.TimeoutError):
            pass
        finally:
            d.conns.discard(writer)
            writer.close()


# ----------------------------------------------------------------------------- socket paths
#: Where the system service listens (packaging/adaptive-rt.service).
SYSTEM_SOCKET = "/run/adaptive-rt/adaptive-rt.sock"


def default_socket_path() -> str:
    """Where ``adaptive-rt serve`` listens unless ``--socket`` says:
    ``$ADAPTIVE_RT_SOCKET``, else this user's runtime directory
    (``$XDG_RUNTIME_DIR/adaptive-rt.sock``), else ``/tmp/adaptive-rt-UID.sock``."""
    env = os.environ.get("ADAPTIVE_RT_SOCKET")
    if env:
        return env
    run = os.environ.get("XDG_RUNTIME_DIR")
    return os.path.join(run, "adaptive-rt.sock") if run else f"/tmp/adaptive-rt-{os.getuid()}.sock"


def socket_candidates() -> list[str]:
    """Where ``Client()`` looks, in order: this user's default daemon socket,
    then the system service's."""
    out = [default_socket_path()]
    if SYSTEM_SOCKET not in out:
        out.append(SYSTEM_SOCKET)
    return out


def find_socket() -> str:
    """The first socket of :func:`socket_candidates` that exists."""
    import stat as _stat
    for p in socket_candidates():
        try:
            if _stat.S_ISSOCK(os.stat(p).st_mode):
                return p
        except OSError:
            continue
    raise FileNotFoundError("no adaptive-rt daemon socket at " + ", ".join(socket_candidates()) +
                            ": start `adaptive-rt serve POOL`, or pass Client(unix=PATH) / Client(http=HOST:PORT)")


"""``adaptive-rt serve``: a Runtime behind a Unix socket and loopback HTTP.

One asyncio event loop (stdlib only) reads requests and enforces the limits;
inferences run on a small thread pool (the engine releases the GIL), at most
``max_concurrent`` at once with at most ``max_queue`` waiting — beyond that
a request is answered ``busy`` (HTTP 503) at once. Every read has a timeout
and a size limit checked before anything is allocated, so memory never
grows with what a client sends. SIGHUP (or ``POST /v1/reload`` with
``--enable-admin``) reloads the pool file: the new file is validated and
planned in full off the loop, then swapped in; requests already running
finish on the old runtime, which is closed once they have. SIGTERM stops
accepting, drains in-flight requests (bounded), removes the socket file and
exits 0. Under systemd it sends READY=1, STOPPING=1 and WATCHDOG=1 pings
while inference really completes.
"""
from __future__ import annotations

import asyncio
import os
import signal
import stat
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import numpy as np

from ..engine import Gate
from ..io.poolfile import PoolFile
from ..serve.runtime import Runtime
from .base import ByteBudget, Limits, Log, is_loopback
from .http import HttpTransport
from .metrics import Metrics
from .protocol import FRAME, ProtocolError
from .shm import ShmConnection, wait_closed
from .systemd import sd_notify, watchdog
from .unix import UnixTransport

__all__ = ["Daemon", "Limits", "Log", "catch_early_sighup"]

_EARLY_HUP = False


def catch_early_sighup() -> None:
    """From now on a SIGHUP is remembered instead of killing the process (its
    default action): ``adaptive-rt serve`` calls this first, before the pool
    is opened, and ``Daemon.run`` reloads once ready if one came."""
    def remember(signum, frame):
        global _EARLY_HUP
        _EARLY_HUP = True
    signal.signal(signal.SIGHUP, remember)


class Daemon:
    def __init__(self, pool_path: str, socket_path: str | None = None, http: tuple[str, int] | None = None,
                 allow_remote: bool = False, socket_mode: int = 0o600, enable_admin: bool = False,
                 limits: Limits = Limits(), runtime_kw: dict | None = None, log: Log | None = None,
                 pool: PoolFile | None = None):
        if socket_path is None and http is None:
            raise ValueError("nothing to listen on: give a socket path or an HTTP address")
        if http is not None and not is_loopback(http[0]) and not allow_remote:
            raise ValueError(f"refusing to listen on non-loopback address {http[0]!r}: pass --allow-remote "
                             "to expose the daemon beyond this machine")
        self.pool_path = pool_path
        self.socket_path = socket_path
        self.http = http
        self.allow_remote = allow_remote
        self.socket_mode = socket_mode
        self.enable_admin = enable_admin
        self.limits = limits
        self.runtime_kw = dict(runtime_kw or {})
        self._preloaded = pool      # the first runtime serves this already validated PoolFile
        self.log = log or Log()
        self.metrics = Metrics()
        self.rt = None
        self._holders: dict = {}    # runtime -> engine calls and shm loops using it (retired at 0)
        self._lock = threading.Lock()  # _holders, completed (event loop and shm threads)
        self._run_gate = Gate(limits.max_concurrent)   # shared with the C++ shm loop
        self._waiting = 0
        self.completed = 0
        self.draining = False
        self.conns: set = set()
        self.budget = ByteBudget(limits.max_buffered)
        self.http_port: int | None = None
        self._socket_id = None

    # ------------------------------------------------------------------ runtime
    def _open_runtime(self):
        pool, self._preloaded = self._preloaded, None
        rt = Runtime.open(pool if pool is not None else self.pool_path, **self.runtime_kw)
        rt.on_switch(lambda ev: self.log("switch", old=ev.old, new=ev.new, threads=ev.threads, reason=ev.reason))
        return rt

    async def reload(self) -> tuple[bool, str]:
        async with self._reload_lock:
            loop = asyncio.get_running_loop()
            try:
                new = await loop.run_in_executor(None, self._open_runtime)
            except Exception as e:   # the old pool keeps serving
                self.metrics.reload(False)
                self.log("reload_failed", level="error", pool=self.pool_path, error=str(e))
                return False, str(e)
            old = self.rt
            pinned = old.pinned if old is not None else None
            if pinned is not None:      # a pin outlives a reload while the new pool has that entry
                if pinned in new.entries:
                    new.pin(pinned, old.threads)
                else:
                    self.log("unpinned", level="warn", entry=pinned,
                             message=f"the reloaded pool has no entry {pinned!r}: the policy chooses again")
            with self._lock:
                self.rt = new
            if old is not None:
                old.generation[0] += 1     # shared-memory loops running the old plans come back
            self.metrics.reload(True)
            self.log("reloaded", pool=self.pool_path, sha256=new.pool.sha256[:16], entries=len(new.entries),
                     pinned=new.pinned)
            loop.create_task(self._retire(old))
            return True, new.pool.sha256

    async def _retire(self, rt) -> None:
        while True:
            with self._lock:
                if self._holders.get(rt, 0) <= 0:
                    self._holders.pop(rt, None)
                    break
            await asyncio.sleep(0.01)
        await asyncio.get_running_loop().run_in_executor(None, rt.close)

    def _run(self, x: np.ndarray, gate: bool = True) -> tuple[np.ndarray, str, float]:
        """One engine call on the current runtime under the run gate (at most
        ``max_concurrent`` at once over every transport; ``gate=False``: the
        caller holds it), counted in flight so that a reload retires the old
        runtime only once its calls are done."""
        if gate:
            if not self._run_gate.acquire_bounded(self.limits.max_queue):
                raise ProtocolError(f"busy: {self.limits.max_concurrent} running and {self._run_gate.waiting} "
                                    "queued", "busy")
            try:
                return self._run(x, False)
            finally:
                self._run_gate.release()
        with self._lock:       # taken with the count: _retire cannot close it in between
            rt = self.rt
            self._holders[rt] = self._holders.get(rt, 0) + 1
        try:
            t0 = time.perf_counter()
            y, entry = rt.infer(x)
            return y, entry, (time.perf_counter() - t0) * 1e3
        finally:
            with self._lock:
                self._holders[rt] -= 1

    def _finish(self, y: np.ndarray, entry: str, ms: float) -> None:
        with self._lock:
            self.completed += 1
        self.metrics.latency(entry, ms)
        if not np.isfinite(y).all():
            # no valid answer exists (JSON has no NaN/Infinity): an error kind of its own, never invalid JSON
            raise ProtocolError(f"entry {entry} produced non-finite outputs (NaN or infinity) for this input",
                                "non_finite")

    def queued(self) -> int:
        """Requests waiting for an inference slot (event loop and shm threads)."""
        return self._waiting + self._run_gate.waiting

    def inflight(self) -> int:
        """Inferences running now over every transport: the run gate's taken
        slots (a shared-memory connection waiting for its next request holds
        the runtime, not a slot)."""
        return self._run_gate.held

    async def infer(self, x: np.ndarray) -> tuple[np.ndarray, str, float]:
        if self.draining:
            raise ProtocolError("daemon is shutting down", "unavailable")
        if self._waiting >= self.limits.max_queue and self._slots.locked():
            raise ProtocolError(f"busy: {self.limits.max_concurrent} running and {self._waiting} queued", "busy")
        self._waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1
        rt = self.rt
        try:
            if (rt.expected_ms() * max(1, len(x) if x.ndim == 4 else 1) <= self.limits.inline_ms
                    and self._run_gate.try_acquire()):
                # a handoff to the thread pool would cost a good part of the run: run it here
                try:
                    y, entry, ms = self._run(x, gate=False)
                finally:
                    self._run_gate.release()
            else:
                y, entry, ms = await asyncio.get_running_loop().run_in_executor(self.executor, self._run, x)
        except ProtocolError:
            raise
        except (TypeError, ValueError) as e:
            raise ProtocolError(str(e)) from None
        finally:
            self._slots.release()
        self._finish(y, entry, ms)
        return y, entry, ms

    def infer_blocking(self, x: np.ndarray) -> tuple[np.ndarray, str, float]:
        """``infer`` for a transport's own thread (shared memory): no event loop."""
        if self.draining:
            raise ProtocolError("daemon is shutting down", "unavailable")
        try:
            y, entry, ms = self._run(x)
        except ProtocolError:
            raise
        except (TypeError, ValueError) as e:
            raise ProtocolError(str(e)) from None
        self._finish(y, entry, ms)
        return y, entry, ms

    def status(self) -> dict:
        rt = self.rt
        snap = rt.monitor.latest()
        s = rt.stats()
        b = rt.budget
        return {"pool": self.pool_path, "sha256": rt.pool.sha256, "entries": rt.entries, "active": rt.active,
                "threads": rt.threads, "pinned": s["pinned"], "policy": s["policy"],
                "budget": {"slo_ms": s["slo_ms"], "memory_cap_bytes": b.memory_cap_bytes, "hold_s": b.hold_s},
                "snapshot": snap.to_dict() if snap else None,
                "stats": {k: s[k] for k in ("requests", "images", "rejected", "slo_violation_rate", "switches",
                                            "latency_ms", "uptime_s")},
                "inflight": self.inflight(), "queued": self.queued(),
                "reloads": self.metrics.reloads, "reload_failures": self.metrics.reload_failures,
                "draining": self.draining}

    def render_metrics(self) -> str:
        rt = self.rt
        snap = rt.monitor.latest()
        g = {}
        if snap is not None:
            battery = snap.battery_percent
            g = {"other_cpu_cores": snap.other_cpu_cores, "self_cpu_cores": snap.self_cpu_cores,
                 "memory_available_bytes": snap.mem_available_bytes,
                 "battery_ratio": None if battery is None else battery / 100.0,
                 "temperature_celsius": snap.temperature_c, "power_watts": snap.power_w}
        g["monitor_cpu_overhead_ratio"] = rt.monitor.overhead_pct() / 100.0
        return self.metrics.render(g, rt.active, rt.stats()["switches"], self.inflight(),
                                   self.queued())

    def refuse(self, transport: str, kind: str, message: str) -> None:
        """Count and log a refused request (the transport answers it)."""
        self.metrics.error(kind)
        self.metrics.request(transport, kind)
        self.log("refused", level="debug", transport=transport, kind=kind, message=message[:200])

    # ------------------------------------------------------------------ lifecycle
    def _check_socket_path(self) -> None:
        """Refuse a path that is not a socket, or a socket another process
        listens on; remove only a stale socket (nobody listening)."""
        import socket as _socket
        path = self.socket_path
        if not os.path.lexists(path):
            return
        if not stat.S_ISSOCK(os.lstat(path).st_mode):
            raise ValueError(f"{path} exists and is not a socket: not replacing it")
        probe = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        probe.settimeout(1.0)
        try:
            probe.connect(path)
        except (ConnectionRefusedError, FileNotFoundError):
            os.unlink(path)                    # stale: left by a process that is gone
            return
        except OSError as e:
            raise ValueError(f"{path}: cannot tell whether another daemon listens there ({e.strerror or e}): "
                             "not replacing it") from None
        finally:
            probe.close()
        raise ValueError(f"another process is listening on {path}: stop it first, or give another --socket")

    def _remove_own_socket(self) -> None:
        if not self.socket_path or self._socket_id is None:
            return
        try:
            st = os.lstat(self.socket_path)
        except FileNotFoundError:
            return
        if (st.st_dev, st.st_ino) == self._socket_id:   # never a socket another daemon bound since
            os.unlink(self.socket_path)

    def _capture_library_logs(self) -> None:
        """The runtime's own messages (e.g. "calibrating quickly") become log events too."""
        import logging
        log = self.log

        class Forward(logging.Handler):
            def emit(self, record):
                log("runtime", level={logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warn"}.get(
                    record.levelno, "error"), message=record.getMessage())
        lg = logging.getLogger("adaptive_rt")
        lg.addHandler(Forward())
        lg.propagate = False
        lg.setLevel(logging.INFO)

    async def run(self, on_ready: Callable[["Daemon"], None] | None = None) -> int:
        loop = asyncio.get_running_loop()
        self._capture_library_logs()
        self._slots = asyncio.Semaphore(self.limits.max_concurrent)
        self._reload_lock = asyncio.Lock()
        self.executor = ThreadPoolExecutor(self.limits.max_concurrent + 1, thread_name_prefix="adaptive-rt-infer")
        # signals first: a SIGHUP while the pool is opened and calibrated is a reload to do once ready
        # (not the default action, which kills the process); SIGTERM/SIGINT stop as soon as it is ready
        stop = asyncio.Event()
        hup = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGHUP, hup.set)
        if _EARLY_HUP:
            hup.set()
        self.log("starting", pool=self.pool_path, pid=os.getpid())
        if self.socket_path:
            self._check_socket_path()          # before the pool is opened: fail fast
        self.rt = await loop.run_in_executor(None, self._open_runtime)
        servers = []
        self._socket_id = None
        if self.socket_path:
            self._check_socket_path()          # again: another daemon may have started meanwhile
            old = os.umask(0o777 & ~self.socket_mode)
            try:
                servers.append(await asyncio.start_unix_server(UnixTransport(self), self.socket_path,
                                                               limit=self.limits.max_header + FRAME.size))
            finally:
                os.umask(old)
            os.chmod(self.socket_path, self.socket_mode)
            st = os.lstat(self.socket_path)
            self._socket_id = (st.st_dev, st.st_ino)     # ours: removed at exit only if still this file
            self.log("listening", transport="unix", path=self.socket_path, mode=oct(self.socket_mode))
        if self.http:
            host, port = self.http
            if not is_loopback(host):
                self.log("remote_access", level="warn", host=host,
                         message="listening beyond loopback: anyone who can reach this address can use the model")
            srv = await asyncio.start_server(HttpTransport(self), host, port, limit=self.limits.max_header)
            servers.append(srv)
            self.http_port = srv.sockets[0].getsockname()[1]
            self.log("listening", transport="http", host=host, port=self.http_port)
        loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(self.reload()))
        if hup.is_set():
            self.log("reload_requested_during_start", message="SIGHUP while starting: reloading now")
            loop.create_task(self.reload())
        wd = loop.create_task(watchdog(self))
        sd_notify("READY=1")
        self.log("ready", entries=len(self.rt.entries), active=self.rt.active)
        if on_ready:
            on_ready(self)
        await stop.wait()

        # graceful stop: no new connections or requests, in-flight ones finish
        sd_notify("STOPPING=1")
        self.draining = True
        self.rt.generation[0] += 1         # shared-memory loops come back and answer `unavailable`
        self.log("stopping", inflight=self.inflight())
        for s in servers:
            s.close()
        t_end = time.monotonic() + self.limits.drain_s
        while (self.inflight() or self.queued()) and time.monotonic() < t_end:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)   # let the last responses be written
        shm = [c for c in self.conns if isinstance(c, ShmConnection)]
        for w in list(self.conns):
            w.close()
        await loop.run_in_executor(None, wait_closed, shm, 5.0)
        wd.cancel()
        left = self.inflight()
        self._remove_own_socket()
        await loop.run_in_executor(None, self.rt.close)
        self.executor.shutdown(wait=False)
        self.log("stopped", unfinished=left)
        return 0

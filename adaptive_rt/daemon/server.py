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
import ipaddress
import json
import os
import signal
import socket
import stat
import sys
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..poolfile import strict_json
from .metrics import Metrics
from .protocol import (FRAME, ProtocolError, array_from_json, array_from_npy, npy_bytes, pack_frame,
                       parse_frame_prefix, parse_header, tensor_from_payload)

__all__ = ["Limits", "Daemon", "Log", "sd_notify", "is_loopback"]

STATUS = {"bad_request": 400, "too_large": 413, "busy": 503, "timeout": 408, "unavailable": 503, "internal": 500}
KIND = {408: "timeout", 413: "too_large", 404: "not_found"}     # HTTP refusals; any other 4xx/5xx: bad_request
REASON = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout",
          409: "Conflict", 411: "Length Required", 413: "Payload Too Large", 415: "Unsupported Media Type",
          431: "Request Header Fields Too Large", 500: "Internal Server Error", 501: "Not Implemented",
          503: "Service Unavailable"}


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


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


if sys.version_info >= (3, 11):
    async def _timed(aw, timeout: float):
        """``await aw`` with a timeout (asyncio.timeout: a timer, no extra task)."""
        async with asyncio.timeout(timeout):
            return await aw
else:  # pragma: no cover - Python 3.10
    async def _timed(aw, timeout: float):
        return await asyncio.wait_for(aw, timeout)


class _Refused(Exception):
    """An HTTP-level refusal (status, message, close the connection?)."""

    def __init__(self, status: int, message: str, close: bool = False):
        super().__init__(message)
        self.status, self.close = status, close


class Daemon:
    def __init__(self, pool_path: str, socket_path: str | None = None, http: tuple[str, int] | None = None,
                 allow_remote: bool = False, socket_mode: int = 0o600, enable_admin: bool = False,
                 limits: Limits = Limits(), runtime_kw: dict | None = None, log: Log | None = None):
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
        self.log = log or Log()
        self.metrics = Metrics()
        self.rt = None
        self._inflight: dict = {}
        self._waiting = 0
        self._completed = 0
        self._draining = False
        self._conns: set = set()
        self.http_port: int | None = None

    # ------------------------------------------------------------------ runtime
    def _open_runtime(self):
        from ..runtime import Runtime
        rt = Runtime.open(self.pool_path, **self.runtime_kw)
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
            old, self.rt = self.rt, new
            self.metrics.reload(True)
            self.log("reloaded", pool=self.pool_path, sha256=new.pool.sha256[:16], entries=len(new.entries))
            loop.create_task(self._retire(old))
            return True, new.pool.sha256

    async def _retire(self, rt) -> None:
        while self._inflight.get(rt, 0) > 0:
            await asyncio.sleep(0.01)
        self._inflight.pop(rt, None)
        await asyncio.get_running_loop().run_in_executor(None, rt.close)

    async def infer(self, x: np.ndarray) -> tuple[np.ndarray, str, float]:
        if self._draining:
            raise ProtocolError("daemon is shutting down", "unavailable")
        if self._waiting >= self.limits.max_queue and self._slots.locked():
            raise ProtocolError(f"busy: {self.limits.max_concurrent} running and {self._waiting} queued", "busy")
        self._waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1
        rt = self.rt
        self._inflight[rt] = self._inflight.get(rt, 0) + 1
        try:
            t0 = time.perf_counter()
            if rt.expected_ms() * max(1, len(x) if x.ndim == 4 else 1) <= self.limits.inline_ms:
                # a handoff to the thread pool would cost a good part of the run: run it here
                y, entry = rt.infer(x)
            else:
                y, entry = await asyncio.get_running_loop().run_in_executor(self._exec, rt.infer, x)
            ms = (time.perf_counter() - t0) * 1e3
        except (TypeError, ValueError) as e:
            raise ProtocolError(str(e)) from None
        finally:
            self._inflight[rt] -= 1
            self._slots.release()
        self._completed += 1
        self.metrics.latency(entry, ms)
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
                "inflight": sum(self._inflight.values()), "queued": self._waiting,
                "reloads": self.metrics.reloads, "reload_failures": self.metrics.reload_failures,
                "draining": self._draining}

    def render_metrics(self) -> str:
        rt = self.rt
        snap = rt.monitor.latest()
        g = {}
        if snap is not None:
            g = {"other_cpu_cores": snap.other_cpu_cores, "self_cpu_cores": snap.self_cpu_cores,
                 "mem_available_bytes": snap.mem_available_bytes, "battery_percent": snap.battery_percent,
                 "temperature_celsius": snap.temperature_c, "power_watts": snap.power_w}
        g["monitor_cpu_overhead_percent"] = rt.monitor.overhead_pct()
        return self.metrics.render(g, rt.active, rt.stats()["switches"], sum(self._inflight.values()),
                                   self._waiting)

    # ------------------------------------------------------------------ Unix socket
    async def _send(self, writer, data: bytes) -> None:
        writer.write(data)
        await _timed(writer.drain(), self.limits.body_timeout_s)

    def _refuse(self, transport: str, kind: str, message: str) -> None:
        self.metrics.error(kind)
        self.metrics.request(transport, kind)
        self.log("refused", level="debug", transport=transport, kind=kind, message=message[:200])

    async def _unix_conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._conns.add(writer)
        lim = self.limits
        try:
            while True:
                try:   # idle until a frame starts, then the header timeout for the rest of its prefix
                    prefix = await _timed(reader.readexactly(1), lim.idle_timeout_s)
                except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError):
                    return
                try:
                    prefix += await _timed(reader.readexactly(FRAME.size - 1), lim.header_timeout_s)
                    h, p = parse_frame_prefix(prefix, lim.max_header, lim.max_body)
                    raw = await _timed(reader.readexactly(h), lim.header_timeout_s)
                    payload = await _timed(reader.readexactly(p), lim.body_timeout_s) if p else b""
                except (asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError, ProtocolError) as e:
                    # the stream cannot be resynchronised: answer and close
                    kind, msg = ((e.kind, str(e)) if isinstance(e, ProtocolError) else
                                 ("timeout", "frame not received in time") if isinstance(e, asyncio.TimeoutError)
                                 else ("bad_request", "truncated frame"))
                    self._refuse("unix", kind, msg)
                    await self._send(writer, pack_frame({"ok": False, "error": kind, "message": msg}))
                    return
                await self._send(writer, await self._unix_request(raw, payload))
        except (ConnectionError, asyncio.TimeoutError):
            pass
        finally:
            self._conns.discard(writer)
            writer.close()

    async def _unix_request(self, raw: bytes, payload: bytes) -> bytes:
        rid = None
        try:
            header = parse_header(raw, self.limits.max_json_depth)
            rid = header.get("id")
            if rid is not None and not isinstance(rid, (int, str)):
                rid = None
            op = header.get("op")
            if op == "infer":
                x = tensor_from_payload(header, payload)
                y, entry, ms = await self.infer(x)
                y = np.ascontiguousarray(y, "<f4")
                self.metrics.request("unix", "ok")
                return pack_frame({"ok": True, "id": rid, "entry": entry, "dtype": "float32",
                                   "shape": list(y.shape), "latency_ms": ms}, y.tobytes())
            if op == "status":
                self.metrics.request("unix", "ok")
                return pack_frame({"ok": True, "id": rid, "status": self.status()})
            if op == "ping":
                self.metrics.request("unix", "ok")
                return pack_frame({"ok": True, "id": rid})
            raise ProtocolError(f"unknown op {op!r}; use infer, status or ping")
        except ProtocolError as e:
            self._refuse("unix", e.kind, str(e))
            return pack_frame({"ok": False, "id": rid, "error": e.kind, "message": str(e)})
        except Exception as e:   # pragma: no cover - a bug, not the client's fault: keep serving
            self._refuse("unix", "internal", repr(e))
            self.log("internal_error", level="error", error=repr(e))
            return pack_frame({"ok": False, "id": rid, "error": "internal", "message": "internal error"})

    # ------------------------------------------------------------------ HTTP
    async def _http_conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._conns.add(writer)
        lim = self.limits
        try:
            while True:
                try:   # idle until a request starts
                    head = await _timed(reader.readexactly(1), lim.idle_timeout_s)
                except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError):
                    return
                try:
                    head += await _timed(reader.readuntil(b"\r\n\r\n"), lim.header_timeout_s)
                except asyncio.TimeoutError:
                    self._refuse("http", "timeout", "request head not received in time")
                    await self._http_reply(writer, 408, {"error": "timeout", "message":
                                                         "request head not received in time"}, close=True)
                    return
                except asyncio.LimitOverrunError:
                    self._refuse("http", "too_large", "request head over the limit")
                    await self._http_reply(writer, 431, {"error": "too_large", "message":
                                                         f"request head over {lim.max_header} bytes"}, close=True)
                    return
                except asyncio.IncompleteReadError as e:
                    if e.partial.strip():
                        self._refuse("http", "bad_request", "connection closed mid-head")
                    return
                except ConnectionError:
                    return
                except ValueError:   # the stream's own limit
                    self._refuse("http", "too_large", "request head over the limit")
                    await self._http_reply(writer, 431, {"error": "too_large"}, close=True)
                    return
                try:
                    keep = await self._http_request(head, reader, writer)
                except _Refused as r:
                    kind = KIND.get(r.status, "bad_request")
                    if r.status != 404:
                        self._refuse("http", kind, str(r))
                    else:
                        self.metrics.request("http", "not_found")
                    await self._http_reply(writer, r.status, {"error": kind, "message": str(r)}, close=r.close)
                    keep = not r.close
                if not keep:
                    return
        except (ConnectionError, asyncio.TimeoutError):
            pass
        finally:
            self._conns.discard(writer)
            writer.close()

    async def _http_reply(self, writer, status: int, body, content_type: str = "application/json",
                          headers: dict | None = None, close: bool = False) -> None:
        if not isinstance(body, (bytes, bytearray)):
            body = json.dumps(body, default=str).encode()
        lines = [f"HTTP/1.1 {status} {REASON.get(status, 'Status')}", f"Content-Type: {content_type}",
                 f"Content-Length: {len(body)}", "Connection: close" if close else "Connection: keep-alive"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        await self._send(writer, ("\r\n".join(lines) + "\r\n\r\n").encode("latin1") + bytes(body))

    async def _http_request(self, head: bytes, reader, writer) -> bool:
        lim = self.limits
        try:
            text = head.decode("latin1")
        except UnicodeDecodeError:   # pragma: no cover - latin1 decodes anything
            raise _Refused(400, "request head is not text", True)
        lines = text.split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise _Refused(400, "malformed request line", True)
        method, target, version = parts
        headers: dict[str, str] = {}
        for ln in lines[1:]:
            if not ln:
                continue
            if ":" not in ln or ln[0] in " \t":
                raise _Refused(400, "malformed header line", True)
            k, v = ln.split(":", 1)
            k = k.strip().lower()
            if k in headers and k in ("content-length", "transfer-encoding", "content-type"):
                raise _Refused(400, f"duplicate {k} header", True)
            headers[k] = v.strip()
        keep = headers.get("connection", "").lower() != "close" and version == "HTTP/1.1"
        if "transfer-encoding" in headers:
            raise _Refused(501, "transfer-encoding is not supported: send Content-Length", True)
        body = b""
        if "content-length" in headers:
            cl = headers["content-length"]
            if not cl.isdigit() or len(cl) > 12:
                raise _Refused(400, "invalid Content-Length", True)
            n = int(cl)
            if n > lim.max_body:
                raise _Refused(413, f"body of {n} bytes is over the limit of {lim.max_body}", True)
            try:
                body = await _timed(reader.readexactly(n), lim.body_timeout_s) if n else b""
            except asyncio.TimeoutError:
                raise _Refused(408, "body not received in time", True) from None
            except asyncio.IncompleteReadError:
                raise _Refused(400, "connection closed mid-body", True) from None
        elif method == "POST":
            raise _Refused(411, "POST needs Content-Length", True)
        enc = headers.get("content-encoding", "identity").lower()
        if enc in ("gzip", "deflate"):
            body = self._inflate(body, enc)
        elif enc != "identity":
            raise _Refused(415, f"content-encoding {enc!r} is not supported (gzip, deflate)")
        path = target.split("?", 1)[0]
        routes = {"/v1/infer": "POST", "/v1/status": "GET", "/healthz": "GET", "/readyz": "GET",
                  "/metrics": "GET", "/v1/reload": "POST", "/v1/pin": "POST", "/v1/unpin": "POST"}
        admin = ("/v1/reload", "/v1/pin", "/v1/unpin")
        if path not in routes or (path in admin and not self.enable_admin):
            raise _Refused(404, f"no route {path[:100]!r}")
        if method != routes[path]:
            raise _Refused(405, f"{path} takes {routes[path]}")
        if path == "/v1/infer":
            ctype = headers.get("content-type", "").split(";")[0].strip().lower()
            try:
                if ctype == "application/x-npy":
                    x = array_from_npy(body)
                elif ctype == "application/json":
                    x = array_from_json(body, lim.max_json_depth)
                else:
                    raise _Refused(415, "send application/x-npy or application/json")
                y, entry, ms = await self.infer(x)
            except ProtocolError as e:
                self._refuse("http", e.kind, str(e))
                await self._http_reply(writer, STATUS.get(e.kind, 400), {"error": e.kind, "message": str(e)},
                                       close=not keep)
                return keep
            self.metrics.request("http", "ok")
            if "application/x-npy" in headers.get("accept", ""):
                await self._http_reply(writer, 200, npy_bytes(np.asarray(y, np.float32)), "application/x-npy",
                                       {"X-Entry": entry, "X-Latency-Ms": f"{ms:.4f}"}, close=not keep)
            else:
                await self._http_reply(writer, 200, {"entry": entry, "latency_ms": ms, "outputs": y.tolist()},
                                       close=not keep)
        elif path == "/v1/status":
            self.metrics.request("http", "ok")
            await self._http_reply(writer, 200, self.status(), close=not keep)
        elif path == "/healthz":
            self.metrics.request("http", "ok")
            await self._http_reply(writer, 200, b"ok\n", "text/plain", close=not keep)
        elif path == "/readyz":
            ready = self.rt is not None and not self._draining
            self.metrics.request("http", "ok" if ready else "unavailable")
            await self._http_reply(writer, 200 if ready else 503, b"ready\n" if ready else b"not ready\n",
                                   "text/plain", close=not keep)
        elif path == "/metrics":
            self.metrics.request("http", "ok")
            await self._http_reply(writer, 200, self.render_metrics().encode(), "text/plain; version=0.0.4",
                                   close=not keep)
        elif path in ("/v1/pin", "/v1/unpin"):
            rt = self.rt
            try:
                if path == "/v1/pin":
                    d = strict_json(body.decode("utf-8", "replace"), "pin body", lim.max_json_depth, ProtocolError)
                    if not isinstance(d, dict) or not isinstance(d.get("entry"), str):
                        raise ProtocolError('pin body must be {"entry": ID} (optionally "threads": N)')
                    rt.pin(d["entry"], d.get("threads"))
                else:
                    rt.unpin()
            except (ProtocolError, ValueError) as e:
                raise _Refused(400, str(e)) from None
            self.metrics.request("http", "ok")
            await self._http_reply(writer, 200, {"ok": True, "active": rt.active, "pinned": rt.pinned},
                                   close=not keep)
        elif path == "/v1/reload":
            ok, what = await self.reload()
            self.metrics.request("http", "ok" if ok else "reload_failed")
            await self._http_reply(writer, 200 if ok else 409, {"ok": ok, ("sha256" if ok else "error"): what},
                                   close=not keep)
        return keep

    def _inflate(self, body: bytes, enc: str) -> bytes:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS if enc == "gzip" else zlib.MAX_WBITS)
        try:
            out = d.decompress(body, self.limits.max_body + 1)
        except zlib.error as e:
            raise _Refused(400, f"body is not valid {enc}: {e}") from None
        if len(out) > self.limits.max_body or d.unconsumed_tail:
            raise _Refused(413, f"decompressed body is over the limit of {self.limits.max_body} bytes")
        return out

    # ------------------------------------------------------------------ lifecycle
    async def _watchdog(self) -> None:
        usec = os.environ.get("WATCHDOG_USEC")
        pid = os.environ.get("WATCHDOG_PID")
        if not usec or not usec.isdigit() or (pid and pid != str(os.getpid())):
            return
        period = int(usec) / 2e6
        last = -1
        while not self._draining:
            await asyncio.sleep(period)
            progressed = self._completed != last
            if not progressed:   # idle: prove an inference still completes on the serving path
                try:
                    await asyncio.wait_for(asyncio.get_running_loop().run_in_executor(
                        self._exec, self.rt.probe), period)
                    progressed = True
                except Exception as e:
                    self.log("watchdog_probe_failed", level="error", error=repr(e))
            if progressed:
                last = self._completed
                sd_notify("WATCHDOG=1")

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
        self._exec = ThreadPoolExecutor(self.limits.max_concurrent + 1, thread_name_prefix="adaptive-rt-infer")
        self.log("starting", pool=self.pool_path, pid=os.getpid())
        self.rt = await loop.run_in_executor(None, self._open_runtime)
        servers = []
        if self.socket_path:
            if os.path.lexists(self.socket_path):
                if not stat.S_ISSOCK(os.lstat(self.socket_path).st_mode):
                    raise ValueError(f"{self.socket_path} exists and is not a socket: not replacing it")
                os.unlink(self.socket_path)   # a stale socket of an earlier run
            old = os.umask(0o777 & ~self.socket_mode)
            try:
                servers.append(await asyncio.start_unix_server(self._unix_conn, self.socket_path,
                                                               limit=self.limits.max_header + FRAME.size))
            finally:
                os.umask(old)
            os.chmod(self.socket_path, self.socket_mode)
            self.log("listening", transport="unix", path=self.socket_path, mode=oct(self.socket_mode))
        if self.http:
            host, port = self.http
            if not is_loopback(host):
                self.log("remote_access", level="warn", host=host,
                         message="listening beyond loopback: anyone who can reach this address can use the model")
            srv = await asyncio.start_server(self._http_conn, host, port, limit=self.limits.max_header)
            servers.append(srv)
            self.http_port = srv.sockets[0].getsockname()[1]
            self.log("listening", transport="http", host=host, port=self.http_port)
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(self.reload()))
        wd = loop.create_task(self._watchdog())
        sd_notify("READY=1")
        self.log("ready", entries=len(self.rt.entries), active=self.rt.active)
        if on_ready:
            on_ready(self)
        await stop.wait()

        # graceful stop: no new connections or requests, in-flight ones finish
        sd_notify("STOPPING=1")
        self._draining = True
        self.log("stopping", inflight=sum(self._inflight.values()))
        for s in servers:
            s.close()
        t_end = time.monotonic() + self.limits.drain_s
        while (sum(self._inflight.values()) or self._waiting) and time.monotonic() < t_end:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)   # let the last responses be written
        for w in list(self._conns):
            w.close()
        wd.cancel()
        left = sum(self._inflight.values())
        if self.socket_path and os.path.lexists(self.socket_path):
            os.unlink(self.socket_path)
        await loop.run_in_executor(None, self.rt.close)
        self._exec.shutdown(wait=False)
        self.log("stopped", unfinished=left)
        return 0

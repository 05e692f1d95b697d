"""The HTTP transport (loopback by default): request parsing within the
daemon's limits, and the routes — ``POST /v1/infer`` (npy or JSON),
``GET /v1/status``, ``/healthz``, ``/readyz``, ``/metrics`` (Prometheus) and,
with ``--enable-admin``, ``POST /v1/reload``, ``/v1/pin``, ``/v1/unpin``."""
from __future__ import annotations

import asyncio
import json
import zlib

import h11
import numpy as np

from ..io.jsonio import strict_json
from .base import Busy, Transport, linger, send, timed
from .metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .protocol import ProtocolError, array_from_json, array_from_npy, npy_bytes

__all__ = ["HttpTransport", "Refused", "STATUS", "parse_head"]

STATUS = {"bad_request": 400, "too_large": 413, "busy": 503, "timeout": 408, "unavailable": 503,
          "non_finite": 500, "internal": 500}
# HTTP refusals by status: their error kind (any other 4xx/5xx: bad_request)
KIND = {403: "forbidden", 404: "not_found", 405: "method_not_allowed", 408: "timeout", 413: "too_large",
        415: "unsupported_media_type", 431: "too_large", 501: "not_implemented", 503: "busy"}
REASON = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
          408: "Request Timeout", 409: "Conflict", 411: "Length Required", 413: "Payload Too Large",
          415: "Unsupported Media Type", 431: "Request Header Fields Too Large", 500: "Internal Server Error",
          501: "Not Implemented", 503: "Service Unavailable"}
ROUTES = {"/v1/infer": "POST", "/v1/status": "GET", "/healthz": "GET", "/readyz": "GET",
          "/metrics": "GET", "/v1/reload": "POST", "/v1/pin": "POST", "/v1/unpin": "POST"}
ADMIN = ("/v1/reload", "/v1/pin", "/v1/unpin")


class Refused(Exception):
    """An HTTP-level refusal (status, message, close the connection?, extra headers)."""

    def __init__(self, status: int, message: str, close: bool = False, headers: dict | None = None):
        super().__init__(message)
        self.status, self.close, self.headers = status, close, headers or {}



def parse_head(head: bytes) -> tuple[str, str, str, dict[str, str]]:
    """(method, target, version, headers by lower-case name) of a request
    head ending in CRLF CRLF, parsed by h11 (the request line, header names
    and values, Content-Length, Host); Refused (400/501) for anything
    malformed. Stricter than h11 where it is lenient: lines must end in
    CRLF (h11 also takes a bare LF), and a second Content-Type or
    Transfer-Encoding is refused. The body is read by the caller, within
    the daemon's limits."""
    bare = head.replace(b"\r\n", b"")
    if b"\n" in bare or b"\r" in bare:
        raise Refused(400, "bare CR or LF in the request head (lines end in CRLF)", True)
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=len(head) + 1)
    try:
        conn.receive_data(bytes(head))
        ev = conn.next_event()
    except h11.RemoteProtocolError as e:
        raise Refused(400, f"malformed request head: {e}", True) from None
    if not isinstance(ev, h11.Request):   # h11 wants more bytes: the head ended early
        raise Refused(400, "malformed request head", True)
    if not ev.http_version.startswith(b"1."):
        raise Refused(400, f"malformed request line: HTTP/{ev.http_version.decode('latin1')} (HTTP/1.x only)", True)
    headers: dict[str, str] = {}
    for k, v in ev.headers:
        k = k.decode("latin1")
        if k in headers and k in ("transfer-encoding", "content-type"):
            raise Refused(400, f"duplicate {k} header", True)
        headers[k] = v.decode("latin1")
    if "transfer-encoding" in headers:
        raise Refused(501, "transfer-encoding is not supported: send Content-Length", True)
    cl = headers.get("content-length")
    if cl is not None and len(cl) > 12:
        raise Refused(400, "invalid Content-Length", True)
    return (ev.method.decode("latin1"), ev.target.decode("latin1"), "HTTP/" + ev.http_version.decode("latin1"),
            headers)


class HttpTransport(Transport):
    """``asyncio.start_server(HttpTransport(daemon), host, port)``."""

    name = "http"

    async def refuse_connection(self, writer, message: str) -> None:
        await self.reply(writer, 503, {"error": "busy", "message": message}, close=True)

    async def serve_one(self, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        lim = self.daemon.limits
        try:
            head += await timed(reader.readuntil(b"\r\n\r\n"), lim.header_timeout_s)
        except asyncio.TimeoutError:
            self.daemon.refuse("http", "timeout", "request head not received in time")
            await self.reply(writer, 408, {"error": "timeout", "message": "request head not received in time"},
                             close=True)
            return False
        except asyncio.LimitOverrunError:
            self.daemon.refuse("http", "too_large", "request head over the limit")
            await self.reply(writer, 431, {"error": "too_large", "message": f"request head over {lim.max_header} bytes"},
                             close=True)
            return False
        except asyncio.IncompleteReadError as e:
            if e.partial.strip():
                self.daemon.refuse("http", "bad_request", "connection closed mid-head")
            return False
        except ConnectionError:
            return False
        except ValueError:   # the stream's own limit
            self.daemon.refuse("http", "too_large", "request head over the limit")
            await self.reply(writer, 431, {"error": "too_large"}, close=True)
            return False
        try:
            keep = await self.request(head, reader, writer)
        except Refused as r:
            kind = KIND.get(r.status, "bad_request")
            self.daemon.refuse("http", kind, str(r))     # not_found counts in errors_total too
            await self.reply(writer, r.status, {"error": kind, "message": str(r)}, headers=r.headers, close=r.close)
            keep = not r.close
            if r.close:
                await linger(reader, writer, lim.max_body, lim.body_timeout_s)
        return keep

    async def reply(self, writer, status: int, body, content_type: str = "application/json",
                          headers: dict | None = None, close: bool = False) -> None:
        if not isinstance(body, (bytes, bytearray)):
            body = json.dumps(body, default=str, allow_nan=False).encode()   # never NaN/Infinity: not JSON
        if content_type.startswith(("application/json", "text/plain")) and "charset" not in content_type:
            content_type += "; charset=utf-8"
        lines = [f"HTTP/1.1 {status} {REASON.get(status, 'Status')}", f"Content-Type: {content_type}",
                 f"Content-Length: {len(body)}", "Connection: close" if close else "Connection: keep-alive"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        # a HEAD request gets the headers a GET would, without the body
        data = b"" if getattr(writer, "_art_head", False) else bytes(body)
        await send(writer, ("\r\n".join(lines) + "\r\n\r\n").encode("latin1") + data, self.daemon.limits.body_timeout_s)

    async def request(self, head: bytes, reader, writer) -> bool:
        lim = self.daemon.limits
        method, target, version, headers = parse_head(head)
        writer._art_head = method == "HEAD"
        keep = headers.get("connection", "").lower() != "close" and version == "HTTP/1.1"
        n = int(headers.get("content-length", "0"))     # parse_head checked it: ASCII digits, at most 12
        # (no Content-Length and no Transfer-Encoding: an empty body, RFC 9112 6.3)
        if n > lim.max_body:
            raise Refused(413, f"body of {n} bytes is over the limit of {lim.max_body}", True)
        try:   # the body's bytes count against the daemon-wide budget until the answer is sent
            held = self.daemon.budget.reserve(n)
        except Busy as e:
            raise Refused(503, str(e), True, {"Retry-After": "1"}) from None
        try:
            return await self.handle(method, target, headers, keep, n, reader, writer, held)
        finally:
            held.release()

    async def parse(self, size: int, fn, *args):
        """``fn(*args)`` — on a worker thread when the body is over
        ``offload_bytes``, so parsing it does not stall the event loop."""
        if size <= self.daemon.limits.offload_bytes:
            return fn(*args)
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    async def handle(self, method: str, target: str, headers: dict, keep: bool, n: int, reader, writer,
                     held) -> bool:
        lim = self.daemon.limits
        body = b""
        if n:
            try:
                body = await timed(reader.readexactly(n), lim.body_timeout_s)
            except asyncio.TimeoutError:
                raise Refused(408, "body not received in time", True) from None
            except asyncio.IncompleteReadError:
                raise Refused(400, "connection closed mid-body", True) from None
        enc = headers.get("content-encoding", "identity").lower()
        if enc in ("gzip", "deflate"):
            body = await self.parse(n, self.inflate, body, enc)
            try:
                held.extend(len(body))  # the inflated copy counts too, released with the request
            except Busy as e:
                raise Refused(503, str(e), True, {"Retry-After": "1"}) from None
        elif enc != "identity":
            raise Refused(415, f"content-encoding {enc!r} is not supported (gzip, deflate)")
        path = target.split("?", 1)[0]
        if path == "/v2" or path.startswith("/v2/"):
            return await self.v2(method, path, headers, body, writer, keep)
        if path in ADMIN and not self.daemon.enable_admin:
            raise Refused(404, f"{path} is an admin route: start the daemon with --enable-admin to use it")
        if path not in ROUTES:
            raise Refused(404, f"no route {path[:100]!r}")
        allowed = ROUTES[path] + (", HEAD" if ROUTES[path] == "GET" else "")
        if method != ROUTES[path] and not (method == "HEAD" and ROUTES[path] == "GET"):
            raise Refused(405, f"{path} takes {allowed}", headers={"Allow": allowed})
        if path in ADMIN:
            # not from a web page: a browser sends Origin with cross-site requests, and a page cannot send
            # application/json cross-site without a preflight the daemon never answers
            if "origin" in headers:
                raise Refused(403, "admin routes refuse requests that carry an Origin header (browser requests)")
            ctype = headers.get("content-type", "").split(";")[0].strip().lower()
            if ctype != "application/json":
                raise Refused(415, "admin routes take Content-Type: application/json")
        if path == "/v1/infer":
            ctype = headers.get("content-type", "").split(";")[0].strip().lower()
            try:
                if ctype == "application/x-npy":
                    x = array_from_npy(body)
                elif ctype == "application/json":
                    x = await self.parse(len(body), array_from_json, body, lim.max_json_depth)
                else:
                    raise Refused(415, "send application/x-npy or application/json")
                y, entry, ms = await self.daemon.infer(x)
            except ProtocolError as e:
                self.daemon.refuse("http", e.kind, str(e))
                await self.reply(writer, STATUS.get(e.kind, 400), {"error": e.kind, "message": str(e)},
                                       close=not keep)
                return keep
            self.daemon.metrics.request("http", "ok")
            if "application/x-npy" in headers.get("accept", ""):
                await self.reply(writer, 200, npy_bytes(np.asarray(y, np.float32)), "application/x-npy",
                                       {"X-Entry": entry, "X-Latency-Ms": f"{ms:.4f}"}, close=not keep)
            else:
                await self.reply(writer, 200, {"entry": entry, "latency_ms": ms, "outputs": y.tolist()},
                                       close=not keep)
        elif path == "/v1/status":
            self.daemon.metrics.request("http", "ok")
            await self.reply(writer, 200, self.daemon.status(), close=not keep)
        elif path == "/healthz":
            self.daemon.metrics.request("http", "ok")
            await self.reply(writer, 200, b"ok\n", "text/plain", close=not keep)
        elif path == "/readyz":
            ready = self.daemon.rt is not None and not self.daemon.draining
            self.daemon.metrics.request("http", "ok" if ready else "unavailable")
            await self.reply(writer, 200 if ready else 503, b"ready\n" if ready else b"not ready\n",
                                   "text/plain", close=not keep)
        elif path == "/metrics":
            self.daemon.metrics.request("http", "ok")
            await self.reply(writer, 200, self.daemon.render_metrics().encode(), METRICS_CONTENT_TYPE,
                                   close=not keep)
        elif path in ("/v1/pin", "/v1/unpin"):
            rt = self.daemon.rt
            try:
                if path == "/v1/pin":
                    d = strict_json(body.decode("utf-8", "replace"), "pin body", lim.max_json_depth, ProtocolError)
                    if not isinstance(d, dict) or not isinstance(d.get("entry"), str):
                        raise ProtocolError('pin body must be {"entry": ID} (optionally "threads": N)')
                    rt.pin(d["entry"], d.get("threads"))
                else:
                    rt.unpin()
            except (ProtocolError, ValueError) as e:
                raise Refused(400, str(e)) from None
            self.daemon.metrics.request("http", "ok")
            await self.reply(writer, 200, {"ok": True, "active": rt.active, "pinned": rt.pinned},
                                   close=not keep)
        elif path == "/v1/reload":
            ok, what = await self.daemon.reload()
            self.daemon.metrics.request("http", "ok" if ok else "reload_failed")
            if not ok:
                self.daemon.metrics.error("reload_failed")
            await self.reply(writer, 200 if ok else 409, {"ok": ok, ("sha256" if ok else "error"): what},
                                   close=not keep)
        return keep

    async def v2(self, method: str, path: str, headers: dict, body: bytes, writer, keep: bool) -> bool:
        """The Open Inference Protocol routes (daemon/kserve.py); errors answer {"error": message}."""
        from . import kserve
        d = self.daemon
        route = kserve.match(path)

        async def fail(status: int, kind: str, message: str) -> bool:
            d.refuse("http", kind, message)
            await self.reply(writer, status, {"error": message}, close=not keep)
            return keep
        if route is None:
            return await fail(404, "not_found", f"no route {path[:100]!r}")
        what, model, version = route
        want = "POST" if what == "infer" else "GET"
        if method != want and not (want == "GET" and method == "HEAD"):
            allowed = want + (", HEAD" if want == "GET" else "")
            d.refuse("http", "method_not_allowed", path)
            await self.reply(writer, 405, {"error": f"{path} takes {allowed}"}, headers={"Allow": allowed},
                             close=not keep)
            return keep
        name = kserve.model_name(d.pool_path)
        if model is not None and (model != name or version not in (None, kserve.VERSION)):
            return await fail(404, "not_found", f"unknown model {model[:100]!r}"
                              + (f" version {version[:20]!r}" if version else "")
                              + f"; this daemon serves {name!r} version {kserve.VERSION}")
        ready = d.rt is not None and not d.draining
        if what in ("live", "ready", "model_ready"):
            ok = what == "live" or ready
            d.metrics.request("http", "ok" if ok else "unavailable")
            await self.reply(writer, 200 if ok else 503, {"live": True} if what == "live" else {"ready": ok},
                             close=not keep)
            return keep
        if what == "server":
            from .. import __version__
            d.metrics.request("http", "ok")
            await self.reply(writer, 200, {"name": "adaptive-rt", "version": __version__,
                                           "extensions": ["binary_tensor_data"]}, close=not keep)
            return keep
        if what == "model":
            d.metrics.request("http", "ok")
            await self.reply(writer, 200, kserve.metadata(d), close=not keep)
            return keep
        try:
            x, req, binary = await self.parse(len(body), kserve.parse_infer, body,
                                              headers.get("inference-header-content-length"), d.limits.max_json_depth)
            y, entry, ms = await d.infer(x)
        except ProtocolError as e:
            return await fail(STATUS.get(e.kind, 400), e.kind, str(e))
        data, extra = kserve.infer_response(d, req, y, entry, ms, binary)
        d.metrics.request("http", "ok")
        await self.reply(writer, 200, data, "application/octet-stream" if binary else "application/json",
                         headers=extra, close=not keep)
        return keep

    def inflate(self, body: bytes, enc: str) -> bytes:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS if enc == "gzip" else zlib.MAX_WBITS)
        try:
            out = d.decompress(body, self.daemon.limits.max_body + 1)
        except zlib.error as e:
            raise Refused(400, f"body is not valid {enc}: {e}") from None
        if len(out) > self.daemon.limits.max_body or d.unconsumed_tail:
            raise Refused(413, f"decompressed body is over the limit of {self.daemon.limits.max_body} bytes")
        if not d.eof:
            raise Refused(400, f"body is a truncated {enc} stream")
        if d.unused_data:
            raise Refused(400, f"body has {len(d.unused_data)} bytes after the end of its {enc} stream")
        return out

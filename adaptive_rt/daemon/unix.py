"""The Unix-socket transport: length-prefixed frames of a JSON header and a
raw tensor payload (``protocol.py``), one connection handler per client."""
from __future__ import annotations

import asyncio
import numpy as np

from .base import Busy, Transport, linger, send, timed
from .shm import offer
from .protocol import FRAME, ProtocolError, pack_frame, parse_frame_prefix, parse_header, tensor_from_payload

__all__ = ["UnixTransport"]


class UnixTransport(Transport):
    """``asyncio.start_unix_server(UnixTransport(daemon), path)``."""

    name = "unix"

    async def refuse_connection(self, writer, message: str) -> None:
        await send(writer, pack_frame({"ok": False, "error": "busy", "message": message}),
                   self.daemon.limits.body_timeout_s)

    async def serve_one(self, prefix: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        lim = self.daemon.limits
        try:
            prefix += await timed(reader.readexactly(FRAME.size - 1), lim.header_timeout_s)
            h, p = parse_frame_prefix(prefix, lim.max_header, lim.max_body)
            try:   # the frame's bytes count against the daemon-wide budget until it is answered
                held = self.daemon.budget.reserve(h + p)
            except Busy as e:
                raise ProtocolError(str(e), "busy") from None
            try:
                raw = await timed(reader.readexactly(h), lim.header_timeout_s)
                payload = await timed(reader.readexactly(p), lim.body_timeout_s) if p else b""
            except BaseException:
                held.release()
                raise
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError, ProtocolError) as e:
            # the stream cannot be resynchronised: answer and close
            kind, msg = ((e.kind, str(e)) if isinstance(e, ProtocolError) else
                         ("timeout", "frame not received in time") if isinstance(e, asyncio.TimeoutError)
                         else ("bad_request", "truncated frame"))
            self.daemon.refuse("unix", kind, msg)
            await send(writer, pack_frame({"ok": False, "error": kind, "message": msg}), lim.body_timeout_s)
            await linger(reader, writer, lim.max_body, lim.body_timeout_s)
            return False
        try:
            answer = await self.request(raw, payload, writer)
            if answer is None:      # handed to a shared-memory thread (shm.py)
                return False
            await send(writer, answer, lim.body_timeout_s)
        finally:
            held.release()
        return True

    async def request(self, raw: bytes, payload: bytes, writer=None) -> bytes | None:
        rid = None
        try:
            header = parse_header(raw, self.daemon.limits.max_json_depth)
            rid = header.get("id")
            if rid is not None and not isinstance(rid, (int, str)):
                rid = None
            op = header.get("op")
            if op == "infer":
                x = tensor_from_payload(header, payload)
                y, entry, ms = await self.daemon.infer(x)
                y = np.ascontiguousarray(y, "<f4")
                self.daemon.metrics.request("unix", "ok")
                return pack_frame({"ok": True, "id": rid, "entry": entry, "dtype": "float32",
                                   "shape": list(y.shape), "latency_ms": ms}, y.tobytes())
            if op == "status":
                self.daemon.metrics.request("unix", "ok")
                return pack_frame({"ok": True, "id": rid, "status": self.daemon.status()})
            if op == "shm" and writer is not None:
                return await offer(self.daemon, header, writer)
            if op == "ping":
                self.daemon.metrics.request("unix", "ok")
                return pack_frame({"ok": True, "id": rid})
            raise ProtocolError(f"unknown op {op!r}; use infer, shm, status or ping")
        except ProtocolError as e:
            self.daemon.refuse("unix", e.kind, str(e))
            return pack_frame({"ok": False, "id": rid, "error": e.kind, "message": str(e)})
        except Exception as e:   # pragma: no cover - a bug, not the client's fault: keep serving
            self.daemon.refuse("unix", "internal", repr(e))
            self.daemon.log("internal_error", level="error", error=repr(e))
            return pack_frame({"ok": False, "id": rid, "error": "internal", "message": "internal error"})

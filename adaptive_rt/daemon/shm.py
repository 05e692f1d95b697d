"""Shared-memory tensors over the Unix socket: the daemon side.

A client asks for a mapping with the frame ``{"op": "shm", "images": N}``
(N images of the pool's input shape at most per request). The daemon
creates a memfd sized for N input images and N rows of logits, seals its
size (``F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL``: no process holding the
fd can truncate it under the daemon's mapping, which would be a SIGBUS) and
answers with a normal frame carrying the layout, the memfd attached
(``SCM_RIGHTS``)::

    {"ok": true, "shm": {"size": S, "input_offset": 64, "input_bytes": I,
     "output_offset": O, "output_bytes": B, "images": N,
     "input_shape": [H, W, C], "classes": K}}

From then on the connection carries only fixed records, and no tensor bytes:

    request  (16 bytes)  "<4sIQ"      b"ARS1", n, seq
        n = 0: one image [H, W, C] at input_offset; n >= 1: a batch [n, H, W, C]
    response (32 bytes)  "<4sIQIIfHH" b"ARS1", code, seq, rows, cols, ms, elen, mlen
        then elen bytes of entry id and mlen bytes of message (UTF-8)
        code 0: logits [rows, cols] float32 at output_offset (rows 0: one image, [cols])
        code 1..7: an error kind of protocol.ERROR_KINDS; the message names the problem
        code 255 (``reconnect``): a reload changed the input shape or classes;
            this mapping no longer fits: open a new one

The engine reads the input in place from the mapping and the logits are
written into it. Every request is checked against the layout fixed at the
handshake (n within capacity, the pool's shape unchanged); nothing the
client writes into the mapping is read as metadata, so a client can only
spoil its own answers. Each connection has its own memfd (no client can see
another's data) and its own thread, which blocks in ``recv`` (no GIL held):
a client that dies closes the socket, the thread ends and unmaps. The
mapping's bytes are held against ``--max-buffered`` while it lives.
"""
from __future__ import annotations

import asyncio
import fcntl
import mmap
import os
import socket
import struct
import threading
import time

import numpy as np

from ..engine import ShmStatus
from .base import Busy
from .protocol import (MAX_MESSAGE, RECONNECT, REQ, RESP, SHM_MAGIC, ProtocolError, error_code, pack_frame,
                       recv_exactly)

__all__ = ["SHM_MAGIC", "REQ", "RESP", "RECONNECT", "HEADER_BYTES", "layout", "ShmConnection", "offer"]

HEADER_BYTES = 64        # reserved at the start of the mapping (alignment; unused)


def _round64(n: int) -> int:
    return (n + 63) & ~63


def layout(images: int, input_shape: tuple[int, ...], classes: int) -> dict:
    image_bytes = 4 * int(np.prod(input_shape))
    in_bytes = images * image_bytes
    out_off = _round64(HEADER_BYTES + in_bytes)
    out_bytes = images * classes * 4
    return {"size": _round64(out_off + out_bytes), "input_offset": HEADER_BYTES, "input_bytes": in_bytes,
            "output_offset": out_off, "output_bytes": out_bytes, "images": images,
            "input_shape": list(input_shape), "classes": classes}


def _memfd(size: int) -> int:
    fd = os.memfd_create("adaptive-rt-shm", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        os.ftruncate(fd, size)
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL)
    except BaseException:
        os.close(fd)
        raise
    return fd


async def offer(daemon, header: dict, writer) -> bytes | None:
    """Answer ``{"op": "shm"}`` on an asyncio Unix connection: an error frame
    (the connection stays a frame connection), or None once the connection
    has been handed to a :class:`ShmConnection` thread with the memfd sent."""
    images = header.get("images", 1)
    if not isinstance(images, int) or isinstance(images, bool) or images < 1:
        raise ProtocolError("shm: images must be a positive integer")
    if not hasattr(os, "memfd_create"):
        raise ProtocolError("shm: shared memory is not supported on this platform; use frames")
    rt = daemon.rt
    lim = daemon.limits
    classes = rt.pool.space.num_classes
    lay = layout(images, rt.input_shape, classes)
    if lay["input_bytes"] > lim.max_body:
        raise ProtocolError(f"shm: {images} images need {lay['input_bytes']} bytes, over the limit of "
                            f"{lim.max_body}", "too_large")
    try:
        held = daemon.budget.reserve(lay["size"])
    except Busy as e:
        raise ProtocolError(str(e), "busy") from None
    try:
        fd = _memfd(lay["size"])
        try:
            mm = mmap.mmap(fd, lay["size"], mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
            # no awaits from here on: asyncio must not read this connection's next bytes
            writer.transport.pause_reading()
            raw = writer.get_extra_info("socket")
            sock = socket.socket(fileno=os.dup(raw.fileno()))
            conn = ShmConnection(daemon, sock, mm, lay, held, asyncio.get_running_loop())
            try:
                data = pack_frame({"ok": True, "shm": lay})
                sent = socket.send_fds(sock, [data], [fd])
                if sent < len(data):
                    sock.setblocking(True)
                    sock.settimeout(lim.body_timeout_s)
                    sock.sendall(data[sent:])
            except OSError:
                conn.release()
                raise
        finally:
            os.close(fd)       # the mapping and the client's copy keep the memory alive
    except BaseException:
        if held.n:
            held.release()
        raise
    writer.transport.abort()   # asyncio lets go of its fd; the connection lives on in `sock`
    conn.start()
    return None


class ShmConnection:
    """One shared-memory client: a thread serving its request records."""

    def __init__(self, daemon, sock: socket.socket, mm: mmap.mmap, lay: dict, held, loop):
        self.daemon, self.sock, self.mm, self.lay, self.held, self.loop = daemon, sock, mm, lay, held, loop
        self.thread: threading.Thread | None = None
        self._entry_bytes: dict[str, bytes] = {}
        shape = tuple(lay["input_shape"])
        self.image_floats = int(np.prod(shape))
        self.input = np.frombuffer(mm, np.float32, lay["input_bytes"] // 4, lay["input_offset"])
        self.output = np.frombuffer(mm, np.float32, lay["output_bytes"] // 4, lay["output_offset"])

    def start(self) -> None:
        d = self.daemon
        d.conns.add(self)
        self.thread = threading.Thread(target=self._run, name="adaptive-rt-shm", daemon=True)
        self.thread.start()

    def close(self) -> None:
        """Wake the thread (from any thread): it ends and unmaps."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def release(self) -> None:
        self.input = self.output = None
        try:
            self.mm.close()
        except BufferError:   # pragma: no cover - a view escaped; the mapping goes with the process
            pass
        self.sock.close()
        try:   # the byte budget belongs to the event loop's thread: give the bytes back there
            self.loop.call_soon_threadsafe(self.held.release)
        except RuntimeError:   # the loop has closed: the daemon has stopped
            self.held.release()

    def _run(self) -> None:
        d = self.daemon
        buf = bytearray(REQ.size)
        view = memoryview(buf)
        try:
            self.sock.settimeout(d.limits.idle_timeout_s)
            while True:
                fast = None if d.draining else self._native()
                if fast is None:   # another backend, or draining: one request at a time in Python
                    if not recv_exactly(self.sock, view):
                        return
                    if not self._answer(*REQ.unpack(buf)):
                        return
                    continue
                status, n, seq, magic = self._loop(*fast)
                if status in (ShmStatus.CLOSED, ShmStatus.IDLE):
                    return
                if status == ShmStatus.PENDING and not self._answer(magic, n, seq):
                    return
        except (OSError, ValueError):     # reset, timed out, or closed by the daemon's stop
            pass
        finally:
            d.conns.discard(self)
            self.release()

    def _native(self):
        rt = self.daemon.rt
        gen = int(rt.generation[0])      # before the plan: a switch after this read brings the loop back
        act = rt.native_active()
        return None if act is None else (rt, gen, act)

    def _loop(self, rt, gen: int, act) -> tuple[int, int, int, bytes]:
        """Requests served by the C++ loop (csrc/serve/shm_loop.cc) until it
        needs Python; their latencies are accounted here in one go."""
        d = self.daemon
        engine, plan, threads = act
        entry = plan.entry.id
        with d._lock:        # counted in flight: a reload retires rt only once the loop is back
            if d.rt is not rt:
                return ShmStatus.CHANGED, 0, 0, SHM_MAGIC
            d._holders[rt] = d._holders.get(rt, 0) + 1
        try:
            status, n, seq, magic, ms, images, _ = engine.serve_shm(
                plan, self.sock.fileno(), threads, self.input, self.output, rt.generation, gen, d._run_gate,
                report_s=0.01, max_records=256, idle_s=d.limits.idle_timeout_s, check_finite=rt.check_finite,
                max_queue=d.limits.max_queue)
        finally:
            with d._lock:
                d._holders[rt] -= 1
        k = len(ms)
        if k:
            rt.record_many(entry, ms, images)
            d.metrics.latency_many(entry, ms)
            with d._lock:
                d.completed += k
            ok = k - (status == ShmStatus.NON_FINITE)
            if ok:
                d.metrics.request("shm", "ok", ok)
        if status == ShmStatus.BUSY:
            msg = f"busy: {d.limits.max_concurrent} running and {d._run_gate.waiting} queued"
            d.refuse("shm", "busy", msg)
            self._reply(error_code("busy"), seq, message=msg)
        if status == ShmStatus.NON_FINITE:
            msg = f"entry {entry} produced non-finite outputs (NaN or infinity) for this input"
            d.refuse("shm", "non_finite", msg)
            self._reply(error_code("non_finite"), seq, message=msg)
        return status, n, seq, struct.pack("<I", magic)

    def _answer(self, magic: bytes, n: int, seq: int) -> bool:
        """One request answered in Python; False: close the connection."""
        if magic != SHM_MAGIC:
            self.daemon.refuse("shm", "bad_request", f"bad record magic {magic!r}")
            self._reply(error_code("bad_request"), seq,
                        message=f"bad record magic {magic!r} (expected {SHM_MAGIC!r}): closing")
            return False
        self._reply(*self._serve(n, seq))
        return True

    def _serve(self, n: int, seq: int) -> tuple:
        d = self.daemon
        lay = self.lay
        rt = d.rt
        try:
            if tuple(rt.input_shape) != tuple(lay["input_shape"]) or rt.pool.space.num_classes != lay["classes"]:
                d.refuse("shm", "reconnect", "pool reloaded with another shape")
                return (RECONNECT, seq, 0, 0, 0.0, "", "the pool was reloaded with another input shape or "
                        "class count: this mapping no longer fits; open a new one")
            if n > lay["images"]:
                raise ProtocolError(f"{n} images requested; this mapping holds {lay['images']}", "too_large")
            shape = tuple(lay["input_shape"]) if n == 0 else (n, *lay["input_shape"])
            x = self.input[:self.image_floats * max(n, 1)].reshape(shape)
            y, entry, ms = d.infer_blocking(x)
            y = np.asarray(y, np.float32)
            self.output[:y.size] = y.reshape(-1)
            d.metrics.request("shm", "ok")
            return (0, seq, 0 if n == 0 else y.shape[0], y.shape[-1], ms, entry, "")
        except ProtocolError as e:
            d.refuse("shm", e.kind, str(e))
            return (error_code(e.kind), seq, 0, 0, 0.0, "", str(e))
        except Exception as e:   # pragma: no cover - a bug, not the client's fault: keep serving
            d.refuse("shm", "internal", repr(e))
            d.log("internal_error", level="error", error=repr(e))
            return (error_code("internal"), seq, 0, 0, 0.0, "", "internal error")

    def _reply(self, code: int, seq: int, rows: int = 0, cols: int = 0, ms: float = 0.0, entry: str = "",
               message: str = "") -> None:
        e = self._entry_bytes.get(entry)
        if e is None:
            e = self._entry_bytes[entry] = entry.encode()[:255]
        m = message.encode()[:MAX_MESSAGE]
        self.sock.sendall(RESP.pack(SHM_MAGIC, code, seq, rows, cols, ms, len(e), len(m)) + e + m)


def wait_closed(conns, timeout: float) -> None:
    """Join the threads of ``conns`` (after :meth:`ShmConnection.close`), at most ``timeout`` s."""
    end = time.monotonic() + timeout
    for c in conns:
        if c.thread is not None:
            c.thread.join(max(0.0, end - time.monotonic()))

"""``adaptive_rt.Client``: numpy in, (numpy, entry id) out, over the
daemon's Unix socket or its HTTP endpoint, with timeouts."""
from __future__ import annotations

import http.client
import json
import mmap
import os
import socket

import numpy as np

from .protocol import (FRAME, MAGIC, MAX_MESSAGE, REQ, RESP, SHM_MAGIC, array_from_npy,
                       error_kind, npy_bytes, recv_exactly)

__all__ = ["Client", "DaemonError"]


class DaemonError(RuntimeError):
    """The daemon refused or failed a request: ``kind`` is its error kind
    (bad_request, too_large, busy, timeout, unavailable, internal, ...)."""

    def __init__(self, kind: str, message: str, status: int | None = None):
        super().__init__(f"{kind}: {message}")
        self.kind, self.status = kind, status


class _Shm:
    """A shared-memory channel (daemon/shm.py): its own connection and mapping."""

    def __init__(self, path: str, images: int, timeout: float):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.mm = None
        try:
            self.sock.settimeout(timeout)
            self.sock.connect(path)
            h = json.dumps({"op": "shm", "images": images}, separators=(",", ":")).encode()
            self.sock.sendall(FRAME.pack(MAGIC, len(h), 0) + h)
            data, fds, _, _ = socket.recv_fds(self.sock, FRAME.size, 1)
            try:
                data += _recv_exactly(self.sock, FRAME.size - len(data)) if len(data) < FRAME.size else b""
                magic, hn, pn = FRAME.unpack(data)
                if magic != MAGIC:
                    raise ConnectionError("bad frame from daemon")
                head = json.loads(_recv_exactly(self.sock, hn))
                if pn:
                    _recv_exactly(self.sock, pn)
                if not head.get("ok"):
                    raise DaemonError(head.get("error", "internal"), head.get("message", ""))
                if len(fds) != 1:
                    raise ConnectionError("the daemon's shm answer carried no file descriptor")
                lay = self.layout = head["shm"]
                if os.fstat(fds[0]).st_size < lay["size"] or lay["input_offset"] + lay["input_bytes"] > lay["size"] \
                        or lay["output_offset"] + lay["output_bytes"] > lay["size"]:
                    raise ConnectionError("the daemon's shared memory is smaller than its layout says")
                self.mm = mmap.mmap(fds[0], lay["size"], mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
            finally:
                for fd in fds:
                    os.close(fd)
        except BaseException:
            self.close()
            raise
        self.images = lay["images"]
        self.shape = tuple(lay["input_shape"])
        self.input = np.frombuffer(self.mm, np.float32, lay["input_bytes"] // 4, lay["input_offset"])
        self.output = np.frombuffer(self.mm, np.float32, lay["output_bytes"] // 4, lay["output_offset"])
        self.seq = 0
        self._resp = bytearray(RESP.size + 256 + MAX_MESSAGE)
        self._view = memoryview(self._resp)
        self._one = self.input[:int(np.prod(self.shape))].reshape(self.shape)
        self._entries: dict[bytes, str] = {}

    def fits(self, x: np.ndarray) -> bool:
        return (x.shape == self.shape or (x.ndim == 4 and x.shape[1:] == self.shape
                                          and 1 <= x.shape[0] <= self.images))

    def infer(self, x: np.ndarray) -> tuple[np.ndarray, str]:
        if x.shape == self.shape:
            n = 0
            np.copyto(self._one, x)
        else:
            n = x.shape[0]
            self.input[:x.size] = x.reshape(-1)
        self.seq += 1
        sock = self.sock
        sock.sendall(REQ.pack(SHM_MAGIC, n, self.seq))
        buf, view = self._resp, self._view
        got = sock.recv_into(view)       # a Unix socket hands over the whole record at once, as a rule
        while got < RESP.size:
            if not got:
                raise ConnectionError("daemon closed the connection")
            k = sock.recv_into(view[got:])
            got = got + k if k else 0
        magic, code, seq, rows, cols, ms, elen, mlen = RESP.unpack_from(buf)
        need = RESP.size + elen + mlen
        if need > len(view):
            raise ConnectionError("bad shm response from daemon")
        if got < need:
            if not recv_exactly(sock, view[got:need]):
                raise ConnectionError("daemon closed the connection")
            got = need
        if magic != SHM_MAGIC or seq != self.seq or got != need:
            raise ConnectionError("bad shm response from daemon")
        if code:
            message = bytes(view[RESP.size + elen:need]).decode("utf-8", "replace")
            raise DaemonError(error_kind(code), message)
        eb = bytes(view[RESP.size:need])
        entry = self._entries.get(eb)
        if entry is None:
            entry = self._entries[eb] = eb.decode("utf-8", "replace")
        k = cols * (rows or 1)
        if k > self.output.size:
            raise ConnectionError("shm response larger than the mapping")
        y = self.output[:k].copy()
        return (y.reshape(rows, cols) if rows else y), entry

    def close(self) -> None:
        self.input = self.output = self._one = None
        if self.mm is not None:
            self.mm.close()
            self.mm = None
        self.sock.close()


def _recv_exactly(sock: socket.socket, n: int) -> bytearray:
    buf = bytearray(n)
    if not recv_exactly(sock, memoryview(buf)):
        raise ConnectionError("daemon closed the connection")
    return buf


class Client:
    """``Client()`` (the default daemon socket: this user's, else the system
    service's ``/run/adaptive-rt/adaptive-rt.sock``), ``Client(unix=PATH)`` or
    ``Client(http="127.0.0.1:8470")``. One connection, reused; not for sharing
    between threads (make one each).

    Over the Unix socket, inferences use shared memory by default (``shm=True``):
    the input is written into a mapping shared with the daemon, which reads it
    in place and writes the logits back, so no tensor bytes cross the socket.
    Where the daemon cannot map (another platform, an older daemon, the
    buffered-bytes budget spent) or a batch is larger than the mapping allows,
    requests go as frames. A connection the daemon closed while idle is
    reopened once, transparently (inference is idempotent)."""

    def __init__(self, unix: str | None = None, http: str | None = None, timeout: float = 10.0,
                 shm: bool = True):
        if unix is not None and http is not None:
            raise ValueError("give one of unix= (socket path) or http= (host:port), not both")
        if unix is None and http is None:
            from .base import find_socket
            unix = find_socket()
        self.unix, self.timeout = unix, timeout
        self._sock: socket.socket | None = None
        self._shm: _Shm | None = None
        self._use_shm = bool(shm) and unix is not None and hasattr(socket, "recv_fds")
        self._http: http.client.HTTPConnection | None = None
        if http is not None:
            host, _, port = http.rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"http={http!r} must be host:port")
            self._hostport = (host.strip("[]"), int(port))

    # ------------------------------------------------------------------ unix
    def _recv_exactly(self, n: int) -> bytearray:
        return _recv_exactly(self._sock, n)

    def _frame(self, header: dict, payload: bytes | memoryview = b"") -> tuple[dict, bytearray]:
        if self._sock is None:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(self.timeout)
            s.connect(self.unix)
            self._sock = s
        try:
            h = json.dumps(header, separators=(",", ":")).encode()
            try:
                self._sock.sendall(FRAME.pack(MAGIC, len(h), len(payload)) + h)
                if len(payload):
                    self._sock.sendall(payload)      # the tensor's own buffer: no copy
            except (BrokenPipeError, ConnectionResetError):
                pass   # refused mid-send (e.g. too large): its error frame may be waiting; read it below
            magic, h, p = FRAME.unpack(self._recv_exactly(FRAME.size))
            if magic != MAGIC:
                raise ConnectionError("bad frame from daemon")
            head = json.loads(self._recv_exactly(h))
            body = self._recv_exactly(p) if p else b""
        except (OSError, ValueError):
            self.close()
            raise
        if not head.get("ok"):
            raise DaemonError(head.get("error", "internal"), head.get("message", ""))
        return head, body

    # ------------------------------------------------------------------ http
    def _request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        if self._http is None:
            self._http = http.client.HTTPConnection(*self._hostport, timeout=self.timeout)
        try:
            try:
                self._http.request(method, path, body=body, headers=headers or {})
            except (BrokenPipeError, ConnectionResetError):
                pass   # refused mid-send (e.g. too large): the answer may be waiting; read it below
            r = self._http.getresponse()
            data = r.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        if r.getheader("Connection", "").lower() == "close":
            self.close()
        if r.status != 200:
            try:
                d = json.loads(data)
                raise DaemonError(d.get("error", "http"), d.get("message", ""), r.status)
            except ValueError:
                raise DaemonError("http", data[:200].decode("latin1"), r.status) from None
        return r, data

    # ------------------------------------------------------------------ API
    def infer(self, x: np.ndarray) -> tuple[np.ndarray, str]:
        """Logits for ``x`` ([H, W, C] or [N, H, W, C] float32) and the entry that computed them."""
        ch = self._shm
        if ch is not None and type(x) is np.ndarray and x.dtype == np.float32 and x.shape == ch.shape:
            try:    # the common case, kept short: one image into the open mapping
                return ch.infer(x)
            except DaemonError as e:
                if e.kind != "reconnect":
                    raise
                self._close_shm()
            except (OSError, ValueError) as e:
                self._close_shm()
                if not isinstance(e, ConnectionError):
                    raise
        x = np.ascontiguousarray(x)
        if x.dtype != np.float32:
            raise TypeError(f"x must be float32, got {x.dtype}")
        if self.unix is not None:
            return self._retry(lambda: self._infer_unix(x))
        r, data = self._request("POST", "/v1/infer", npy_bytes(x),
                                {"Content-Type": "application/x-npy", "Accept": "application/x-npy"})
        return array_from_npy(data), r.getheader("X-Entry")

    def _channel(self, x: np.ndarray) -> "_Shm | None":
        """The shared-memory channel for ``x`` (opened, or reopened larger, on
        demand); None where ``x`` does not fit one or the daemon refuses one:
        frames are used instead (and answer a wrong shape with its error)."""
        ch = self._shm
        if ch is not None and ch.fits(x):
            return ch
        if x.ndim not in (3, 4) or (x.ndim == 4 and x.shape[0] == 0) or (ch is not None and ch.shape != x.shape[-3:]):
            return None
        images = max(x.shape[0] if x.ndim == 4 else 1, ch.images if ch is not None else 1)
        self._close_shm()
        try:
            self._shm = _Shm(self.unix, images, self.timeout)
        except DaemonError as e:
            # too large: frames answer it; busy: frames for now; any other refusal (an older daemon, no
            # memfd on this platform): frames from now on
            self._use_shm = e.kind in ("too_large", "busy")
            return None
        return self._shm if self._shm.fits(x) else None

    def _infer_unix(self, x: np.ndarray) -> tuple[np.ndarray, str]:
        ch = self._channel(x) if self._use_shm else None
        if ch is not None:
            try:
                return ch.infer(x)
            except DaemonError as e:
                if e.kind == "reconnect":
                    self._close_shm()
                raise
            except (OSError, ValueError):
                self._close_shm()
                raise
        head, body = self._frame({"op": "infer", "dtype": "float32", "shape": list(x.shape)},
                                 memoryview(x).cast("B"))
        return np.frombuffer(body, "<f4").reshape(head["shape"]), head["entry"]

    def _retry(self, call):
        """``call()``, once more on a fresh connection if the daemon had closed
        the old one (idle timeout, reload of a shm mapping)."""
        try:
            return call()
        except DaemonError as e:
            if e.kind != "reconnect":
                raise
        except (ConnectionError, BrokenPipeError):
            pass
        return call()

    def _close_shm(self) -> None:
        if self._shm is not None:
            self._shm.close()
            self._shm = None

    def status(self) -> dict:
        if self.unix is not None:
            return self._retry(lambda: self._frame({"op": "status"}))[0]["status"]
        return json.loads(self._request("GET", "/v1/status")[1])

    def close(self) -> None:
        self._close_shm()
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._http is not None:
            self._http.close()
            self._http = None

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

"""``adaptive_rt.Client``: numpy in, (numpy, entry id) out, over the
daemon's Unix socket or its HTTP endpoint, with timeouts."""
from __future__ import annotations

import http.client
import json
import socket

import numpy as np

from .protocol import FRAME, MAGIC, array_from_npy, npy_bytes

__all__ = ["Client", "DaemonError"]


class DaemonError(RuntimeError):
    """The daemon refused or failed a request: ``kind`` is its error kind
    (bad_request, too_large, busy, timeout, unavailable, internal, ...)."""

    def __init__(self, kind: str, message: str, status: int | None = None):
        super().__init__(f"{kind}: {message}")
        self.kind, self.status = kind, status


class Client:
    """``Client()`` (the default daemon socket: this user's, else the system
    service's ``/run/adaptive-rt/adaptive-rt.sock``), ``Client(unix=PATH)`` or
    ``Client(http="127.0.0.1:8470")``. One connection, reused; not for sharing
    between threads (make one each)."""

    def __init__(self, unix: str | None = None, http: str | None = None, timeout: float = 10.0):
        if unix is not None and http is not None:
            raise ValueError("give one of unix= (socket path) or http= (host:port), not both")
        if unix is None and http is None:
            from .base import find_socket
            unix = find_socket()
        self.unix, self.timeout = unix, timeout
        self._sock: socket.socket | None = None
        self._http: http.client.HTTPConnection | None = None
        if http is not None:
            host, _, port = http.rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"http={http!r} must be host:port")
            self._hostport = (host.strip("[]"), int(port))

    # ------------------------------------------------------------------ unix
    def _recv_exactly(self, n: int) -> bytearray:
        buf = bytearray(n)
        view, got = memoryview(buf), 0
        while got < n:
            k = self._sock.recv_into(view[got:])
            if not k:
                raise ConnectionError("daemon closed the connection")
            got += k
        return buf

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
        x = np.ascontiguousarray(x)
        if x.dtype != np.float32:
            raise TypeError(f"x must be float32, got {x.dtype}")
        if self.unix is not None:
            head, body = self._frame({"op": "infer", "dtype": "float32", "shape": list(x.shape)},
                                     memoryview(x).cast("B"))
            return np.frombuffer(body, "<f4").reshape(head["shape"]), head["entry"]
        r, data = self._request("POST", "/v1/infer", npy_bytes(x),
                                {"Content-Type": "application/x-npy", "Accept": "application/x-npy"})
        return array_from_npy(data), r.getheader("X-Entry")

    def status(self) -> dict:
        if self.unix is not None:
            return self._frame({"op": "status"})[0]["status"]
        return json.loads(self._request("GET", "/v1/status")[1])

    def close(self) -> None:
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

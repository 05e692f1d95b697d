"""Wire formats of the daemon: the Unix-socket frame, .npy bodies, JSON inputs.

Frame (both directions)::

    offset  size  field
    0       4     magic b"ART1"
    4       4     header length H, little-endian uint32 (<= max_header)
    8       8     payload length P, little-endian uint64 (<= max_body)
    16      H     header: UTF-8 JSON object
    16+H    P     payload: raw little-endian tensor bytes (C order)

Request headers: ``{"op": "infer", "dtype": "float32", "shape": [N, H, W, C]}``
(or ``[H, W, C]``), ``{"op": "status"}``, ``{"op": "ping"}``; an optional
``"id"`` is echoed. Responses: ``{"ok": true, "entry": "e3", "dtype":
"float32", "shape": [N, classes], "latency_ms": 0.2}`` with the logits as
payload, or ``{"ok": false, "error": KIND, "message": "..."}`` with none.
KIND is one of ``bad_request``, ``too_large``, ``busy``, ``timeout``,
``unavailable``, ``non_finite`` (the model produced NaN or infinity for this
input: there is no valid answer to send), ``internal``. A frame whose magic or lengths are wrong gets
an error frame and the connection is closed (the stream cannot be
resynchronised); any other bad request leaves the connection open.
"""
from __future__ import annotations

import ast
import math
import json
import struct

import numpy as np

from ..io.jsonio import strict_json

__all__ = ["MAGIC", "FRAME", "ProtocolError", "pack_frame", "parse_frame_prefix", "parse_header", "float32_from_json",
           "tensor_from_payload", "error_code", "error_kind", "recv_exactly", "npy_bytes", "array_from_npy",
           "array_from_json", "tensor_shape", "float32_bytes"]

MAGIC = b"ART1"
FRAME = struct.Struct("<4sIQ")
# shared-memory records (daemon/shm.py has the protocol)
SHM_MAGIC = b"ARS1"
REQ = struct.Struct("<4sIQ")              # magic, n (0: one image), seq
RESP = struct.Struct("<4sIQIIfHH")        # magic, code, seq, rows, cols, ms, entry length, message length
RECONNECT = 255                           # code: this mapping no longer fits the pool; open a new one
MAX_MESSAGE = 1024                        # bytes of an error message on a response record
ERROR_KINDS = ("bad_request", "too_large", "busy", "timeout", "unavailable", "non_finite", "internal")


def error_code(kind: str) -> int:
    """A shared-memory response's code for an error kind (1.. in ERROR_KINDS order; unknown: bad_request)."""
    return ERROR_KINDS.index(kind) + 1 if kind in ERROR_KINDS else 1


def error_kind(code: int) -> str:
    """The error kind of a non-zero shared-memory response code (error_code's inverse)."""
    if code == RECONNECT:
        return "reconnect"
    return ERROR_KINDS[code - 1] if 1 <= code <= len(ERROR_KINDS) else "internal"


def recv_exactly(sock, view: memoryview) -> bool:
    """Fill ``view`` from the stream socket ``sock``; False if the peer closed first."""
    got, n = 0, len(view)
    while got < n:
        k = sock.recv_into(view[got:])
        if not k:
            return False
        got += k
    return True


class ProtocolError(ValueError):
    """A request the daemon refuses: ``kind`` is the error kind (HTTP status
    follows from it), the message names the problem."""

    def __init__(self, message: str, kind: str = "bad_request"):
        super().__init__(message)
        self.kind = kind


def pack_frame(header: dict, payload: bytes | memoryview = b"") -> bytes:
    h = json.dumps(header, separators=(",", ":")).encode()
    return FRAME.pack(MAGIC, len(h), len(payload)) + h + bytes(payload)


def parse_frame_prefix(prefix: bytes, max_header: int, max_body: int) -> tuple[int, int]:
    if len(prefix) != FRAME.size:
        raise ProtocolError(f"frame prefix is {len(prefix)} bytes, not {FRAME.size}")
    magic, h, p = FRAME.unpack(prefix)
    if magic != MAGIC:
        raise ProtocolError(f"bad frame magic {magic!r} (expected {MAGIC!r})")
    if h == 0 or h > max_header:
        raise ProtocolError(f"frame header of {h} bytes; allowed 1..{max_header}", "too_large" if h else "bad_request")
    if p > max_body:
        raise ProtocolError(f"frame payload of {p} bytes is over the limit of {max_body}", "too_large")
    return h, p


def parse_header(raw: bytes, max_depth: int) -> dict:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError("frame header is not UTF-8") from None
    d = strict_json(text, "frame header", max_depth, ProtocolError)
    if not isinstance(d, dict):
        raise ProtocolError("frame header is not a JSON object")
    return d


def tensor_shape(v, what: str) -> tuple[int, ...]:
    if not isinstance(v, list) or not (1 <= len(v) <= 8) or not all(
            isinstance(n, int) and not isinstance(n, bool) and 0 <= n < 2**31 for n in v):
        raise ProtocolError(f"{what}: shape must be a list of 1-8 non-negative integers")
    return tuple(v)


def float32_bytes(shape: tuple[int, ...], what: str) -> int:
    """Bytes of a float32 tensor of ``shape``, computed exactly (no int64
    wrap-around); shapes beyond 2**40 bytes are refused as too large, and so
    is an empty shape whose other dimensions would be (NumPy cannot even
    make such an empty array)."""
    if math.prod(d for d in shape if d) * 4 > 1 << 40:
        raise ProtocolError(f"{what}: shape {list(shape)} is too large", "too_large")
    return math.prod(shape) * 4


def tensor_from_payload(header: dict, payload: bytes) -> np.ndarray:
    if header.get("dtype", "float32") != "float32":
        raise ProtocolError(f"dtype {header.get('dtype')!r} is not supported: send float32")
    shape = tensor_shape(header.get("shape"), "infer")
    n = float32_bytes(shape, "infer")
    if n != len(payload):
        raise ProtocolError(f"payload has {len(payload)} bytes but shape {list(shape)} of float32 needs {n}")
    return np.frombuffer(payload, "<f4").reshape(shape)


def npy_bytes(a: np.ndarray) -> bytes:
    """A C-order little-endian .npy (version 1.0) of ``a`` — never pickled."""
    a = np.ascontiguousarray(a)
    if a.dtype.byteorder == ">":
        a = a.astype(a.dtype.newbyteorder("<"))
    descr = np.lib.format.dtype_to_descr(a.dtype)
    header = repr({"descr": descr, "fortran_order": False, "shape": tuple(a.shape)})
    pad = 64 - (10 + len(header) + 1) % 64
    header = (header + " " * pad + "\n").encode("latin1")
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + a.tobytes()


def array_from_npy(body: bytes) -> np.ndarray:
    """A float32 array from .npy bytes (versions 1-3), validated by hand: no
    pickle, no object dtype, the data length must match the header."""
    if len(body) < 10 or body[:6] != b"\x93NUMPY":
        raise ProtocolError("body is not a .npy file (bad magic)")
    major = body[6]
    if major == 1:
        (hl,), off = struct.unpack("<H", body[8:10]), 10
    elif major in (2, 3):
        if len(body) < 12:
            raise ProtocolError(".npy header is truncated")
        (hl,), off = struct.unpack("<I", body[8:12]), 12
    else:
        raise ProtocolError(f".npy version {major} is not supported")
    if hl > 65536 or off + hl > len(body):
        raise ProtocolError(".npy header is truncated or too long")
    try:
        text = body[off:off + hl].decode("utf-8" if major == 3 else "latin1")
        d = ast.literal_eval(text.strip())
    except (ValueError, TypeError, SyntaxError, UnicodeDecodeError, MemoryError, RecursionError):
        raise ProtocolError(".npy header is not a valid dictionary") from None
    if not isinstance(d, dict) or set(d) != {"descr", "fortran_order", "shape"}:
        raise ProtocolError(".npy header must hold exactly descr, fortran_order and shape")
    if d["descr"] not in ("<f4", "=f4", "f4"):
        raise ProtocolError(f".npy dtype {d['descr']!r} is not supported: send little-endian float32")
    if d["fortran_order"] is not False:
        raise ProtocolError(".npy must be C order")
    shape = d["shape"]
    if not isinstance(shape, tuple):
        raise ProtocolError(".npy shape is not a tuple")
    shape = tensor_shape(list(shape), ".npy")
    data = memoryview(body)[off + hl:]
    n = float32_bytes(shape, ".npy")
    if n != len(data):
        raise ProtocolError(f".npy data has {len(data)} bytes but shape {list(shape)} of float32 needs {n}")
    return np.frombuffer(data, "<f4").reshape(shape)


_F32_MAX = float(np.finfo(np.float32).max)


def float32_from_json(v, what: str) -> np.ndarray:
    """JSON numbers (flat or nested lists) -> float32, every value finite and
    inside float32's range (a larger one would silently become infinity)."""
    try:
        a = np.asarray(v, dtype=np.float64)
    except (ValueError, TypeError, OverflowError, RecursionError):
        raise ProtocolError(f"{what} must be a rectangular array of numbers") from None
    if a.size and not (np.isfinite(a).all() and float(np.abs(a).max()) <= _F32_MAX):
        raise ProtocolError(f"{what} holds a value outside float32's finite range")
    return a.astype(np.float32)


def array_from_json(body: bytes, max_depth: int) -> np.ndarray:
    """``{"inputs": nested lists}`` -> float32 array (rectangular, finite numbers)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError("body is not UTF-8") from None
    d = strict_json(text, "request body", max_depth, ProtocolError)
    if not isinstance(d, dict) or "inputs" not in d:
        raise ProtocolError('JSON body must be an object with "inputs"')
    a = float32_from_json(d["inputs"], '"inputs"')
    if a.ndim == 0:
        raise ProtocolError('"inputs" must be an array, not a number')
    return a

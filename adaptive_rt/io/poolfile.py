"""The pool file: one ``.safetensors`` file with the supernet's weights in the
native layout, per-entry BN statistics, the search space and the pool table.

Layout (the safetensors format): an 8-byte little-endian header length ``N``,
``N`` bytes of UTF-8 JSON (tensor name -> dtype, shape, data offsets, plus
``__metadata__``), then the raw little-endian tensor data. ``__metadata__``:

- ``adaptive_rt.schema``: ``"1"`` (float32 entries only) or ``"2"`` (a pool
  with int8 entries: the int8 weight copy ``<W>.q8`` / ``<W>.q8scale`` and
  each int8 entry's ``<quant>qparams``, see :mod:`adaptive_rt.model.quant`).
  Migration: schema 1 files load unchanged (every entry float32); a pool
  without int8 content is still written as schema 1, so older readers keep
  reading it.
- ``adaptive_rt.space``: the :class:`SearchSpace` as JSON
- ``adaptive_rt.pool``: JSON list of entries (see :class:`PoolEntry`)
- ``adaptive_rt.sha256``: hex SHA-256 of the data section

Loading reads the data section once into the process's own memory (or maps
it, ``mode="mmap"``) and hands out read-only views of that one buffer. A
read-mode load rearranges the GEMM weights in that buffer into the engine's
panel layout (:mod:`adaptive_rt.model.layout`): the engine reads them as they
are (:meth:`PoolFile.gemm_weight`), and ``tensors`` hands out each of them
unpacked, as a new row-major array.
Everything is validated before anything is used, and every problem raises :class:`PoolFileError` naming the tensor or field.
No size read from the file is allocated before it has been checked against
the file's real size and fixed limits. Writes are atomic: a temporary file in
the same folder, fsync, validate, rename.
"""
from __future__ import annotations

import hashlib
import json
import math
import mmap
import os
import re
import stat
import struct
from dataclasses import dataclass, field
from typing import IO, Mapping, Sequence

import numpy as np

from ..model.graph import Graph, build_graph, cached_graph
from ..model.layout import (bn_stat_specs, gemm_weight_names, pack_panels, running_stat_specs, tensor_specs,
                            unpack_panels)
from ..model.space import ConfigError, SearchSpace, SpaceError, SubnetConfig
from ..assets import pool_path
from .atomic import atomic_writer
from .jsonio import strict_json
from ..model.quant import (Q8, Q8SCALE, QMAX, check_qparams_table, entry_weight_bytes, quant_points,
                           quantized_weight_specs)

__all__ = ["SCHEMA_VERSION", "MAX_ENTRIES", "PoolFileError", "PoolEntry", "PoolFile", "make_entry", "load_pool",
           "write_pool", "check_values"]

SCHEMA_VERSION = "2"              # the newest schema this version reads and writes
SCHEMAS = ("1", "2")
PRECISIONS = ("float32", "int8")
MAX_HEADER_BYTES = 16 << 20      # the JSON header; real pools need well under 1 MiB
MAX_TENSORS = 200_000
MAX_ENTRIES = 1024                # a pool table's rows; real pools have a few to a few dozen
HEADER_ALIGN = 64                # data section starts 64-byte aligned in our files
_HASH_CHUNK = 8 << 20

_DTYPES: dict[str, tuple[int, str | None]] = {
    # safetensors dtype -> (item size, numpy dtype or None where numpy has none)
    "F64": (8, "<f8"), "F32": (4, "<f4"), "F16": (2, "<f2"), "BF16": (2, None),
    "I64": (8, "<i8"), "I32": (4, "<i4"), "I16": (2, "<i2"), "I8": (1, "i1"),
    "U64": (8, "<u8"), "U32": (4, "<u4"), "U16": (2, "<u2"), "U8": (1, "u1"),
    "BOOL": (1, "?"), "F8_E4M3": (1, None), "F8_E5M2": (1, None),
}
_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")
_PREFIX_RE = re.compile(r"[A-Za-z0-9_.\-/]{0,128}")


class PoolFileError(ValueError):
    """A pool file is invalid. The message names the tensor or field."""

    def __init__(self, message: str, path: str | os.PathLike | None = None):
        self.path = None if path is None else os.fspath(path)
        self.reason = message
        super().__init__(f"{self.path}: {message}" if self.path else message)


# ----------------------------------------------------------------------------- entries
@dataclass(frozen=True)
class PoolEntry:
    """One row of the pool table: a subnet and what it costs and scores.

    ``bn`` is the prefix of the entry's BN statistic tensors
    (``<bn><layer>.mean`` / ``.var``, each ``[C]`` for the entry's active
    width ``C``); ``""`` means the supernet's own full-width statistics.
    ``accuracy`` is top-1 on ``dataset``'s ``split`` (None if not measured).
    """

    id: str
    config: SubnetConfig
    mflops: float
    params: int
    peak_activation_bytes: int
    bn: str
    accuracy: float | None = None
    dataset: str | None = None
    split: str = "test"
    latency_ms: float | None = None
    precision: str = "float32"
    quant: str = ""          # int8: the prefix of the entry's <quant>qparams tensor

    @property
    def is_int8(self) -> bool:
        return self.precision == "int8"

    def to_dict(self) -> dict:
        d: dict = {"id": self.id, "config": self.config.to_dict(), "mflops": self.mflops,
                   "params": self.params, "peak_activation_bytes": self.peak_activation_bytes,
                   "bn": self.bn, "accuracy": None}
        if self.accuracy is not None:
            d["accuracy"] = {"top1": self.accuracy, "dataset": self.dataset, "split": self.split}
        if self.latency_ms is not None:
            d["latency_ms"] = self.latency_ms
        if self.is_int8:
            d["precision"], d["quant"] = self.precision, self.quant
        return d

    @classmethod
    def from_dict(cls, d: object, where: str) -> "PoolEntry":
        if not isinstance(d, dict):
            raise PoolFileError(f"{where} must be an object")
        req = {"id", "config", "mflops", "params", "peak_activation_bytes", "bn", "accuracy"}
        missing = req - d.keys()
        if missing:
            raise PoolFileError(f"{where}: missing field {sorted(missing)[0]!r}")
        unknown = d.keys() - req - {"latency_ms", "precision", "quant"}
        if unknown:
            raise PoolFileError(f"{where}: unknown field {sorted(unknown)[0]!r}")
        eid = d["id"]
        if not isinstance(eid, str) or not _ID_RE.fullmatch(eid):
            raise PoolFileError(f"{where}.id={str(eid)[:80]!r} must be 1-64 characters of [A-Za-z0-9_.-]")
        where = f"entry {eid!r}"
        try:
            config = SubnetConfig.from_dict(d["config"])
        except ConfigError as e:
            raise PoolFileError(f"{where}.config: {e}") from None
        if not _finite(d["mflops"]) or d["mflops"] < 0:
            raise PoolFileError(f"{where}.mflops={d['mflops']!r} must be a non-negative number")
        for f in ("params", "peak_activation_bytes"):
            if not _int(d[f]) or d[f] < 0:
                raise PoolFileError(f"{where}.{f}={d[f]!r} must be a non-negative integer")
        if not isinstance(d["bn"], str) or not _PREFIX_RE.fullmatch(d["bn"]):
            raise PoolFileError(f"{where}.bn={str(d['bn'])[:80]!r} must be a tensor-name prefix of [A-Za-z0-9_.-/]")
        acc, dataset, split = None, None, "test"
        a = d["accuracy"]
        if a is not None:
            if not isinstance(a, dict) or set(a) != {"top1", "dataset", "split"}:
                raise PoolFileError(f"{where}.accuracy must be null or {{top1, dataset, split}}")
            if not _finite(a["top1"]) or not (0.0 <= a["top1"] <= 1.0):
                raise PoolFileError(f"{where}.accuracy.top1={a['top1']!r} must be a number in [0, 1]")
            if not isinstance(a["dataset"], str) or not isinstance(a["split"], str):
                raise PoolFileError(f"{where}.accuracy.dataset and .split must be strings")
            acc, dataset, split = float(a["top1"]), a["dataset"], a["split"]
        lat = d.get("latency_ms")
        if lat is not None and (not _finite(lat) or lat < 0):
            raise PoolFileError(f"{where}.latency_ms={lat!r} must be a non-negative number")
        precision = d.get("precision", "float32")
        if precision not in PRECISIONS:
            raise PoolFileError(f"{where}.precision={str(precision)[:40]!r} must be one of {', '.join(PRECISIONS)}")
        quant = d.get("quant", "")
        if precision == "int8":
            if not isinstance(quant, str) or not quant or not _PREFIX_RE.fullmatch(quant):
                raise PoolFileError(f"{where}.quant={str(quant)[:80]!r} must be a non-empty tensor-name prefix "
                                    "of [A-Za-z0-9_.-/] (an int8 entry's qparams)")
        elif "quant" in d:
            raise PoolFileError(f"{where}.quant is only for int8 entries")
        return cls(eid, config, float(d["mflops"]), d["params"], d["peak_activation_bytes"],
                   d["bn"], acc, dataset, split, None if lat is None else float(lat), precision, quant)


def make_entry(space: SearchSpace, config: SubnetConfig, id: str, bn: str,
               accuracy: float | None = None, dataset: str | None = None,
               split: str = "test", latency_ms: float | None = None,
               precision: str = "float32", quant: str = "") -> PoolEntry:
    """A pool entry for ``config`` with its cost computed by the graph's cost model."""
    cost = build_graph(space, config).cost()
    return PoolEntry(id, config, cost.mflops, cost.params, cost.peak_activation_bytes, bn,
                     accuracy, dataset, split, latency_ms, precision, quant)


def _finite(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


# ----------------------------------------------------------------------------- reading
@dataclass(frozen=True)
class _TensorInfo:
    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int


def _read_header(f: IO[bytes], file_size: int) -> tuple[dict, dict[str, _TensorInfo], int]:
    """Parse and structurally validate the safetensors header.
    Returns (metadata, tensors, data_start)."""
    if file_size < 8:
        raise PoolFileError(f"file is truncated: {file_size} bytes, a safetensors file has at least 8")
    head = f.read(9)
    (n,) = struct.unpack("<Q", head[:8])
    if head[8:9] != b"{" and not 2 <= n <= min(MAX_HEADER_BYTES, file_size - 8):
        # neither a JSON object nor a plausible header length after the first 8 bytes: some other file
        raise PoolFileError("not a safetensors pool file (no JSON header after the 8-byte length)")
    f.seek(8)
    if n > MAX_HEADER_BYTES:
        raise PoolFileError(f"header length {n} is over the limit of {MAX_HEADER_BYTES} bytes")
    if 8 + n > file_size:
        raise PoolFileError(f"file is truncated: header length {n} runs past the end of the {file_size}-byte file")
    raw = f.read(n)
    if len(raw) != n:
        raise PoolFileError("file is truncated while reading the header")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise PoolFileError(f"header is not valid UTF-8 (byte {e.start})") from None
    if not text.startswith("{"):
        raise PoolFileError("header is not a JSON object")
    header = strict_json(text, "header", error=PoolFileError)
    if not isinstance(header, dict):
        raise PoolFileError("header is not a JSON object")
    meta = header.pop("__metadata__", None)
    if not isinstance(meta, dict):
        raise PoolFileError("header has no __metadata__ object (not an adaptive_rt pool file)")
    for k, v in meta.items():
        if not isinstance(v, str):
            raise PoolFileError(f"__metadata__[{k[:80]!r}] must be a string")
    if len(header) > MAX_TENSORS:
        raise PoolFileError(f"header lists {len(header)} tensors, limit {MAX_TENSORS}")
    data_start = 8 + n
    data_len = file_size - data_start
    tensors: dict[str, _TensorInfo] = {}
    for name, info in header.items():
        tensors[name] = _tensor_info(name, info, data_len)
    _check_coverage(tensors, data_len)
    return meta, tensors, data_start


def _tensor_info(name: str, info: object, data_len: int) -> _TensorInfo:
    where = f"tensor {name[:120]!r}"
    if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
        raise PoolFileError(f"{where}: entry must be an object with dtype, shape, data_offsets")
    dtype, shape, offs = info["dtype"], info["shape"], info["data_offsets"]
    if not isinstance(dtype, str) or dtype not in _DTYPES:
        raise PoolFileError(f"{where}: unknown dtype {str(dtype)[:40]!r}")
    if not isinstance(shape, list) or len(shape) > 8 or not all(_int(d) and d >= 0 for d in shape):
        raise PoolFileError(f"{where}: shape {str(shape)[:80]} must be a list of at most 8 non-negative integers")
    if not isinstance(offs, list) or len(offs) != 2 or not all(_int(o) and o >= 0 for o in offs):
        raise PoolFileError(f"{where}: data_offsets must be two non-negative integers")
    begin, end = offs
    if begin > end:
        raise PoolFileError(f"{where}: data_offsets [{begin}, {end}] end before they begin")
    if end > data_len:
        raise PoolFileError(f"{where}: data_offsets [{begin}, {end}] run past the end of the "
                            f"{data_len}-byte data section (file truncated?)")
    numel = 1
    for d in shape:
        numel *= d
    if numel >= 1 << 64 or numel * _DTYPES[dtype][0] >= 1 << 64:
        raise PoolFileError(f"{where}: shape {shape} has {numel} elements, which overflows 64 bits")
    nbytes = numel * _DTYPES[dtype][0]
    if nbytes != end - begin:
        raise PoolFileError(f"{where}: shape {shape} x {dtype} is {nbytes} bytes but data_offsets "
                            f"span {end - begin}")
    return _TensorInfo(name, dtype, tuple(shape), begin, end)


def _check_coverage(tensors: Mapping[str, _TensorInfo], data_len: int) -> None:
    pos, prev = 0, None
    for t in sorted(tensors.values(), key=lambda t: (t.begin, t.end)):
        if t.begin < pos:
            raise PoolFileError(f"tensor {t.name[:120]!r} overlaps tensor {prev[:120]!r}")
        if t.begin > pos:
            raise PoolFileError(f"gap of {t.begin - pos} bytes in the data section before tensor {t.name[:120]!r}")
        pos, prev = t.end, t.name
    if pos != data_len:
        raise PoolFileError(f"data section has {data_len - pos} bytes after the last tensor (gap at the end)")


class _Tensors(Mapping):
    """name -> array: the loaded views, and a new row-major array (read-only)
    for each tensor held in panels."""

    def __init__(self, views: dict[str, np.ndarray], panels: Mapping[str, tuple[int, int]]):
        self._views, self._panels = views, panels

    def __getitem__(self, name: str) -> np.ndarray:
        a = self._views[name]
        kn = self._panels.get(name)
        if kn is None:
            return a
        a = unpack_panels(a, *kn)
        a.flags.writeable = False
        return a

    def stored(self, name: str) -> tuple[np.ndarray, tuple[int, int] | None]:
        """The tensor as held in memory: ``(flat values, (K, N))`` for one in
        panels, else ``(its view, None)``."""
        return self._views[name], self._panels.get(name)

    def shape(self, name: str) -> tuple[int, ...]:
        """The tensor's (row-major) shape, without unpacking it."""
        kn = self._panels.get(name)
        return kn if kn is not None else tuple(self._views[name].shape)

    def leading(self, name: str, active: tuple[int, ...], dtype=None) -> np.ndarray:
        """A new array of the leading slice ``[:active[0], :active[1], ...]``,
        cast to ``dtype``: of a tensor in panels only that slice is unpacked
        (the NumPy reference and the exporters read an entry this way)."""
        a = self._views[name]
        kn = self._panels.get(name)
        if kn is None:
            return np.array(a[tuple(slice(0, n) for n in active)], dtype=dtype)
        return unpack_panels(a, *kn, rows=active[0], cols=active[1], dtype=dtype)

    def __contains__(self, name) -> bool:
        return name in self._views

    def __iter__(self):
        return iter(self._views)

    def __len__(self) -> int:
        return len(self._views)


@dataclass
class PoolFile:
    """A validated, loaded pool file.

    ``tensors`` maps every tensor name to a read-only NumPy view of the one
    buffer holding the data section, or, for a GEMM weight the load put in
    panels, to a new row-major copy of it (:meth:`gemm_weight` gives the
    stored form). ``weight_bytes`` counts the shared weights (all tensors
    but the per-entry BN statistics).
    """

    path: str
    space: SearchSpace
    entries: tuple[PoolEntry, ...]
    tensors: Mapping[str, np.ndarray]
    metadata: Mapping[str, str]
    sha256: str
    file_bytes: int
    weight_bytes: int                 # shared tensors (float and int8 copies), not per-entry ones
    _data: np.ndarray | None = field(default=None, repr=False)   # the data section (private copy or mapping)
    _by_id: dict = field(default_factory=dict, repr=False)
    int8_weight_bytes: int = 0        # the int8 weight copy (values and scales)
    panels: Mapping[str, tuple[int, int]] = field(default_factory=dict)   # name -> (K, N) of tensors in panels

    def __post_init__(self) -> None:
        self._by_id.update((e.id, e) for e in self.entries)

    def gemm_weight(self, name: str) -> tuple[np.ndarray, tuple[int, int] | None]:
        """A 2-D weight as stored in memory: ``(flat values in panels, (K, N))``
        where the load packed it, else ``(the [K, N] view, None)``."""
        t = self.tensors
        return t.stored(name) if isinstance(t, _Tensors) else (t[name], None)

    def entry(self, id: str) -> PoolEntry:
        e = self._by_id.get(id) if isinstance(id, str) else None
        if e is None:
            raise KeyError(f"no entry {id!r} in {self.path}; entries: {', '.join(e.id for e in self.entries)}")
        return e

    def entry_weight_bytes(self, entry: PoolEntry | str) -> int:
        """Bytes of weights the entry reads (its precision's copy of the active slices)."""
        e = self.entry(entry) if isinstance(entry, str) else entry
        return entry_weight_bytes(self.graph(e), e.is_int8)

    def reference(self, entry: PoolEntry | str, x: np.ndarray) -> np.ndarray:
        """The entry's logits for an NHWC batch from the NumPy reference
        executors: float64 for float32 entries, the bit-exact int8 one for int8
        entries (what every executor of the entry is tested against)."""
        from ..model import reference, reference_int8
        e = self.entry(entry) if isinstance(entry, str) else entry
        g = self.graph(e, tuple(np.asarray(x).shape[1:3]))
        if e.is_int8:
            return reference_int8.run_int8(g, self.tensors, self.tensors[e.quant + "qparams"], x, e.bn)
        return reference.run(g, self.tensors, x, e.bn)

    def owns(self, entry: PoolEntry) -> bool:
        """Whether ``entry`` is a row of this pool's table (not of another pool)."""
        return self._by_id.get(entry.id) == entry

    def graph(self, entry: PoolEntry | str, input_hw: tuple[int, int] | None = None) -> Graph:
        """The entry's graph, built once per (entry, input size) and shared
        (graphs are immutable)."""
        e = self.entry(entry) if isinstance(entry, str) else entry
        return cached_graph(self.space, e.config, None if input_hw is None else tuple(input_hw))

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of one input image at the space's input size."""
        return self.graph(self.entries[0]).input_shape

    def close(self) -> None:
        """Drop this object's references to the mapping (views handed out keep it alive)."""
        self.tensors = {}
        self._data = None


def load_pool(path: str | os.PathLike, verify_checksum: bool = True, mode: str = "read") -> PoolFile:
    """Validate and load a pool file (a path, or the name of a shipped pool).
    Raises :class:`PoolFileError` on any problem.

    ``mode="read"`` (default) reads the data section once into this
    process's own memory and validates those bytes: the checksum and every
    value checked are exactly what is served, and nothing done to the file
    afterwards — truncated, overwritten in place, replaced by ``cp`` —
    reaches the process (reload to serve a new file). ``mode="mmap"`` maps
    the file instead (no copy; for read-only storage no one writes to while
    it is served: a file truncated under a mapping kills the process with
    SIGBUS, and an in-place overwrite changes weights under running plans)."""
    if mode not in ("read", "mmap"):
        raise ValueError(f"mode={mode!r}: use 'read' or 'mmap'")
    path = pool_path(os.fspath(path))      # a shipped pool's name (e.g. "mnist5k-mbv3") works from anywhere
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))   # a FIFO is refused, not waited on
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise PoolFileError("not a regular file")
            size = st.st_size
            meta, infos, data_start = _read_header(f, size)
            space, entries, sha = _validate_pool(meta, infos, data_start)
            if mode == "read":
                buf = np.empty(size - data_start, np.uint8)
                f.seek(data_start)
                if f.readinto(memoryview(buf)) != buf.size or f.read(1):
                    raise PoolFileError("file changed size while being loaded")
                data, base = buf, 0
            else:
                data = np.memmap(f, dtype=np.uint8, mode="r")
                if data.shape[0] != size:
                    raise PoolFileError("file changed size while being loaded")
                base = data_start
    except PoolFileError as e:
        raise PoolFileError(e.reason, path) from None
    except OSError as e:
        raise PoolFileError(f"cannot read: {e.strerror or e}", path) from None
    except ValueError as e:
        raise PoolFileError(f"cannot map: {e}", path) from None
    try:
        if verify_checksum:
            h = hashlib.sha256()
            for i in range(base, data.shape[0], _HASH_CHUNK):
                h.update(data[i: min(data.shape[0], i + _HASH_CHUNK)])
            if h.hexdigest() != sha:
                raise PoolFileError("checksum mismatch: the data section does not match adaptive_rt.sha256 "
                                    "(file corrupted or modified)")
        panels: dict[str, tuple[int, int]] = {}
        if mode == "read":   # the GEMM weights into panels, in place (the checksum covered the file's bytes)
            todo = [t for n in sorted(gemm_weight_names(space)) if (t := infos.get(n)) is not None
                    and t.dtype == "F32" and len(t.shape) == 2]
            _pack_in_place(data, todo)
            panels = {t.name: (int(t.shape[0]), int(t.shape[1])) for t in todo}
            data.flags.writeable = False
        views = {}
        for t in infos.values():
            a = data[base + t.begin: base + t.end].view(_DTYPES[t.dtype][1])
            a = a if t.name in panels else a.reshape(t.shape)
            check_values(t.name, a)
            views[t.name] = a
        tensors = _Tensors(views, panels)
        for e in entries:
            if e.is_int8:
                why = check_qparams_table(cached_graph(space, e.config), tensors[e.quant + "qparams"],
                                          f"tensor {e.quant + 'qparams'!r} of entry {e.id!r}")
                if why:
                    raise PoolFileError(why)
    except PoolFileError as e:
        raise PoolFileError(e.reason, path) from None
    per_entry = {n for e in entries if e.bn for n in bn_stat_specs(cached_graph(space, e.config), e.bn)}
    per_entry |= {e.quant + "qparams" for e in entries if e.is_int8}
    weight_bytes = sum(t.end - t.begin for t in infos.values() if t.name not in per_entry)
    int8_bytes = sum(t.end - t.begin for t in infos.values() if t.name.endswith((Q8, Q8SCALE)))
    return PoolFile(path, space, tuple(entries), tensors, dict(meta), sha, size, weight_bytes, data,
                    int8_weight_bytes=int8_bytes, panels=panels)


def _pack_in_place(data: np.ndarray, todo: list[_TensorInfo]) -> None:
    """Rearrange the 2-D float32 tensors ``todo`` of the data section into
    panels. The one scratch copy lives in an anonymous mapping of its own,
    unmapped at the end: a heap temporary would stay in the RSS as free heap."""
    if not todo:
        return
    m = mmap.mmap(-1, max(t.end - t.begin for t in todo))
    try:
        _pack_with(np.frombuffer(m, np.float32), data, todo)
    finally:
        try:
            m.close()
        except BufferError:   # a traceback still holds a view of it: the mapping goes when that does
            pass


def _pack_with(scratch: np.ndarray, data: np.ndarray, todo: list[_TensorInfo]) -> None:
    for t in todo:
        view = data[t.begin: t.end].view(np.float32)
        src = scratch[:view.size].reshape(t.shape)
        src[...] = view.reshape(t.shape)
        pack_panels(src, view)


def _validate_pool(meta: Mapping[str, str], infos: Mapping[str, _TensorInfo],
                   data_start: int) -> tuple[SearchSpace, list[PoolEntry], str]:
    schema = meta.get("adaptive_rt.schema")
    if schema is None:
        raise PoolFileError("__metadata__ has no adaptive_rt.schema (not an adaptive_rt pool file)")
    if schema not in SCHEMAS:
        raise PoolFileError(f"adaptive_rt.schema={schema[:20]!r} is not supported (this version reads "
                            f"{', '.join(map(repr, SCHEMAS))})")
    for key in ("adaptive_rt.space", "adaptive_rt.pool", "adaptive_rt.sha256"):
        if key not in meta:
            raise PoolFileError(f"__metadata__ has no {key}")
    sha = meta["adaptive_rt.sha256"]
    if not re.fullmatch(r"[0-9a-f]{64}", sha):
        raise PoolFileError("adaptive_rt.sha256 must be 64 lowercase hex digits")
    try:
        space = SearchSpace.from_dict(strict_json(meta["adaptive_rt.space"], "adaptive_rt.space", error=PoolFileError))
    except (SpaceError, TypeError) as e:
        raise PoolFileError(f"adaptive_rt.space: {e}") from None
    table = strict_json(meta["adaptive_rt.pool"], "adaptive_rt.pool", error=PoolFileError)
    if not isinstance(table, list) or not table:
        raise PoolFileError("adaptive_rt.pool must be a non-empty list of entries")
    if len(table) > MAX_ENTRIES:
        raise PoolFileError(f"adaptive_rt.pool has {len(table)} entries, limit {MAX_ENTRIES}")

    def need(name: str, shape: tuple[int, ...], why: str, dtype: str = "F32") -> None:
        t = infos.get(name)
        if t is None:
            raise PoolFileError(f"missing tensor {name!r} ({why})")
        if t.dtype != dtype:
            raise PoolFileError(f"tensor {name!r} has dtype {t.dtype}, expected {dtype}")
        if t.shape != shape:
            raise PoolFileError(f"tensor {name!r} has shape {list(t.shape)}, expected {list(shape)} ({why})")
        if (data_start + t.begin) % _DTYPES[dtype][0]:
            raise PoolFileError(f"tensor {name!r} is not {_DTYPES[dtype][0]}-byte aligned in the file")

    entries: list[PoolEntry] = []
    ids: set[str] = set()
    for i, d in enumerate(table):
        e = PoolEntry.from_dict(d, f"adaptive_rt.pool[{i}]")
        if e.id in ids:
            raise PoolFileError(f"entry {e.id!r}: duplicate entry id")
        ids.add(e.id)
        entries.append(e)
    has_int8 = any(e.is_int8 for e in entries) or any(n.endswith((Q8, Q8SCALE)) for n in infos)
    if has_int8 and schema == "1":
        raise PoolFileError("int8 entries or weights need adaptive_rt.schema \"2\" (this file says \"1\")")
    has_float = any(not e.is_int8 for e in entries)
    qspecs = quantized_weight_specs(space)
    known: set[str] = set()
    for name, shape in tensor_specs(space).items():
        # a pool of int8 entries only may leave out the float copy of the quantized weights
        if name in qspecs and not has_float and name not in infos:
            continue
        need(name, shape, "supernet weight")
        known.add(name)
    if has_int8:
        for name, (qshape, sshape) in qspecs.items():
            need(name + Q8, qshape, "int8 weight", "I8")
            need(name + Q8SCALE, sshape, "int8 weight scales")
            known |= {name + Q8, name + Q8SCALE}
    optional = running_stat_specs(space)
    for e in entries:
        where = f"entry {e.id!r}"
        try:
            g = cached_graph(space, e.config)
        except ConfigError as err:
            raise PoolFileError(f"{where}.config is invalid for the space: {err}") from None
        cost = g.cost()
        if not math.isclose(e.mflops, cost.mflops, rel_tol=1e-9, abs_tol=1e-9):
            raise PoolFileError(f"{where}.mflops={e.mflops} but the config costs {cost.mflops}")
        if e.params != cost.params:
            raise PoolFileError(f"{where}.params={e.params} but the config has {cost.params}")
        if e.peak_activation_bytes != cost.peak_activation_bytes:
            raise PoolFileError(f"{where}.peak_activation_bytes={e.peak_activation_bytes} "
                                f"but the config needs {cost.peak_activation_bytes}")
        if e.bn:
            for name, shape in bn_stat_specs(g, e.bn).items():
                need(name, shape, f"BN statistics of {where}")
                known.add(name)
        else:
            for name in bn_stat_specs(g, ""):
                need(name, optional[name], f"supernet BN statistics used by {where}")
        if e.is_int8:
            qname = e.quant + "qparams"
            need(qname, (len(quant_points(g)), 2), f"int8 quantization of {where}")
            known.add(qname)
    known |= set(optional)
    for name in infos:
        if name not in known:
            raise PoolFileError(f"unexpected tensor {name[:120]!r}: not a weight of the space "
                                "nor BN statistics of an entry")
    for name in optional:
        if name in infos:
            need(name, optional[name], "supernet BN statistics")
    return space, entries, sha


_FINITE_CHUNK = 1 << 16


def _all_finite(a: np.ndarray) -> bool:
    """np.isfinite(a).all() in chunks through one small buffer: a temporary
    the size of each tensor would stay in the allocator's heap (about 1.3 MB
    of resident memory after loading the 224 pool)."""
    flat = a.reshape(-1)
    if flat.size <= _FINITE_CHUNK:
        return bool(np.isfinite(flat).all())
    buf = np.empty(_FINITE_CHUNK, bool)
    for i in range(0, flat.size, _FINITE_CHUNK):
        part = flat[i:i + _FINITE_CHUNK]
        ok = np.isfinite(part, out=buf[:part.size])
        if not ok.all():
            return False
    return True


def check_values(name: str, a: np.ndarray) -> None:
    """What the bytes of a tensor must hold, on load and on write: finite
    numbers, BN variances that are not negative, int8 weights in [-127, 127]
    and positive int8 scales."""
    if a.dtype.kind in "iu":
        if name.endswith(Q8) and a.size and int(a.min()) < -QMAX:
            raise PoolFileError(f"tensor {name!r} holds -128 (int8 weights are symmetric, [-127, 127])")
        return
    if not _all_finite(a):
        raise PoolFileError(f"tensor {name!r} has non-finite values (NaN or infinity)")
    if name.endswith(".bn.var") and a.size and float(a.min()) < 0:
        raise PoolFileError(f"tensor {name!r} holds a negative variance ({float(a.min()):g})")
    if name.endswith(Q8SCALE) and a.size and float(a.min()) <= 0:
        raise PoolFileError(f"tensor {name!r} holds a scale that is not positive ({float(a.min()):g})")


# ----------------------------------------------------------------------------- writing
def write_pool(path: str | os.PathLike, space: SearchSpace, entries: Sequence[PoolEntry],
               tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str] | None = None) -> PoolFile:
    """Write a pool file atomically and return it loaded (validated).

    ``tensors`` must hold every tensor of :func:`~adaptive_rt.model.graph.tensor_specs`
    and each entry's BN statistics (and, with int8 entries, the int8 weight
    copy and their qparams); other tensors are refused. int8 arrays are
    stored as I8, everything else as little-endian float32. A pool without
    int8 content is written as schema 1 (readable by older versions). The written file is validated in full
    before it replaces ``path``, so an invalid pool is never published.
    """
    arrays: dict[str, np.ndarray] = {}
    # float32 tensors first, int8 after them: every tensor stays aligned to its item size
    for name in sorted(tensors, key=lambda n: (np.asarray(tensors[n]).dtype == np.int8, n)):
        src = tensors[name]
        a = np.ascontiguousarray(src, dtype="i1" if np.asarray(src).dtype == np.int8 else "<f4")
        check_values(name, a)
        arrays[name] = a
    meta = {str(k): str(v) for k, v in (metadata or {}).items()}
    int8 = any(e.is_int8 for e in entries) or any(a.dtype == np.int8 for a in arrays.values())
    meta["adaptive_rt.schema"] = "2" if int8 else "1"
    meta["adaptive_rt.space"] = space.to_json()
    meta["adaptive_rt.pool"] = json.dumps([e.to_dict() for e in entries], separators=(",", ":"))
    h = hashlib.sha256()
    header: dict = {}
    pos = 0
    for name, a in arrays.items():
        header[name] = {"dtype": "I8" if a.dtype == np.int8 else "F32", "shape": list(a.shape),
                        "data_offsets": [pos, pos + a.nbytes]}
        pos += a.nbytes
        h.update(memoryview(a).cast("B"))
    meta["adaptive_rt.sha256"] = h.hexdigest()
    text = json.dumps({"__metadata__": meta, **header}, separators=(",", ":")).encode()
    text += b" " * (-(8 + len(text)) % HEADER_ALIGN)
    path = os.fspath(path)
    with atomic_writer(path) as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for a in arrays.values():
            f.write(memoryview(a).cast("B"))
        f.flush()
        pool = load_pool(f.name)   # validate the new file before it replaces the old one
    pool.path = path
    return pool

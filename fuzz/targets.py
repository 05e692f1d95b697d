"""Fuzz targets: each takes the fuzzer's bytes and must either succeed or
raise the one error its parser documents (a ValueError subclass naming the
problem). Anything else — another exception, a crash, a hang, a sanitizer
report — is a bug, and atheris saves the input that caused it.

Run one: ``python fuzz/run.py TARGET --seconds 60``; all: ``python fuzz/run.py all``.
"""
from __future__ import annotations

import atexit
import json
import os
import shutil
import socket
import tempfile

import atheris

with atheris.instrument_imports(include=["adaptive_rt"]):
    import numpy as np

    from adaptive_rt.daemon.http import Refused, parse_head
    from adaptive_rt.daemon.kserve import match as kserve_match, parse_infer
    from adaptive_rt.daemon.protocol import (ProtocolError, array_from_json, array_from_npy, parse_frame_prefix,
                                             parse_header, tensor_from_payload)
    from adaptive_rt.daemon.protocol import RESP, SHM_MAGIC
    from adaptive_rt.engine import Engine, Gate, ShmStatus, available_isas, available_isas8
    from adaptive_rt.io.poolfile import PoolFileError, load_pool, write_pool
    from adaptive_rt.io.randompool import random_pool
    from adaptive_rt.model import reference
    from adaptive_rt.model.space import SearchSpace, SpaceError
    from adaptive_rt.quant.calibrate import quantize_pool
    from adaptive_rt.serve.monitor import MonitorError, TraceSource
    from adaptive_rt.serve.profile import ProfileError, profile_entries
    from adaptive_rt.serve.latency import LatencyTable, LatencyTableError
    from adaptive_rt.io.jsonio import strict_json

_SCRATCH = tempfile.mkdtemp(prefix="art-fuzz-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
atexit.register(shutil.rmtree, _SCRATCH, True)
_SEEDS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def _file(data: bytes, name: str) -> str:
    path = os.path.join(_SCRATCH, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def poolfile(data: bytes) -> None:
    """The pool file reader: header, table, tensors, values, checksum."""
    try:
        pool = load_pool(_file(data, "p.safetensors"))
    except PoolFileError:
        return
    for e in pool.entries:        # a file that loads must build and run
        pool.graph(e)


def npy(data: bytes) -> None:
    """The daemon's .npy reader (HTTP bodies)."""
    try:
        array_from_npy(data)
    except ProtocolError:
        pass


def frame(data: bytes) -> None:
    """The Unix socket's ART1 frames: prefix, JSON header, tensor payload."""
    try:
        h, p = parse_frame_prefix(data[:16], 1 << 16, 1 << 24)
        raw, payload = data[16:16 + h], data[16 + h:16 + h + p]
        header = parse_header(raw, 8)
        if header.get("op") == "infer":
            tensor_from_payload(header, payload)
    except ProtocolError:
        pass


def http(data: bytes) -> None:
    """The HTTP request head parser and the JSON tensor body reader."""
    head, _, body = data.partition(b"\r\n\r\n")
    try:
        parse_head(head + b"\r\n\r\n")
    except Refused:
        pass
    try:
        array_from_json(body, 8)
    except ProtocolError:
        pass


def kserve(data: bytes) -> None:
    """The Open Inference Protocol's infer body (JSON header, optional binary
    tensor after it) and its route matcher: the first line is the header
    length (or empty for none), the second a path."""
    first, _, rest = data.partition(b"\n")
    path, _, body = rest.partition(b"\n")
    kserve_match(path.decode("latin1"))
    try:
        parse_infer(body, first.decode("latin1") or None, 8)
    except ProtocolError:
        pass


_SEED_POOL = []


def _seed_pool():
    """The seed pool of the corpus, loaded once."""
    if not _SEED_POOL:
        _SEED_POOL.append(load_pool(os.path.join(_SEEDS, "poolfile", "tiny.safetensors")))
    return _SEED_POOL[0]


def profile(data: bytes) -> None:
    """A device profile read back for a pool (the seed pool of the corpus)."""
    pool = _seed_pool()
    try:
        d = strict_json(data.decode("utf-8", "replace"), "profile", 16, ProfileError)
        if isinstance(d, dict):
            d["pool_sha256"] = pool.sha256      # get past the pool check to the entries
            profile_entries(d, pool)
    except ProfileError:
        pass


def latency(data: bytes) -> None:
    """A device latency table read back for the seed pool's space."""
    pool = _seed_pool()
    try:
        d = strict_json(data.decode("utf-8", "replace"), "latency table", 16, LatencyTableError)
        if isinstance(d, dict):
            d["space"] = pool.space.to_dict()      # get past the space check to the rest
        table = LatencyTable.from_dict(d, pool.space)
        table.predict(pool.entries[0].config)
    except LatencyTableError:
        pass


def trace(data: bytes) -> None:
    """Trace files (JSON and CSV) for the trace monitor source."""
    for name in ("t.json", "t.csv"):
        try:
            TraceSource(path=_file(data, name))
        except MonitorError:
            pass


def plan(data: bytes) -> None:
    """Differential: a random valid space and pool built from the bytes, every
    entry planned by the engine on every ISA table and run against the NumPy
    reference; then the pool quantized (calibrated on the inputs) and every
    int8 entry on every int8 table against the int8 reference — bit for bit
    (within a step per value where the SE gate is a sigmoid: exp differs in
    the last bit between libm and NumPy). A SpaceError is a space the fuzzer
    asked for and we refuse."""
    fdp = atheris.FuzzedDataProvider(data)
    pick = lambda seq: seq[fdp.ConsumeIntInRange(0, len(seq) - 1)]  # noqa: E731
    n_stages = fdp.ConsumeIntInRange(1, 3)
    stages = []
    for _ in range(n_stages):
        ks = sorted({pick([1, 3, 5, 7]) for _ in range(fdp.ConsumeIntInRange(1, 3))})
        stages.append({"channels": fdp.ConsumeIntInRange(1, 40), "stride": pick([1, 2]),
                       "depths": sorted({fdp.ConsumeIntInRange(1, 3) for _ in range(2)}), "kernel_sizes": ks,
                       "expand_ratios": pick([[1.0], [2.0, 3.0], [3.0, 4.0, 6.0], [1.5]]),
                       "width_mults": pick([[1.0], [0.75, 1.0], [0.5, 1.25]]),
                       "act": pick(["relu", "relu6", "hswish"]), "se": fdp.ConsumeBool()})
    d = {"name": "fuzz", "in_channels": fdp.ConsumeIntInRange(1, 4), "num_classes": fdp.ConsumeIntInRange(1, 12),
         "input_size": fdp.ConsumeIntInRange(8, 40), "resolutions": [], "stem_channels": fdp.ConsumeIntInRange(1, 24),
         "stem_kernel": pick([1, 3, 5]), "stem_stride": pick([1, 2]), "stem_act": pick(["relu", "hswish"]),
         "stages": stages, "head_channels": fdp.ConsumeIntInRange(1, 48),
         "head_act": pick(["relu", "hswish"]), "feature_channels": pick([0, 0, 16]),
         "se_gate": pick(["hsigmoid", "sigmoid"])}
    d["resolutions"] = sorted({d["input_size"], fdp.ConsumeIntInRange(8, 40)})
    try:
        space = SearchSpace.from_dict(d)
    except SpaceError:
        return
    seed = fdp.ConsumeIntInRange(0, 1 << 30)
    configs = [space.min_config(), space.sample(seed), space.max_config()]
    entries, tensors = random_pool(space, len(configs), seed=seed % 1000, configs=configs)
    pool = write_pool(_file(b"", "plan.safetensors"), space, entries, tensors)
    x = np.random.default_rng(seed).random((2,) + pool.input_shape, dtype=np.float32)
    for isa in available_isas():
        eng = Engine(pool, max_threads=2, isa=isa)
        for e in pool.entries:
            g = pool.graph(e)
            want = reference.run(g, pool.tensors, x, e.bn)
            got = eng.run(eng.plan(e), x, threads=1 + seed % 2)
            scale = max(1e-3, float(np.abs(want).max()))
            err = float(np.abs(got - want).max())
            if not err <= 1e-4 * scale + 1e-5:
                raise AssertionError(f"{isa} {e.config.id}: engine differs from the reference by {err:g} "
                                     f"(scale {scale:g}) in space {json.dumps(d)}")
    qpool = quantize_pool(pool, x, _file(b"", "plan-int8.safetensors"))
    exact = not (d["se_gate"] == "sigmoid" and any(st["se"] for st in stages))
    for isa8 in available_isas8():
        eng = Engine(qpool, max_threads=2, isa8=isa8)
        for e in qpool.entries:
            if not e.is_int8:
                continue
            want = qpool.reference(e, x)
            got = eng.run(eng.plan(e), x, threads=1 + seed % 2)
            if exact and not np.array_equal(got, want):
                raise AssertionError(f"int8 {isa8} {e.config.id}: engine differs from the int8 reference by "
                                     f"{float(np.abs(got - want).max()):g} in space {json.dumps(d)}")
            if not np.isfinite(got).all():
                raise AssertionError(f"int8 {isa8} {e.config.id}: non-finite logits in space {json.dumps(d)}")


_SHM = []


def shm(data: bytes) -> None:
    """The daemon's shared-memory request loop (C++, csrc/serve/shm_loop.cc)
    fed the bytes as request records on a real socket — valid records, bad
    magics, image counts past the mapping, records cut short — with the
    input slot filled from the bytes too (NaN and infinity included). Every
    status must be one the loop defines, every served request within the
    slots' capacity, the answers well-formed records; it must never crash
    or read or write past the slots (ASan in CI's sanitizer run)."""
    if not _SHM:
        pool = _seed_pool()
        eng = Engine(pool, max_threads=2)
        plan = eng.plan(pool.entries[0])
        _SHM.append((eng, plan, Gate(2)))
    eng, plan, gate = _SHM[0]
    image = int(np.prod(plan.input_shape))
    cap = 3
    inp = np.zeros(cap * image, np.float32)
    out = np.zeros(cap * plan.num_classes, np.float32)
    fill = np.frombuffer(data[:len(data) // 4 * 4][:inp.nbytes], np.float32)
    inp[:fill.size] = fill
    body = data[inp.nbytes:] if len(data) > inp.nbytes else data
    a, b = socket.socketpair()
    try:
        a.sendall(body[:4096])
        a.shutdown(socket.SHUT_WR)
        gen = np.zeros(1, np.int64)
        for _ in range(300):
            status, n, seq, magic, ms, images, err = eng.serve_shm(plan, b.fileno(), 1 + len(data) % 2, inp, out,
                                                                   gen, 0, gate, idle_s=1.0, max_queue=1)
            if not (len(ms) == len(images) and all(1 <= k <= cap for k in images)):
                raise AssertionError(f"served {list(images)} images with a capacity of {cap}")
            if status in (ShmStatus.CLOSED, ShmStatus.IDLE):
                break
        else:
            raise AssertionError("the loop never reached the end of the records")
        b.shutdown(socket.SHUT_WR)      # everything answered is in a's buffer now
        answers = b""
        a.settimeout(1.0)
        while True:
            chunk = a.recv(1 << 16)
            if not chunk:
                break
            answers += chunk
        while answers:   # the loop's own answers: whole 32-byte records, each naming the entry
            magic, code, _, rows, cols, _, elen, mlen = RESP.unpack_from(answers)
            if magic != SHM_MAGIC or code != 0 or cols != plan.num_classes or mlen != 0 or rows > cap:
                raise AssertionError(f"bad answer record {answers[:RESP.size]!r}")
            answers = answers[RESP.size + elen:]
    finally:
        a.close()
        b.close()


TARGETS = {f.__name__: f for f in (poolfile, npy, frame, http, kserve, profile, latency, trace, plan, shm)}

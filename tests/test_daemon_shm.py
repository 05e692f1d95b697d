"""Shared-memory tensors over the Unix socket (adaptive_rt/daemon/shm.py and
csrc/serve/shm_loop.cc), against a real daemon process: the same logits as
the frame path, batches that grow the mapping, errors that name the
problem, and hostile clients — a sealed mapping that cannot be shrunk under
the daemon, bad records, oversized requests, clients that die — after which
the daemon still serves everyone else."""
from __future__ import annotations

import fcntl
import json
import mmap
import os
import re
import signal
import socket
import threading
import urllib.request

import numpy as np
import pytest

from adaptive_rt.daemon import Client, DaemonError
from adaptive_rt.daemon.protocol import FRAME, MAGIC, REQ, RESP, SHM_MAGIC

from test_daemon import JSON, TOL, DaemonProc, pools, refs  # noqa: F401  (fixtures)

pytestmark = pytest.mark.skipif(not hasattr(os, "memfd_create"), reason="memfd is Linux-only")


@pytest.fixture()
def d(tmp_path, pools):  # noqa: F811
    p = DaemonProc(tmp_path, pools[0])
    yield p
    p.stop()


def test_run_gate_counts_its_slots():
    """The gate every transport shares: held slots are the daemon's in-flight
    count, a full queue refuses at once, and a release without a slot is an error."""
    from adaptive_rt.engine import Gate
    g = Gate(2)
    assert g.held == 0 and g.waiting == 0
    assert g.try_acquire() and g.acquire_bounded(0)
    assert g.held == 2 and not g.try_acquire() and not g.acquire_bounded(0)
    got = threading.Event()

    def waiter():
        assert g.acquire_bounded(1)
        got.set()
    t = threading.Thread(target=waiter)
    t.start()
    while g.waiting == 0:
        threading.Event().wait(0.001)
    assert not g.acquire_bounded(1)            # one waits already: busy
    g.release()
    t.join(10)
    assert got.is_set() and g.held == 2
    g.release()
    g.release()
    assert g.held == 0
    with pytest.raises(RuntimeError, match="not held"):
        g.release()
    with pytest.raises(ValueError):
        Gate(0)


def _metrics(d) -> str:
    return urllib.request.urlopen(f"http://127.0.0.1:{d.port}/metrics", timeout=5).read().decode()


def _shm_requests(d, want: int | None = None) -> int:
    """Requests the daemon counted as served over shared memory. The C++ loop
    hands its counts over every 10 ms, and a paused client's up to one
    receive slice (50 ms) late: with ``want``, wait (at most 10 s) for it."""
    for _ in range(200):
        m = re.search(r'adaptive_rt_requests_total\{transport="shm",outcome="ok"\} (\d+)', _metrics(d))
        n = int(m.group(1)) if m else 0
        if want is None or n >= want:
            return n
        threading.Event().wait(0.05)
    return n


def _handshake(path: str, images: int = 1):
    """A raw shm handshake: (socket, fd or None, answer header)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(path)
    h = json.dumps({"op": "shm", "images": images}).encode()
    s.sendall(FRAME.pack(MAGIC, len(h), 0) + h)
    data, fds, _, _ = socket.recv_fds(s, 1 << 16, 1)
    while len(data) < FRAME.size or len(data) < FRAME.size + FRAME.unpack(data[:FRAME.size])[1]:
        data += s.recv(1 << 16)
    _, hn, _ = FRAME.unpack(data[:FRAME.size])
    return s, (fds[0] if fds else None), json.loads(data[FRAME.size:FRAME.size + hn])


def _call(s: socket.socket, n: int, seq: int, magic: bytes = SHM_MAGIC) -> tuple:
    s.sendall(REQ.pack(magic, n, seq))
    buf = b""
    while len(buf) < RESP.size or len(buf) < RESP.size + sum(RESP.unpack(buf[:RESP.size])[6:8]):
        chunk = s.recv(4096)
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    magic, code, seq, rows, cols, ms, elen, mlen = RESP.unpack(buf[:RESP.size])
    return code, seq, rows, cols, buf[RESP.size:RESP.size + elen].decode(), buf[RESP.size + elen:].decode()


def test_shm_is_the_default_and_matches_frames(d, refs):  # noqa: F811
    xs, out, scale = refs
    before = _shm_requests(d)
    with Client(unix=d.sock) as c, Client(unix=d.sock, shm=False) as f:
        for i in range(4):
            y, e = c.infer(xs[i])
            assert c._shm is not None                       # it really went through the mapping
            assert y.shape == (10,)
            np.testing.assert_allclose(y, out[e][i], atol=TOL * scale)
            y2, e2 = f.infer(xs[i])
            assert f._shm is None and e2 == e
            np.testing.assert_allclose(y, y2, atol=TOL * scale)
        # a batch larger than the mapping: it is reopened larger, same answers
        y, e = c.infer(xs[:5])
        assert y.shape == (5, 10) and c._shm.images >= 5
        np.testing.assert_allclose(y, out[e][:5], atol=TOL * scale)
        y1, _ = c.infer(xs[2:3])                               # a batch of one stays a batch
        assert y1.shape == (1, 10)
        # the answer is the caller's copy: the next request does not change it
        keep = y.copy()
        c.infer(xs[7])
        np.testing.assert_array_equal(y, keep)
    assert _shm_requests(d, before + 7) - before == 7
    assert Client(unix=d.sock, shm=False).status()["stats"]["requests"] >= 7 + 4


def test_shm_errors_name_the_problem_and_keep_the_connection(d, refs):  # noqa: F811
    xs, out, scale = refs
    with Client(unix=d.sock) as c:
        c.infer(xs[0])
        bad = xs[0].copy()
        bad[3, 3, 0] = np.nan
        with pytest.raises(DaemonError) as e:
            c.infer(bad)
        assert e.value.kind == "bad_request" and "NaN" in str(e.value)
        with pytest.raises(DaemonError) as e:
            c.infer(np.zeros((3, 3, 1), np.float32))          # wrong shape: answered over frames
        assert e.value.kind == "bad_request" and "(28, 28, 1)" in str(e.value)
        with pytest.raises(DaemonError) as e:
            c.infer(np.zeros((200, 28, 28, 1), np.float32))   # over --max-body: no mapping that large
        assert e.value.kind == "too_large"
        y, en = c.infer(xs[1])                                 # the same client still works
        np.testing.assert_allclose(y, out[en][1], atol=TOL * scale)
    log = d.log.read_text()
    assert "Traceback" not in log and "internal_error" not in log, log[-2000:]


def test_hostile_shm_clients_cannot_hurt_the_daemon(d, refs):  # noqa: F811
    xs, out, scale = refs
    s, fd, head = _handshake(d.sock, images=2)
    lay = head["shm"]
    assert head["ok"] and fd is not None and lay["images"] == 2 and lay["input_shape"] == [28, 28, 1]
    # the mapping is sealed: no one can shrink it under the daemon (that would be SIGBUS there)
    with pytest.raises(OSError):
        os.ftruncate(fd, 0)
    with pytest.raises(OSError):
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, 0)                  # F_SEAL_SEAL: the seals are final
    assert os.fstat(fd).st_size == lay["size"]
    mm = mmap.mmap(fd, lay["size"])
    x_in = np.frombuffer(mm, np.float32, lay["input_bytes"] // 4, lay["input_offset"])
    y_out = np.frombuffer(mm, np.float32, lay["output_bytes"] // 4, lay["output_offset"])
    x_in[:784] = xs[3].reshape(-1)
    code, seq, rows, cols, entry, msg = _call(s, 0, 41)
    assert (code, seq, rows, cols) == (0, 41, 0, 10) and msg == ""
    np.testing.assert_allclose(y_out[:10], out[entry][3], atol=TOL * scale)
    # more images than the mapping holds: too_large, and nothing read or written past it
    code, seq, _, _, _, msg = _call(s, 3, 42)
    assert code == 2 and seq == 42 and "holds 2" in msg                 # ERROR_KINDS[1] == too_large
    code, _, _, _, _, msg = _call(s, 1 << 31, 43)
    assert code == 2
    # garbage written into the whole mapping (as a client may): its own answers only
    mm[:] = b"\xff" * lay["size"]
    code, _, _, _, _, msg = _call(s, 0, 44)
    assert code == 1 and "NaN" in msg                                    # 0xffffffff is a NaN
    # a bad record: answered, then the connection is closed
    code, _, _, _, _, msg = _call(s, 0, 45, magic=b"XXXX")
    assert code == 1 and "magic" in msg
    assert s.recv(16) == b""
    del x_in, y_out
    mm.close()
    os.close(fd)
    s.close()
    # clients that die mid-record, right after the handshake, or while holding the mapping
    for cut in (0, 7):
        s2, fd2, _ = _handshake(d.sock)
        s2.sendall(REQ.pack(SHM_MAGIC, 0, 1)[:cut])
        s2.close()
        os.close(fd2)
    s3, fd3, _ = _handshake(d.sock)
    mm3 = mmap.mmap(fd3, os.fstat(fd3).st_size)
    os.close(fd3)
    s3.close()
    mm3.close()
    # shm needs a positive image count; a frame connection stays one after the refusal
    s4, fd4, head = _handshake(d.sock, images=0)
    assert fd4 is None and head["error"] == "bad_request" and "images" in head["message"]
    s4.close()
    with Client(unix=d.sock) as c:
        y, e = c.infer(xs[5])
        np.testing.assert_allclose(y, out[e][5], atol=TOL * scale)
    assert urllib.request.urlopen(f"http://127.0.0.1:{d.port}/healthz", timeout=5).status == 200
    log = d.log.read_text()
    assert "Traceback" not in log and "internal_error" not in log, log[-2000:]


def test_pin_and_reload_reach_shm_clients_at_once(d, refs):  # noqa: F811
    """The C++ loop serves the active plan without Python; a pin (or a
    policy switch) and a reload must still take effect on the next request."""
    xs, out, scale = refs
    entries = sorted(out)
    with Client(unix=d.sock) as c:
        c.infer(xs[0])
        # a connected client waiting in the C++ loop holds the runtime, not an inference slot
        assert Client(unix=d.sock, shm=False).status()["inflight"] == 0
        for entry in entries + entries[::-1]:
            st, body = d.post("/v1/pin", json.dumps({"entry": entry}).encode(), JSON)
            assert st == 200, body
            y, e = c.infer(xs[1])
            assert e == entry
            np.testing.assert_allclose(y, out[entry][1], atol=TOL * scale)
        stop = threading.Event()
        errors: list = []

        def traffic():
            with Client(unix=d.sock) as c2:
                while not stop.is_set():
                    try:
                        y2, e2 = c2.infer(xs[2])
                        if np.abs(y2 - out[e2][2]).max() > TOL * scale:
                            errors.append(("mismatch", e2))
                    except Exception as ex:   # noqa: BLE001 - collected and asserted below
                        errors.append(repr(ex))
        t = threading.Thread(target=traffic)
        t.start()
        try:
            for _ in range(3):
                st, body = d.post("/v1/reload", b"{}", JSON)
                assert st == 200, body
        finally:
            stop.set()
            t.join(30)
        assert not errors, errors[:5]
        assert c.infer(xs[1])[1] == entries[0]                 # the pin outlived the reloads
    status = Client(unix=d.sock).status()
    assert status["reloads"] == 3 and status["inflight"] == 0


def test_mappings_count_against_the_buffered_budget(tmp_path, pools, refs):  # noqa: F811
    """A mapping's bytes are held against --max-buffered while it lives: with
    the budget spent, a new mapping (and a frame) is answered busy at once;
    once the holder goes, the same client gets its mapping."""
    xs, out, scale = refs
    d = DaemonProc(tmp_path, pools[0], "--max-buffered", "262144")
    try:
        hog, fd, head = _handshake(d.sock, images=82)        # ~260 KB of the 256 KiB budget
        assert head["ok"] and fd is not None
        s, fd2, head = _handshake(d.sock)
        assert fd2 is None and head["error"] == "busy" and "limit 262144" in head["message"]
        s.close()
        with Client(unix=d.sock) as c:
            with pytest.raises(DaemonError) as e:
                c.infer(xs[0])
            assert e.value.kind == "busy" and c._shm is None
            os.close(fd)
            hog.close()
            for _ in range(100):                               # the daemon's thread lets go
                try:
                    y, en = c.infer(xs[0])
                    break
                except DaemonError as ex:
                    assert ex.kind == "busy"
                    threading.Event().wait(0.05)
            assert c._shm is not None
            np.testing.assert_allclose(y, out[en][0], atol=TOL * scale)
    finally:
        assert d.stop() == 0


def test_sigterm_with_shm_clients_connected(tmp_path, pools, refs):  # noqa: F811
    xs, _, _ = refs
    d = DaemonProc(tmp_path, pools[0])
    clients = [Client(unix=d.sock) for _ in range(3)]
    for c in clients:
        c.infer(xs[0])
    assert d.stop(signal.SIGTERM, timeout=30) == 0
    assert "unfinished=0" in d.log.read_text()
    for c in clients:
        with pytest.raises((ConnectionError, OSError, DaemonError)):
            c.infer(xs[0])
        c.close()


def test_idle_connections_are_closed_and_the_client_reconnects(tmp_path, pools, refs):  # noqa: F811
    """--idle-timeout closes an idle shm connection (its thread ends and its
    bytes are released); the client's next request reopens one by itself —
    over frames too."""
    xs, out, scale = refs
    d = DaemonProc(tmp_path, pools[0], "--idle-timeout", "0.3")
    try:
        with Client(unix=d.sock) as c, Client(unix=d.sock, shm=False) as f:
            c.infer(xs[0])
            f.infer(xs[0])
            first = c._shm
            threading.Event().wait(1.0)
            y, e = c.infer(xs[1])
            assert c._shm is not None and c._shm is not first
            np.testing.assert_allclose(y, out[e][1], atol=TOL * scale)
            y, e = f.infer(xs[1])
            np.testing.assert_allclose(y, out[e][1], atol=TOL * scale)
        assert json.loads(urllib.request.urlopen(f"http://127.0.0.1:{d.port}/v1/status", timeout=5).read())
    finally:
        assert d.stop() == 0

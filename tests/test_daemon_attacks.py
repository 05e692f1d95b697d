"""The defects an outside team found by attacking the daemon, each sent the
same way to a real daemon process: every request gets a well-formed answer
that names the problem (never a traceback in the log, never invalid JSON),
admin routes refuse what a web page can send, a second daemon never takes a
live daemon's socket, SIGHUP while starting is a reload, a pin outlives a
reload."""
from __future__ import annotations

import gzip
import json
import signal
import socket
import struct
import subprocess
import sys
import time

import numpy as np
import pytest

from adaptive_rt.daemon import Client, DaemonError
from adaptive_rt.daemon.protocol import ProtocolError, float32_bytes, npy_bytes, pack_frame
from adaptive_rt.io.poolfile import write_pool
from adaptive_rt.io.randompool import random_pool

from test_daemon import JSON, DaemonProc, _raw_unix, pools  # noqa: F401  (the pools fixture)


def _http_raw(port: int, data: bytes, timeout=3.0) -> tuple[int, dict, bytes]:
    """Send raw bytes, read one response: (status, headers, body)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        head, _, body = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:] if ":" in ln)}
        n = 0 if data.startswith(b"HEAD ") else int(headers.get("content-length", "0"))
        while len(body) < n:
            chunk = s.recv(65536)
            if not chunk:
                break
            body += chunk
        return status, headers, body
    finally:
        s.close()


def _req(method: str, path: str, body: bytes = b"", headers: dict | None = None, length: bool = True) -> bytes:
    h = dict(headers or {})
    if length:
        h.setdefault("Content-Length", str(len(body)))
    return (f"{method} {path} HTTP/1.1\r\nHost: x\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items())
            + "\r\n").encode("latin1") + body


def _npy_with_header(header: str, data: bytes = b"") -> bytes:
    h = header.encode("latin1")
    pad = 64 - (10 + len(h) + 1) % 64
    h = h + b" " * pad + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h + data


def _spawn_serve(log, *args, until: str = "ready"):
    """`adaptive-rt serve *args` with its log in ``log``; returns the process
    once the log shows ``until``."""
    with open(log, "w") as f:
        p = subprocess.Popen([sys.executable, "-m", "adaptive_rt", "serve", *map(str, args)], stdout=f,
                             stderr=subprocess.STDOUT)
    t0 = time.monotonic()
    while until not in log.read_text():
        assert p.poll() is None and time.monotonic() - t0 < 60, log.read_text()
        time.sleep(0.02)
    return p


@pytest.fixture()
def d(tmp_path, pools):  # noqa: F811
    p = DaemonProc(tmp_path, pools[0])
    yield p
    p.stop()


def _no_traceback(d: DaemonProc) -> None:
    log = d.log.read_text()
    assert "Traceback" not in log and "internal_error" not in log, log[-3000:]


def test_hostile_bodies_get_answers_that_name_the_problem(d):
    npy = "application/x-npy"
    cases = [
        # (request bytes, status, words the message must contain)
        (_req("POST", "/v1/infer", b"{}", {"Content-Type": "application/json", "Content-Length": "\u00b2"},
              length=False), 400, "content-length"),
        (_req("POST", "/v1/infer", _npy_with_header("{'descr': '<f4', 'fortran_order': False, "
                                                     "'shape': (65536, 65536, 65536, 65536), }"),
              {"Content-Type": npy}), 413, "too large"),
        # empty (a 0 dimension) but the other dimensions past any array's size (found by the npy fuzz target)
        (_req("POST", "/v1/infer", _npy_with_header("{'descr': '<f4', 'fortran_order': False, "
                                                     "'shape': (0, 12, 123333333, 3312, 123333233, 33333, 1)}"),
              {"Content-Type": npy}), 413, "too large"),
        (_req("POST", "/v1/infer", _npy_with_header("{[1]: 2}"), {"Content-Type": npy}), 400, "dictionary"),
        (_req("POST", "/v1/infer", b'{"inputs": [' + b"9" * 400 + b"]}", {"Content-Type": "application/json"}),
         400, "inputs"),
        # a number past float32 would become infinity: refused, no overflow warning in the log
        (_req("POST", "/v1/infer", b'{"inputs": [[1e39]]}', {"Content-Type": "application/json"}), 400, "float32"),
    ]
    for raw, status, words in cases:
        st, _, body = _http_raw(d.port, raw)
        msg = json.loads(body)
        assert st == status and words in msg["message"].lower(), (raw[:120], st, msg)
    # the same tensor cases on the Unix socket: bad_request / too_large, never internal
    for header, payload, kind in (({"op": "infer", "dtype": "float32", "shape": [65536] * 4}, b"", "too_large"),
                                  ({"op": "infer", "dtype": "float32", "shape": [0] + [65536] * 4}, b"", "too_large"),
                                  ({"op": "infer", "dtype": "float32", "shape": [10 ** 400]}, b"", "bad_request")):
        reply = _raw_unix(d.sock, pack_frame(header, payload))
        hl = struct.unpack("<I", reply[4:8])[0]
        assert json.loads(reply[16:16 + hl])["error"] == kind
    # and the daemon still serves
    y, _ = Client(unix=d.sock).infer(np.zeros((1, 28, 28, 1), np.float32))
    assert y.shape == (1, 10)
    _no_traceback(d)


def test_float32_bytes_is_exact_and_refuses_huge_shapes_even_when_empty():
    assert float32_bytes((2, 3, 5), "x") == 120
    assert float32_bytes((0, 7), "x") == 0
    assert float32_bytes((1 << 38,), "x") == 1 << 40          # the limit itself is allowed
    for shape in [(1 << 38, 2), (0, 1 << 20, 1 << 20), (1 << 62, 1 << 62)]:
        with pytest.raises(ProtocolError, match="too large"):
            float32_bytes(shape, "x")


def test_http_conformance(d):
    st, h, body = _http_raw(d.port, _req("GET", "/v1/infer"))
    assert st == 405 and h["allow"] == "POST" and json.loads(body)["error"] == "method_not_allowed"
    st, h, _ = _http_raw(d.port, _req("POST", "/healthz"))
    assert st == 405 and h["allow"] == "GET, HEAD"
    st, h, body = _http_raw(d.port, _req("HEAD", "/healthz"))
    assert st == 200 and body == b"" and h["content-length"] == "3"            # the GET's headers, no body
    st, _, body = _http_raw(d.port, _req("POST", "/v1/infer", length=False,
                                         headers={"Content-Type": "application/json"}))
    assert st == 400 and "json" in json.loads(body)["message"].lower()          # no length = an empty body, not 411
    st, _, body = _http_raw(d.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: 1\nX-B: 2\r\n\r\n")
    assert st == 400 and "bare" in json.loads(body)["message"]
    x = npy_bytes(np.zeros((1, 28, 28, 1), np.float32))
    cut = gzip.compress(x)[:-12]
    st, _, body = _http_raw(d.port, _req("POST", "/v1/infer", cut, {"Content-Type": "application/x-npy",
                                                                     "Content-Encoding": "gzip"}))
    assert st == 400 and "truncated" in json.loads(body)["message"]
    st, _, body = _http_raw(d.port, _req("POST", "/v1/infer", x, {"Content-Type": "text/csv"}))
    assert st == 415 and json.loads(body)["error"] == "unsupported_media_type"
    st, h, _ = _http_raw(d.port, _req("GET", "/v1/status"))
    assert st == 200 and "charset=utf-8" in h["content-type"]
    _no_traceback(d)


def test_admin_routes_refuse_what_a_web_page_can_send(d):
    body = json.dumps({"entry": "e0"}).encode()
    # a cross-site form or fetch without preflight: text/plain, or an Origin header
    st, _, _ = _http_raw(d.port, _req("POST", "/v1/pin", body, {"Content-Type": "text/plain"}))
    assert st == 415
    st, _, resp = _http_raw(d.port, _req("POST", "/v1/pin", body, {"Content-Type": "application/json",
                                                                    "Origin": "http://evil.example"}))
    assert st == 403 and json.loads(resp)["error"] == "forbidden"
    assert Client(unix=d.sock).status()["pinned"] is None                      # nothing was pinned
    st, _, resp = _http_raw(d.port, _req("POST", "/v1/pin", body, JSON))
    assert st == 200 and json.loads(resp)["pinned"] == "e0"


def test_admin_routes_without_enable_admin_say_so(tmp_path, pools):  # noqa: F811
    p = DaemonProc(tmp_path, pools[0], admin=False)
    try:
        st, _, body = _http_raw(p.port, _req("POST", "/v1/reload", b"", JSON))
        assert st == 404 and "--enable-admin" in json.loads(body)["message"]
    finally:
        p.stop()


def test_non_finite_outputs_are_an_error_kind_not_invalid_json(tmp_path, tiny_space):
    entries, tensors = random_pool(tiny_space, 2, seed=3)
    # classifier weights at the top of float32: the logits overflow to infinity (the file itself is finite)
    big = {"classifier.weight": 3e38, "head.conv.bn.bias": 1e3}
    tensors = {k: (np.full_like(v, big[k]) if k in big else v) for k, v in tensors.items()}
    path = tmp_path / "huge.safetensors"
    write_pool(path, tiny_space, entries, tensors)
    p = DaemonProc(tmp_path, path)
    try:
        x = np.full((1, 28, 28, 1), 1.0, np.float32)
        st, _, body = _http_raw(p.port, _req("POST", "/v1/infer", json.dumps({"inputs": x.tolist()}).encode(),
                                             {"Content-Type": "application/json"}))
        msg = json.loads(body)                                       # valid JSON whatever happened
        assert st == 500 and msg["error"] == "non_finite", msg
        with pytest.raises(DaemonError) as e:
            Client(unix=p.sock).infer(x)
        assert e.value.kind == "non_finite"
        import urllib.request
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{p.port}/metrics", timeout=5).read().decode()
        assert 'kind="non_finite"' in metrics
    finally:
        p.stop()


def test_a_second_daemon_never_takes_a_live_socket(tmp_path, pools):  # noqa: F811
    first = DaemonProc(tmp_path, pools[0])
    try:
        r = subprocess.run([sys.executable, "-m", "adaptive_rt", "serve", str(pools[0]), "--socket", first.sock],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 2 and "another process is listening" in r.stderr, r.stderr[-2000:]
        assert Client(unix=first.sock).status()["active"]             # the first still answers on its socket
    finally:
        first.stop()
    # a stale socket (its daemon gone) is replaced
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(first.sock)
    stale.close()
    second = DaemonProc(tmp_path, pools[0])
    second.stop()


def test_stopping_never_removes_another_daemons_socket(tmp_path, pools):  # noqa: F811
    first = DaemonProc(tmp_path, pools[0])
    sock = first.sock
    # someone replaces the path while the first runs (e.g. an admin starts a second daemon by hand)
    moved = tmp_path / "first-moved.sock"
    import os
    os.rename(sock, moved)
    other = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    other.bind(sock)
    other.listen(1)
    try:
        assert first.stop() == 0
        assert os.path.exists(sock)                                  # not the first's to remove
    finally:
        other.close()


def test_sighup_while_starting_is_a_reload_not_death(tmp_path, pools):  # noqa: F811
    log = tmp_path / "d.log"
    p = _spawn_serve(log, pools[0], "--socket", tmp_path / "s.sock", "--slo-ms", "50", until="starting")
    try:                       # the handler is in place from "starting" on
        p.send_signal(signal.SIGHUP)
        t0 = time.monotonic()
        while "reloaded" not in log.read_text():
            assert p.poll() is None, log.read_text()                 # exit 129 was the defect
            assert time.monotonic() - t0 < 60, log.read_text()
            time.sleep(0.05)
    finally:
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=30) == 0


def test_a_pin_outlives_a_reload(d):
    st, _, _ = _http_raw(d.port, _req("POST", "/v1/pin", json.dumps({"entry": "e1"}).encode(), JSON))
    assert st == 200
    st, _, body = _http_raw(d.port, _req("POST", "/v1/reload", b"", JSON))
    assert st == 200 and json.loads(body)["ok"]
    s = Client(unix=d.sock).status()
    assert s["pinned"] == "e1" and s["active"] == "e1" and s["reloads"] == 1
    d.p.send_signal(signal.SIGHUP)
    t0 = time.monotonic()
    while Client(unix=d.sock).status()["reloads"] < 2 and time.monotonic() - t0 < 30:
        time.sleep(0.05)
    assert Client(unix=d.sock).status()["pinned"] == "e1"


def test_metrics_follow_prometheus_conventions(d):
    """Parsed by Prometheus' own client library: base units, a _seconds
    histogram per entry, ratios in 0..1, not_found among the errors, and a
    content type with charset."""
    from prometheus_client.parser import text_string_to_metric_families
    Client(unix=d.sock).infer(np.zeros((2, 28, 28, 1), np.float32))
    _http_raw(d.port, _req("GET", "/no/such/route"))
    st, h, body = _http_raw(d.port, _req("GET", "/metrics"))
    assert st == 200 and h["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    fams = {f.name: f for f in text_string_to_metric_families(body.decode())}
    hist = fams["adaptive_rt_inference_duration_seconds"]
    assert hist.type == "histogram"
    buckets = [s for s in hist.samples if s.name.endswith("_bucket")]
    assert buckets and all(float(s.labels["le"]) <= 1.0 or s.labels["le"] == "+Inf" for s in buckets)
    total = [s for s in hist.samples if s.name.endswith("_sum")]
    assert total and 0 < total[0].value < 1.0                       # seconds, not milliseconds
    errs = {s.labels["kind"]: s.value for s in fams["adaptive_rt_errors"].samples}
    assert errs.get("not_found", 0) >= 1
    ratio = fams["adaptive_rt_monitor_cpu_overhead_ratio"].samples[0].value
    assert 0 <= ratio < 1
    assert not any(n.endswith(("_ms", "_percent")) for n in fams)


def test_client_with_no_argument_finds_the_default_socket(tmp_path, pools, monkeypatch):  # noqa: F811
    """`adaptive-rt serve POOL` with no --socket listens where Client() looks first."""
    sock = tmp_path / "default.sock"
    monkeypatch.setenv("ADAPTIVE_RT_SOCKET", str(sock))
    p = _spawn_serve(tmp_path / "d.log", pools[0], "--slo-ms", "50")
    try:
        with Client() as c:
            assert c.unix == str(sock) and c.status()["active"]
    finally:
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=30) == 0
    monkeypatch.setenv("ADAPTIVE_RT_SOCKET", str(tmp_path / "nothing-here.sock"))
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    import os
    if not os.path.exists("/run/adaptive-rt/adaptive-rt.sock"):
        with pytest.raises(FileNotFoundError, match="no adaptive-rt daemon socket"):
            Client()


def test_memory_stays_bounded_under_many_maximal_bodies(tmp_path, pools):  # noqa: F811
    """64 connections at once, each sending a maximal body: the daemon-wide
    byte budget admits what fits (the rest is answered busy and drained), so
    RSS grows by about the budget, not 64 bodies, and comes back after."""
    import threading
    import psutil
    max_body, budget = 4 << 20, 8 << 20
    log = tmp_path / "big.log"      # (DaemonProc fixes --max-body at 256 KiB: a daemon of its own)
    proc = _spawn_serve(log, pools[0], "--socket", tmp_path / "big.sock", "--http", "127.0.0.1:0", "--slo-ms", "50",
                        "--max-body", max_body, "--max-buffered", budget, "--body-timeout", "20")
    try:
        import re
        port = int(re.search(r'port=(\d+)', log.read_text()).group(1))
        ps = psutil.Process(proc.pid)
        rss0 = ps.memory_info().rss
        n_img = (max_body - 128) // (28 * 28 * 4)
        body = npy_bytes(np.zeros((n_img, 28, 28, 1), np.float32))
        assert len(body) <= max_body
        raw = _req("POST", "/v1/infer", body, {"Content-Type": "application/x-npy"})
        statuses, peak, stop = [], [rss0], threading.Event()

        def client():
            try:
                statuses.append(_http_raw(port, raw, timeout=60)[0])
            except OSError as e:
                statuses.append(type(e).__name__)

        def watch():
            while not stop.is_set():
                peak[0] = max(peak[0], ps.memory_info().rss)
                time.sleep(0.005)
        w = threading.Thread(target=watch)
        w.start()
        ts = [threading.Thread(target=client) for _ in range(64)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(timeout=120)
        stop.set()
        w.join()
        ok = statuses.count(200)
        assert ok >= 1 and statuses.count(503) >= 1 and ok + statuses.count(503) == 64, statuses
        growth = peak[0] - rss0
        print(f"RSS growth {growth / 2**20:.1f} MiB, {ok} admitted, {statuses.count(503)} busy")
        assert growth < budget + (48 << 20), (growth >> 20, "MiB")     # 64 bodies would be 256 MiB
        st, _, _ = _http_raw(port, _req("GET", "/healthz"))
        assert st == 200
        assert "Traceback" not in log.read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def test_connections_over_the_cap_are_answered_busy(tmp_path, pools):  # noqa: F811
    p = DaemonProc(tmp_path, pools[0], "--max-connections", "3")
    try:
        held = []
        for _ in range(3):       # three kept-alive connections, each known to the daemon: it answered on it
            s = socket.create_connection(("127.0.0.1", p.port), timeout=10)
            s.sendall(_req("GET", "/healthz"))
            assert s.recv(65536).startswith(b"HTTP/1.1 200")
            held.append(s)
        st, _, body = _http_raw(p.port, _req("GET", "/healthz"))
        assert st == 503 and "connections open" in json.loads(body)["message"]
        for s in held:
            s.close()
        t0 = time.monotonic()    # the daemon notices the closes on its own time: poll, no fixed wait
        while _http_raw(p.port, _req("GET", "/healthz"))[0] != 200:
            assert time.monotonic() - t0 < 30
            time.sleep(0.05)
    finally:
        p.stop()

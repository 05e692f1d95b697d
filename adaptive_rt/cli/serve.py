"""adaptive-rt serve: the inference daemon."""
from __future__ import annotations

import argparse

from ..serve.policy import POLICIES
from .common import UsageError, arguments, command, open_pool, pool_argument


def _serve_args(p: argparse.ArgumentParser) -> None:
    from ..daemon.base import Limits
    d = Limits()
    pool_argument(p, required=False, help="pool file (.safetensors) or a shipped pool's name; SIGHUP reloads it")
    p.add_argument("--socket", default=None,
                   help="Unix socket path (default: $ADAPTIVE_RT_SOCKET, else $XDG_RUNTIME_DIR/adaptive-rt.sock, else "
                        "/tmp/adaptive-rt-UID.sock; the system service uses /run/adaptive-rt/adaptive-rt.sock)")
    p.add_argument("--no-socket", action="store_true", help="HTTP only")
    p.add_argument("--group-access", action="store_true", help="socket mode 0660 instead of 0600")
    p.add_argument("--http", default=None, help="also serve HTTP on HOST:PORT (loopback only unless --allow-remote)")
    p.add_argument("--allow-remote", action="store_true", help="allow a non-loopback HTTP address")
    p.add_argument("--enable-admin", action="store_true", help="enable POST /v1/reload")
    p.add_argument("--slo-ms", type=float, default=None, help="p95 latency target per request")
    p.add_argument("--memory-cap", default=None, help="e.g. 64MB: entries needing more are never used")
    p.add_argument("--policy", default="adaptive", choices=POLICIES, help="how the entry is chosen")
    p.add_argument("--backend", default="native",
                   help="what runs the entries: native, onnxruntime, litert (export extra) or torch (train extra)")
    p.add_argument("--max-threads", type=int, default=None, help="threads an inference may use (default: up to 4)")
    p.add_argument("--max-body", type=int, default=d.max_body, help=f"bytes (default {d.max_body})")
    p.add_argument("--max-header", type=int, default=d.max_header, help=f"bytes (default {d.max_header})")
    p.add_argument("--max-json-depth", type=int, default=d.max_json_depth, help="nesting of a JSON request")
    p.add_argument("--header-timeout", type=float, default=d.header_timeout_s, help="seconds")
    p.add_argument("--body-timeout", type=float, default=d.body_timeout_s, help="seconds")
    p.add_argument("--idle-timeout", type=float, default=d.idle_timeout_s, help="seconds")
    p.add_argument("--max-concurrent", type=int, default=d.max_concurrent, help="inferences at once")
    p.add_argument("--max-queue", type=int, default=d.max_queue, help="inferences waiting; beyond: busy (503)")
    p.add_argument("--max-connections", type=int, default=d.max_connections,
                   help="open connections over both transports; beyond: answered busy and closed")
    p.add_argument("--max-buffered", type=int, default=d.max_buffered,
                   help="request bytes held at once over all connections; a body beyond it: busy (503)")
    p.add_argument("--drain", type=float, default=d.drain_s, help="seconds in-flight requests get on SIGTERM")
    p.add_argument("--log-format", default="text", choices=["text", "json"], help="one line per event")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warn", "error"], help="least level logged")


@command("serve", "run the inference daemon (Unix socket, optional loopback HTTP)")
@arguments(_serve_args)
def cmd_serve(a: argparse.Namespace) -> int:
    from ..daemon.service import catch_early_sighup
    catch_early_sighup()          # a SIGHUP while the pool is opened is a reload once ready, not death
    import asyncio
    from ..daemon.base import Limits, Log, default_socket_path
    from ..daemon.service import Daemon
    if a.pool is None:
        raise UsageError("serve: give the pool (a file, or a shipped pool's name such as mnist5k-mbv3)")
    pool = open_pool(a.pool)   # a clear error for a bad file before anything listens; the daemon serves it
    http = None
    if a.http:
        host, _, port = a.http.rpartition(":")
        if not host or not port.isdigit() or int(port) > 65535:
            raise UsageError(f"--http {a.http!r} must be HOST:PORT")
        http = (host.strip("[]"), int(port))
    if a.no_socket and not http:
        raise UsageError("--no-socket needs --http")
    if a.policy.replace("_", "-") not in POLICIES:
        raise UsageError(f"--policy must be one of {', '.join(POLICIES)}")
    for name in ("max_body", "max_header", "max_json_depth", "max_concurrent", "max_connections", "max_buffered"):
        if getattr(a, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1")
    if a.max_queue < 0 or min(a.header_timeout, a.body_timeout, a.idle_timeout, a.drain) <= 0:
        raise UsageError("--max-queue must be >= 0 and timeouts positive")
    if a.max_buffered < a.max_body:
        raise UsageError(f"--max-buffered ({a.max_buffered}) must be at least --max-body ({a.max_body})")
    limits = Limits(a.max_body, a.max_header, a.max_json_depth, a.header_timeout, a.body_timeout, a.idle_timeout,
                    a.max_concurrent, a.max_queue, a.drain, max_connections=a.max_connections,
                    max_buffered=a.max_buffered)
    from ..serve.backends import BACKENDS
    if a.backend not in BACKENDS:
        raise UsageError(f"--backend must be one of {', '.join(BACKENDS)}")
    kw = {"slo_ms": a.slo_ms, "memory_cap": a.memory_cap, "policy": a.policy, "backend": a.backend}
    if a.max_threads:
        kw["max_threads"] = a.max_threads
    try:
        d = Daemon(a.pool, None if a.no_socket else (a.socket or default_socket_path()), http, a.allow_remote,
                   0o660 if a.group_access else 0o600, a.enable_admin, limits, kw, Log(a.log_format, a.log_level),
                   pool=pool)
        return asyncio.run(d.run())
    except (ValueError, OSError) as e:
        raise UsageError(str(e)) from None

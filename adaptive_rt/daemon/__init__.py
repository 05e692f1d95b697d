"""The inference daemon (``adaptive-rt serve``) and its client.

- ``service``: :class:`Daemon`, the core — one Runtime, admission (slots and a
  bounded queue), reload, status, metrics, start-up and graceful stop;
- ``unix`` / ``http``: the two transports, each a connection handler over the core
  (HTTP heads parsed by h11); ``shm``: shared-memory tensors over the Unix socket;
- ``protocol``: frames, npy and JSON tensors; ``metrics``: Prometheus text;
- ``systemd``: readiness notifications and the watchdog; ``base``: limits, log, timed I/O;
- ``client``: :class:`Client` for apps (Unix socket or HTTP).

The client side imports nothing of the server (nor numpy beyond arrays).
"""
from .client import Client, DaemonError
from .protocol import ProtocolError

__all__ = ["Client", "DaemonError", "ProtocolError"]

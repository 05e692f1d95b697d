"""The sampler: a source read on a background thread at a fixed rate."""
from __future__ import annotations

import threading
import time
from collections import deque

from .sources import MonitorError, ResourceSnapshot, Source, make_source

__all__ = ["ResourceMonitor"]


class ResourceMonitor:
    """Samples ``source`` every 1/``hz`` seconds on a daemon thread.

    ``latest()`` is the newest snapshot (taken once at start, so never None
    after ``start()``); ``history()`` up to ``keep`` of the newest ones;
    ``overhead_pct()`` the CPU the sampling thread itself used, as a
    percentage of one core over its running time."""

    def __init__(self, source: Source | str = "psutil", hz: float = 10.0, keep: int = 600):
        if not (0.1 <= hz <= 1000):
            raise MonitorError(f"monitor rate {hz} Hz must be in [0.1, 1000]")
        self.source = make_source(source) if isinstance(source, str) else source
        self.period = 1.0 / hz
        self._latest: ResourceSnapshot | None = None
        self._history: deque = deque(maxlen=max(1, keep))
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._cpu = 0.0
        self._wall0 = 0.0
        self._wall = 0.0
        self.errors = 0

    def sample_now(self) -> ResourceSnapshot:
        """Read the source once, now (also what the thread does every period)."""
        self._take()
        return self._latest

    def _take(self) -> None:
        snap = self.source.sample()
        with self._lock:
            self._latest = snap
            self._history.append(snap)

    def _run(self) -> None:
        c0 = time.thread_time()
        nxt = time.monotonic()
        while not self._stop.is_set():
            try:
                self._take()
            except Exception:   # a sensor failing mid-run must not stop monitoring
                self.errors += 1
            self._cpu = time.thread_time() - c0
            self._wall = time.monotonic() - self._wall0
            nxt += self.period
            self._stop.wait(max(0.0, nxt - time.monotonic()))

    def start(self, thread: bool = True) -> "ResourceMonitor":
        """Take the first sample; then sample every period on a thread (or,
        with ``thread=False``, only when :meth:`sample_now` is called)."""
        if self._thread is not None:
            return self
        self._take()
        if not thread:
            return self
        self._wall0 = time.monotonic()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="adaptive-rt-monitor", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._thread = None

    def __enter__(self) -> "ResourceMonitor":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def latest(self) -> ResourceSnapshot | None:
        with self._lock:
            return self._latest

    def history(self) -> list[ResourceSnapshot]:
        with self._lock:
            return list(self._history)

    def overhead_pct(self) -> float:
        return 100.0 * self._cpu / self._wall if self._wall > 0 else 0.0

"""The adaptive runtime: one pool, one engine, a monitor and a policy.

    with Runtime.open("pool.safetensors", slo_ms=5.0) as rt:
        logits, entry = rt.infer(image)          # HWC float32 -> [classes]

``Runtime.open`` loads the pool once and prebuilds a plan for every entry
(on the native engine; ``backend="onnxruntime"`` or ``"litert"`` run the
exported entries on those runtimes instead, see ``adaptive_rt.serve.backends``);
a controller thread reads the resource monitor at its rate (default 10 Hz),
asks the policy (``policy.decide``) for the entry and thread count that keep
the p95 latency under the SLO and inside the memory, battery and thermal
caps, and swaps the active plan when the answer changes. The swap replaces
one (plan, threads) tuple: every request reads it once when it starts, so a
request in flight completes on the plan it started with and no request
ever sees a mixed plan; concurrent callers are safe.

The policy plans with the device profile (``adaptive-rt calibrate``). If
there is none for this pool (and batch size), the runtime measures a quick
one on open, says so on the ``adaptive_rt`` logger, and saves it for next
time.

Bad input (not a float32 array, wrong shape, NaN/inf, an empty batch)
raises ``InputError`` (a ValueError) or ``TypeError`` naming the problem
before anything runs; the runtime keeps serving.
"""
from __future__ import annotations

import logging
import math
import os
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, replace
from dataclasses import fields as dataclass_fields
from typing import Callable, Iterable, Sequence

import numpy as np

from ..engine import DEFAULT_THREADS, Engine, Plan
from ..io.poolfile import PoolFile, load_pool
from .backends import make_backend
from .monitor import ResourceMonitor, ResourceSnapshot, Source
from .policy import POLICIES, Budget, Decision, EntryProfile, PolicyState, decide
from .profile import (ProfileError, calibrate, default_profile_path, load_profile, merge_profiles, profile_entries,
                      read_profile, save_profile, taken_under_load)

__all__ = ["Runtime", "InputError", "SwitchEvent", "POLICIES", "parse_bytes"]

log = logging.getLogger("adaptive_rt")



class InputError(ValueError):
    """An input the runtime refuses; the message names the problem."""


@dataclass(frozen=True)
class SwitchEvent:
    time: float          # seconds since the runtime opened
    old: str
    new: str
    threads: int
    reason: str


_UNITS = {"": 1, "b": 1, "k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9,
          "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30}


def parse_bytes(v: int | str | None) -> int | None:
    """``64_000_000``, ``"64MB"``, ``"64 MiB"`` -> bytes (None stays None)."""
    if v is None:
        return None
    if isinstance(v, bool):
        raise ValueError(f"memory size {v!r} is not a number of bytes")
    if isinstance(v, (int, np.integer)):
        n = int(v)
    else:
        m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*", str(v))
        if not m or m.group(2).lower() not in _UNITS:
            raise ValueError(f"memory size {v!r} is not understood (use bytes or e.g. '64MB', '64MiB')")
        n = int(float(m.group(1)) * _UNITS[m.group(2).lower()])
    if n <= 0:
        raise ValueError(f"memory size {v!r} must be positive")
    return n


def _pct(values: Sequence[float]) -> dict | None:
    if not len(values):
        return None
    a = np.asarray(values)
    return {"p50": float(np.percentile(a, 50)), "p95": float(np.percentile(a, 95)),
            "p99": float(np.percentile(a, 99))}


PolicyFn = Callable[[ResourceSnapshot, PolicyState, "float | None", Budget, Sequence[EntryProfile], float],
                    "tuple[Decision, PolicyState]"]


def _fixed(pick: Callable[[Sequence[EntryProfile]], EntryProfile]) -> PolicyFn:
    """A policy that always serves one entry at its fastest calibrated thread count."""
    def policy(snap, state, observed, budget, profiles, now):
        p = pick(profiles)
        t = min(p.latency_ms, key=lambda k: (p.latency_ms[k], k))
        switched = p.id != state.entry
        return (Decision(p.id, t, p.latency_ms[t], "fixed"),
                replace(state, entry=p.id, threads=t, switches=state.switches + int(switched)))
    return policy


def _policy_fn(policy: str | PolicyFn) -> tuple[str, PolicyFn]:
    if callable(policy):
        return getattr(policy, "__name__", "custom"), policy
    name = str(policy).replace("_", "-")
    if name == "adaptive":
        return name, decide
    if name == "fixed-largest":
        return name, _fixed(lambda ps: max(ps, key=lambda p: (p.mflops, p.id)))
    if name == "fixed-smallest":
        return name, _fixed(lambda ps: min(ps, key=lambda p: (p.mflops, p.id)))
    raise ValueError(f"unknown policy {policy!r}; use one of {', '.join(POLICIES)} or a callable like policy.decide")


class _EntryStats:
    __slots__ = ("requests", "images", "violations", "time_s", "lat")

    def __init__(self, keep: int):
        self.requests = 0
        self.images = 0
        self.violations = 0
        self.time_s = 0.0
        self.lat: deque = deque(maxlen=keep)


class Runtime:
    """Serves a pool within a budget; see the module docstring.

    Use :meth:`open` (a context manager)."""

    def __init__(self, pool: PoolFile, *, slo_ms: float | None = None,
                 memory_cap: int | str | None = None, policy: str | PolicyFn = "adaptive",
                 backend: str = "native", monitor: str | Source | ResourceMonitor = "psutil", hz: float = 10.0,
                 profile: str | Sequence[EntryProfile] | None = None, batch: int = 1,
                 max_threads: int | None = None, window_s: float = 1.0, check_finite: bool = True,
                 budget: dict | None = None, keep: int = 4096, resident: bool = False,
                 clock: Callable[[], float] = time.monotonic, controller: bool = True):
        if not isinstance(batch, int) or isinstance(batch, bool) or not (1 <= batch <= 4096):
            raise ValueError(f"batch={batch!r} must be an integer in 1..4096 (images per request)")
        if window_s <= 0:
            raise ValueError("window_s must be positive")
        self.pool = pool
        self.batch = batch
        self.window_s = float(window_s)
        self.check_finite = bool(check_finite)
        self.policy_name, self._policy = _policy_fn(policy)
        cap = parse_bytes(memory_cap)
        self.budget = Budget(slo_ms=math.inf if slo_ms is None else float(slo_ms), memory_cap_bytes=cap,
                             **(budget or {}))
        self.backend = make_backend(backend, pool, max_threads if max_threads is not None else DEFAULT_THREADS,
                                    resident)
        self._threads = self.backend.thread_counts()
        self._ids = [e.id for e in pool.entries]
        self._input_shape = pool.input_shape
        self.profiles = self._profiles(profile)
        small = min(self.profiles, key=lambda p: p.memory_bytes)
        if cap is not None and small.memory_bytes > cap:
            raise ValueError(f"memory_cap {cap:,} bytes is below what the smallest entry needs "
                             f"({small.id}: {small.memory_bytes:,} bytes)")
        for e in self._ids if self.backend.resident else ():
            self.backend.prepare(e)            # every plan / session built now
        self._by_id = {p.id: p for p in self.profiles}

        # monitor: ours to start and stop unless the caller passed a running one
        if isinstance(monitor, ResourceMonitor):
            self.monitor, self._own_monitor = monitor, False
        else:
            self.monitor, self._own_monitor = ResourceMonitor(monitor, hz=hz), True
        self._period = 1.0 / hz if self._own_monitor else self.monitor.period
        self._clock = clock
        self._manual = not controller
        self.monitor.start(thread=not (self._manual and self._own_monitor))

        self._lock = threading.Lock()             # stats
        self._switch_lock = threading.Lock()      # switches (controller, pin)
        self._callbacks: list[Callable[[SwitchEvent], None]] = []
        self._entry_stats = {e: _EntryStats(keep) for e in self._ids}
        self._recent: deque = deque(maxlen=keep)  # (t_end, entry, ms) normalised to `batch` images
        self._all_lat: deque = deque(maxlen=4 * keep)
        self._timeline: deque = deque(maxlen=max(600, int(600 * hz)))
        self._requests = self._images = self._rejected = self._violations = 0
        self._switches = 0
        # bumped at every swap of the active plan (and at close): a transport that runs plans itself
        # (the daemon's shared-memory loop in C++) comes back to pick up the new one
        self.generation = np.zeros(1, np.int64)
        self._pinned: str | None = None
        self._last: Decision | None = None
        self._t0 = self._clock()

        # first choice: what the policy picks now, without the upgrade hold
        now = self._clock()
        start = min(self.profiles, key=lambda p: (p.mflops, p.id))
        first, self._state = self._policy(self.monitor.latest(), PolicyState(start.id, min(start.latency_ms),
                                                                             better_since=now - self.budget.hold_s),
                                          None, self.budget, self.profiles, now)
        self._state = replace(self._state, switches=0)
        self._last = first
        self._active = (self.backend.prepare(first.entry), first.threads)
        self._since = now
        self._closed = False
        self._stop = threading.Event()
        self._thread = None
        if controller:
            self._thread = threading.Thread(target=self._control, name="adaptive-rt-policy", daemon=True)
            self._thread.start()

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, pool: str | os.PathLike | PoolFile, slo_ms: float | None = None,
             memory_cap: int | str | None = None, policy: str | PolicyFn = "adaptive", backend: str = "native",
             **kw) -> "Runtime":
        """Open ``pool`` (a path or a loaded PoolFile). Keywords: ``monitor``
        ("psutil", a Source, or a ResourceMonitor), ``hz``, ``profile`` (path
        or EntryProfiles; default: the calibrated one, else a quick one now),
        ``batch`` (images per request the profile is for), ``max_threads``,
        ``window_s`` (observed-latency window), ``check_finite``, ``budget``
        (extra Budget fields: hold_s, headroom, battery/thermal caps),
        ``clock`` (what the policy reads as now; default ``time.monotonic``),
        ``controller=False`` (no controller thread: call :meth:`step`),
        ``resident`` (peer backends: keep every entry's session alive)."""
        if not isinstance(pool, PoolFile):
            pool = load_pool(os.fspath(pool))
        return cls(pool, slo_ms=slo_ms, memory_cap=memory_cap, policy=policy, backend=backend, **kw)

    def _profiles(self, profile) -> list[EntryProfile]:
        if profile is not None and not isinstance(profile, (str, os.PathLike)):
            profs = list(profile)
            ids = {p.id for p in profs}
            missing = [e.id for e in self.pool.entries if e.id not in ids]
            if missing:
                raise ValueError(f"profile has no entry {missing[0]!r}")
            return self._usable(profs)
        name = self.backend.name
        if profile is not None:
            return self._usable(load_profile(os.fspath(profile), self.pool, self.batch, name))
        path = default_profile_path(self.pool.sha256, name)
        old = None
        if os.path.lexists(path):
            try:   # a profile that cannot be used here is measured anew, never an obstacle to opening
                old = read_profile(path)
                usable = self._usable(profile_entries(old, self.pool, self.batch, path, name))
                if not old.get("provisional"):
                    return usable
                reason = (f"{path} was measured while other processes used {old.get('other_cpu_cores')} cores "
                          "(provisional)")
            except ProfileError as e:
                reason = str(e)
        else:
            reason = f"none found at {path}"
        threads = self._threads
        log.warning("adaptive_rt: no usable device profile (%s): calibrating quickly (%d entries x %d thread "
                    "counts, batch %d, backend %s); run `adaptive-rt calibrate POOL --batch %d` for a full one",
                    reason, len(self.pool.entries), len(threads), self.batch, name, self.batch)
        prof = calibrate(self.pool, warmup=2, repeats=12, batches=[self.batch], backend=self.backend)
        prof["quick"] = True
        if taken_under_load(prof):
            prof["provisional"] = True
            log.warning("adaptive_rt: other processes used %.2f cores during the quick calibration: its profile "
                        "is provisional and is measured again at the next open", prof["other_cpu_cores"])
        try:
            save_profile(merge_profiles(old, prof) if old else prof, path)
        except OSError as e:
            log.warning("adaptive_rt: cannot save the device profile to %s: %s", path, e)
        return self._usable(profile_entries(prof, self.pool, self.batch, backend=name))

    def _usable(self, profs: list[EntryProfile]) -> list[EntryProfile]:
        """Only the thread counts this engine can run."""
        out = []
        for p in profs:
            lat = {t: v for t, v in p.latency_ms.items() if t in self._threads}
            if not lat:
                raise ProfileError(f"profile of {p.id!r} has no thread count this backend runs "
                                   f"({', '.join(map(str, self._threads))})")
            out.append(replace(p, latency_ms=lat))
        return out

    # ------------------------------------------------------------------ serving
    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self._input_shape

    @property
    def active(self) -> str:
        return self._active[0].entry_id

    @property
    def threads(self) -> int:
        return self._active[1]

    @property
    def entries(self) -> list[str]:
        return list(self._ids)

    def _check(self, x) -> tuple[np.ndarray, bool]:
        self._check_open()
        if not isinstance(x, np.ndarray):
            raise TypeError(f"input must be a numpy array, got {type(x).__name__}")
        if x.dtype != np.float32:
            raise TypeError(f"input dtype must be float32, got {x.dtype} (convert, e.g. x.astype(np.float32) / 255)")
        shape = self.input_shape
        if x.shape == shape:
            single = True
            x = x[None]
        elif x.ndim == 4 and x.shape[1:] == shape:
            single = False
            if x.shape[0] == 0:
                raise InputError("input batch is empty")
        else:
            raise InputError(f"input shape {x.shape} does not match this pool: expected {shape} (H, W, C) "
                             f"or (N, {', '.join(map(str, shape))})")
        if self.check_finite and not np.isfinite(x).all():
            raise InputError("input contains NaN or infinity")
        return np.ascontiguousarray(x), single

    def infer(self, x: np.ndarray) -> tuple[np.ndarray, str]:
        """Logits of one image ``[H, W, C]`` (-> ``[classes]``) or of a batch
        ``[N, H, W, C]`` (-> ``[N, classes]``), and the id of the entry that
        computed them."""
        try:
            xb, single = self._check(x)
        except (TypeError, ValueError):
            with self._lock:
                self._rejected += 1
            raise
        run, threads = self._active            # one read: the plan this request runs on
        t0 = time.perf_counter()
        y = run(xb, threads)
        t1 = time.perf_counter()
        self._record(run.entry_id, (t1 - t0) * 1e3, len(xb))
        return (y[0] if single else y), run.entry_id

    def infer_batch(self, xs: np.ndarray | Iterable[np.ndarray]) -> tuple[np.ndarray, str]:
        """A batch ``[N, H, W, C]`` (or a sequence of ``[H, W, C]`` images) on
        one entry: ``([N, classes], entry id)``."""
        try:
            if not isinstance(xs, np.ndarray):
                items = list(xs)
                if not items:
                    raise InputError("input batch is empty")
                if not all(isinstance(i, np.ndarray) for i in items):
                    raise TypeError("infer_batch takes a numpy array or a sequence of numpy arrays")
                if len({(i.shape, i.dtype) for i in items}) != 1:
                    raise InputError("images of a batch must share one shape and dtype")
                xs = np.stack(items)
            if xs.ndim != 4:
                raise InputError(f"infer_batch needs [N, H, W, C] input, got shape {xs.shape}")
        except (TypeError, ValueError):
            with self._lock:
                self._rejected += 1
            raise
        return self.infer(xs)

    def native_active(self):
        """``(engine, plan, threads)`` of the active plan on the native
        engine — for a transport that runs it without Python per request
        (:meth:`Engine.serve_shm`) — or None if the backend is another.
        Read :attr:`generation` first: when it changes, read this again."""
        run, threads = self._active
        plan, engine = getattr(run, "plan", None), getattr(run, "engine", None)
        if self._closed or not isinstance(plan, Plan) or not isinstance(engine, Engine):
            return None
        return engine, plan, threads

    def record_many(self, entry: str, ms: Sequence[float], images: Sequence[int]) -> None:
        """Account for requests served outside :meth:`infer` on ``entry``
        (per request: milliseconds, images), as :meth:`infer` does for its own."""
        now = self._clock()
        slo = self.budget.slo_ms
        with self._lock:
            s = self._entry_stats[entry]
            for v, n in zip(ms, images):
                v, n = float(v), int(n)
                norm = v * self.batch / n if n != self.batch else v
                violated = norm > slo
                s.requests += 1
                s.images += n
                s.lat.append(v)
                s.violations += violated
                self._requests += 1
                self._images += n
                self._violations += violated
                self._recent.append((now, entry, norm))
                self._all_lat.append(v)

    def _record(self, entry: str, ms: float, n: int) -> None:
        self.record_many(entry, (ms,), (n,))

    # ------------------------------------------------------------------ control
    def _observed_p95(self, entry: str, since: float) -> float | None:
        with self._lock:
            vals = []
            for t, e, ms in reversed(self._recent):
                if t < since:
                    break
                if e == entry:
                    vals.append(ms)
        return float(np.percentile(vals, 95)) if len(vals) >= 5 else None

    def _activate(self, entry: str, threads: int, reason: str, state: PolicyState | None = None) -> None:
        """Make (entry, threads) the active plan. ``state``: the policy's new
        state (a policy decision, ignored while pinned); None: a pin."""
        if self._active[0].entry_id == entry:
            runner = self._active[0]
        else:   # built before taking the lock: on a peer backend this creates a session
            runner = self.backend.prepare(entry)
        with self._switch_lock:
            if state is not None:
                if self._pinned is not None:
                    return
                self._state = state
            old_plan, old_threads = self._active
            if old_plan.entry_id == entry and old_threads == threads:
                return
            now = self._clock()
            self._active = (runner, threads)   # the atomic swap
            self.generation[0] += 1
            changed = old_plan.entry_id != entry
            if state is None:
                self._state = replace(self._state, entry=entry, threads=threads, better_since=None)
            if changed:
                with self._lock:
                    self._entry_stats[old_plan.entry_id].time_s += now - self._since
                    self._switches += 1
                self._since = now
        if changed:
            ev = SwitchEvent(now - self._t0, old_plan.entry_id, entry, threads, reason)
            for cb in list(self._callbacks):
                try:
                    cb(ev)
                except Exception:   # a listener's bug must not stop serving
                    log.exception("adaptive_rt: on_switch callback failed")

    def _tick(self) -> None:
        now = self._clock()
        snap = self.monitor.latest()
        observed = self._observed_p95(self.active, max(now - self.window_s, self._since))
        reason, predicted = "pinned", None
        if self._pinned is None:
            d, st = self._policy(snap, self._state, observed, self.budget, self.profiles, now)
            self._last = d
            reason, predicted = d.reason, d.predicted_ms
            self._activate(d.entry, d.threads, d.reason, st)
        self._timeline.append({"t": now - self._t0, "entry": self.active, "threads": self.threads,
                               "other_cpu_cores": snap.other_cpu_cores if snap else None,
                               "observed_p95_ms": observed, "predicted_ms": predicted, "reason": reason})

    def step(self) -> None:
        """One controller step now: with ``controller=False`` the app (or a
        test, with an injected ``clock``) drives the policy itself — a fresh
        monitor sample when the runtime owns the monitor, then one decision."""
        if self._manual and self._own_monitor:
            self.monitor.sample_now()
        self._tick()

    def _control(self) -> None:
        nxt = time.monotonic()    # the thread's pace is real time, whatever clock the policy reads
        while not self._stop.is_set():
            try:
                self._tick()
            except Exception:   # pragma: no cover - keep serving on the last plan
                log.exception("adaptive_rt: policy step failed; keeping entry %s", self.active)
            nxt += self._period
            self._stop.wait(max(0.0, nxt - time.monotonic()))

    # ------------------------------------------------------------------ control by the app
    def pin(self, entry: str, threads: int | None = None) -> None:
        """Serve ``entry`` until :meth:`unpin`, whatever the policy says."""
        self._check_open()
        if entry not in self._by_id:
            raise ValueError(f"no entry {entry!r} in this pool; have: {', '.join(self._ids)}")
        p = self._by_id[entry]
        if threads is None:
            threads = min(p.latency_ms, key=lambda t: (p.latency_ms[t], t))
        elif not isinstance(threads, int) or isinstance(threads, bool) or threads not in self._threads:
            raise ValueError(f"threads={threads!r}: this backend runs {', '.join(map(str, self._threads))}")
        self._pinned = entry
        self._activate(entry, threads, "pinned")

    def unpin(self) -> None:
        """Give the choice back to the policy (from the pinned entry)."""
        self._pinned = None

    def set_budget(self, **fields) -> Budget:
        """Change the budget while serving (``slo_ms``, ``memory_cap`` — bytes
        or e.g. "64MB" —, ``hold_s``, ``headroom``, battery/thermal caps);
        the policy uses it from its next step."""
        self._check_open()
        if "memory_cap" in fields:
            fields["memory_cap_bytes"] = parse_bytes(fields.pop("memory_cap"))
        if fields.get("slo_ms", 0) is None:
            fields["slo_ms"] = math.inf
        known = {f.name for f in dataclass_fields(Budget)}
        unknown = sorted(set(fields) - known)
        if unknown:
            raise ValueError(f"unknown budget field {unknown[0]!r}; known: memory_cap, {', '.join(sorted(known))}")
        self.budget = replace(self.budget, **fields)   # Budget checks every value (ValueError naming the field)
        return self.budget

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this Runtime is closed")

    @property
    def pinned(self) -> str | None:
        return self._pinned

    def on_switch(self, callback: Callable[[SwitchEvent], None]) -> None:
        """Call ``callback(SwitchEvent)`` after every change of entry (from the
        thread that made it; keep it short)."""
        if not callable(callback):
            raise TypeError("on_switch needs a callable")
        self._callbacks.append(callback)

    # ------------------------------------------------------------------ reporting
    def stats(self) -> dict:
        """Counts and latencies since open, overall and per entry. ``latency_ms``
        percentiles are of whole requests as they ran (a batch of N images is
        one request); SLO violations compare each request's latency scaled to
        the planned batch size (``batch=`` of :meth:`open`: a request of n
        images counts as ``ms * batch / n``) with ``slo_ms``, as the policy plans."""
        now = self._clock()
        with self._lock:
            per = {}
            for eid, s in self._entry_stats.items():
                active_s = s.time_s + (now - self._since if eid == self.active else 0.0)
                per[eid] = {"requests": s.requests, "images": s.images, "slo_violations": s.violations,
                            "time_active_s": active_s, "latency_ms": _pct(s.lat)}
            out = {"policy": self.policy_name, "slo_ms": self.budget.slo_ms if math.isfinite(self.budget.slo_ms)
                   else None, "active": self.active, "threads": self.threads, "pinned": self._pinned,
                   "requests": self._requests, "images": self._images, "rejected": self._rejected,
                   "slo_violations": self._violations,
                   "slo_violation_rate": self._violations / self._requests if self._requests else 0.0,
                   "switches": self._switches, "uptime_s": now - self._t0, "latency_ms": _pct(self._all_lat),
                   "entries": per}
        out["last_decision"] = self._last.reason if self._last else None
        out["monitor_cpu_overhead_pct"] = self.monitor.overhead_pct()
        return out

    def timeline(self) -> list[dict]:
        """One row per controller tick: time, entry, threads, other processes'
        CPU, observed p95 and the policy's reason."""
        return list(self._timeline)

    def expected_ms(self) -> float:
        """The active (entry, threads)'s calibrated p95 for a request of ``batch`` images."""
        run, threads = self._active
        lat = self._by_id[run.entry_id].latency_ms
        return lat.get(threads, max(lat.values()))

    def probe(self) -> None:
        """Run the active entry once on zeros, unrecorded (a liveness check)."""
        run, threads = self._active
        run(np.zeros((1,) + self._input_shape, np.float32), threads)

    # ------------------------------------------------------------------ closing
    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.generation[0] += 1
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._own_monitor:
            self.monitor.stop()

    def __enter__(self) -> "Runtime":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:
            pass

"""The switching policy: a pure function from what the device has now to the
entry (and thread count) to run.

``decide(snapshot, state, observed_p95_ms, budget, profiles, now)`` returns a
:class:`Decision` and the next :class:`PolicyState`; it keeps no hidden
state, so it is tested on scripted traces and replayed exactly.

Prediction: an entry's calibrated p95 latency at t threads (uncontended),
times the slowdown of sharing the CPUs with the other processes' load —
``max(1, (other_cores + t) / cpu_count)`` under a fair scheduler; a run on
t > 1 threads that oversubscribes the CPUs keeps none of its parallel
speedup (it waits for its slowest thread, which shares a core) — times an
EWMA of observed/predicted for the entry being served (the correction the
model cannot know), learned per (entry, threads), kept across switches and
fading back to 1 over ``ratio_half_life_s`` when not refreshed. A ratio is
a correction for the load it was learned under: once the other processes'
load differs from that by ``ratio_load_tolerance`` cores or more, it is not
applied (1 again) until the pair is served and measured anew — so an entry
judged slow under a CPU hog is tried again once the hog has gone. Choice: among entries that fit the caps (memory,
battery, thermal), the most accurate one predicted to stay under
``headroom`` x SLO. Downgrade at once on a breach (observed p95 over the SLO,
or the current entry no longer predicted to fit, or a cap it violates);
upgrade only after a more accurate entry has kept fitting, with no breach,
for ``hold_s``. Headroom and hold
time together keep it from flapping.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable, Mapping, Sequence

from .monitor import ResourceSnapshot

__all__ = ["Budget", "EntryProfile", "PolicyState", "Decision", "predict_ms", "decide", "POLICIES"]

#: The policies a Runtime (and adaptive-rt serve --policy) can be given by name
POLICIES = ("adaptive", "fixed-largest", "fixed-smallest")


@dataclass(frozen=True)
class Budget:
    slo_ms: float                           # p95 latency target
    memory_cap_bytes: int | None = None     # entries needing more are never chosen
    battery_low_pct: float = 20.0           # below this, unplugged: cap MFLOPs
    battery_mflops_cap: float | None = None
    thermal_limit_c: float = 80.0           # above this: cap MFLOPs
    thermal_mflops_cap: float | None = None
    hold_s: float = 2.0                     # calm time before any upgrade
    headroom: float = 0.85                  # plan for this fraction of the SLO
    ewma: float = 0.3                       # weight of a new observed/predicted ratio
    ratio_half_life_s: float = 30.0         # a learned ratio not refreshed fades to 1 this fast
    ratio_load_tolerance: float = 0.5       # other-process cores: beyond this change a learned ratio is 1 again

    def __post_init__(self):
        def number(f: str, lo: float, hi: float = math.inf, lo_open: bool = False, optional: bool = False):
            v = getattr(self, f)
            if v is None and optional:
                return
            if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v):
                raise ValueError(f"{f}={v!r} must be a number" + (" or None" if optional else ""))
            if v < lo or (lo_open and v == lo) or v > hi:
                raise ValueError(f"{f}={v!r} must be in {'(' if lo_open else '['}{lo:g}, {hi:g}]")
        number("slo_ms", 0, lo_open=True)               # math.inf: no latency target
        mc = self.memory_cap_bytes
        if mc is not None and (isinstance(mc, bool) or not isinstance(mc, int) or mc <= 0):
            raise ValueError(f"memory_cap_bytes={mc!r} must be a positive integer or None")
        number("battery_low_pct", 0, 100)
        number("battery_mflops_cap", 0, lo_open=True, optional=True)
        number("thermal_limit_c", -273.15, 1000)
        number("thermal_mflops_cap", 0, lo_open=True, optional=True)
        number("hold_s", 0, 1e6)
        number("headroom", 0, 1, lo_open=True)
        number("ewma", 0, 1, lo_open=True)
        number("ratio_half_life_s", 0, math.inf, lo_open=True)
        number("ratio_load_tolerance", 0, math.inf, lo_open=True)


@dataclass(frozen=True)
class EntryProfile:
    id: str
    mflops: float
    accuracy: float | None
    memory_bytes: int
    latency_ms: Mapping[int, float]         # threads -> calibrated p95 ms (uncontended)


@dataclass(frozen=True)
class PolicyState:
    entry: str
    threads: int = 1
    # learned observed/predicted EWMA per (entry, threads):
    # (entry, threads, ratio, time learned, other processes' cores then)
    ratios: tuple[tuple[str, int, float, float, float], ...] = ()
    better_since: float | None = None       # since when a more accurate entry has kept fitting
    switches: int = 0

    def ratio(self, entry: str, threads: int, now: float | None = None, half_life_s: float = math.inf,
              load: float | None = None, tolerance: float = math.inf) -> float:
        """The learned correction of (entry, threads): 1.0 if never served;
        it fades back towards 1 with ``half_life_s`` since it was last
        learned, and is 1.0 while the other processes' ``load`` (cores)
        differs from the load it was learned under by ``tolerance`` or
        more — so a pair judged under other conditions is tried again."""
        for e, t, r, when, at in self.ratios:
            if e == entry and t == threads:
                if load is not None and abs(load - at) >= tolerance:
                    return 1.0
                if now is None or not math.isfinite(half_life_s):
                    return r
                return 1.0 + (r - 1.0) * 0.5 ** (max(0.0, now - when) / half_life_s)
        return 1.0

    def learned(self, entry: str, threads: int, ratio: float, now: float, load: float = 0.0) -> "PolicyState":
        rest = tuple(x for x in self.ratios if (x[0], x[1]) != (entry, threads))
        return replace(self, ratios=rest + ((entry, threads, ratio, now, load),))


@dataclass(frozen=True)
class Decision:
    entry: str
    threads: int
    predicted_ms: float
    reason: str                             # "hold", "downgrade: ...", "upgrade", "caps: ..."


def predict_ms(p: EntryProfile, threads: int, snap: ResourceSnapshot, ratio: float = 1.0) -> float:
    base = p.latency_ms[threads]
    ncpu = max(1, snap.cpu_count)
    demand = snap.other_cpu_cores + threads
    if threads > 1 and demand > ncpu + 0.25:
        # Oversubscribed: some thread of the run shares a core, and a split
        # run waits for its slowest thread, so it keeps none of its parallel
        # speedup (and often loses more, a scheduler slice at a time).
        base = max(base, p.latency_ms.get(1, base * threads))
    return base * max(1.0, demand / ncpu) * ratio


def _caps(snap: ResourceSnapshot, budget: Budget) -> tuple[float, list[str]]:
    cap, why = math.inf, []
    if (budget.battery_mflops_cap is not None and snap.battery_percent is not None
            and snap.battery_percent < budget.battery_low_pct and snap.plugged is False):
        cap = min(cap, budget.battery_mflops_cap)
        why.append(f"battery {snap.battery_percent:.0f}%")
    if (budget.thermal_mflops_cap is not None and snap.temperature_c is not None
            and snap.temperature_c > budget.thermal_limit_c):
        cap = min(cap, budget.thermal_mflops_cap)
        why.append(f"temperature {snap.temperature_c:.0f} C")
    return cap, why


def _allowed(p: EntryProfile, snap: ResourceSnapshot, budget: Budget, mflops_cap: float) -> bool:
    if p.mflops > mflops_cap:
        return False
    if budget.memory_cap_bytes is not None and p.memory_bytes > budget.memory_cap_bytes:
        return False
    if snap.mem_available_bytes is not None and p.memory_bytes > snap.mem_available_bytes:
        return False
    return True


def _best_threads(p: EntryProfile, snap: ResourceSnapshot, ratio: Callable[[str, int], float]) -> tuple[int, float]:
    return min(((t, predict_ms(p, t, snap, ratio(p.id, t))) for t in sorted(p.latency_ms)),
               key=lambda tp: (tp[1], tp[0]))


def decide(snap: ResourceSnapshot, state: PolicyState, observed_p95_ms: float | None, budget: Budget,
           profiles: Sequence[EntryProfile], now: float) -> tuple[Decision, PolicyState]:
    by_id = {p.id: p for p in profiles}
    if not by_id:
        raise ValueError("no entries to choose from")
    cur = by_id.get(state.entry) or min(profiles, key=lambda p: p.mflops)
    threads = state.threads if state.threads in cur.latency_ms else min(cur.latency_ms)

    # 1. correct the model by what the served (entry, threads) really did
    load = snap.other_cpu_cores

    def ratio(entry: str, t: int) -> float:
        return state.ratio(entry, t, now, budget.ratio_half_life_s, load, budget.ratio_load_tolerance)

    if observed_p95_ms is not None and observed_p95_ms > 0:
        r = observed_p95_ms / predict_ms(cur, threads, snap)
        state = state.learned(cur.id, threads, min(4.0, max(0.25, (1 - budget.ewma) * ratio(cur.id, threads)
                                                            + budget.ewma * r)), now, load)

    # 2. what may run at all, and what fits the SLO
    mflops_cap, cap_why = _caps(snap, budget)
    allowed = [p for p in profiles if _allowed(p, snap, budget, mflops_cap)]
    if not allowed:   # nothing fits the caps: the cheapest entry is the least bad
        allowed = [min(profiles, key=lambda p: (p.mflops, p.memory_bytes))]
    plans = {p.id: _best_threads(p, snap, ratio) for p in allowed}
    limit = budget.headroom * budget.slo_ms
    fitting = [p for p in allowed if plans[p.id][1] <= limit]
    # the most accurate entry that fits, whatever its precision; on a tie the cheaper in
    # MFLOPs, then in memory (an int8 entry as accurate as its float32 one wins)
    acc = lambda p: (p.accuracy if p.accuracy is not None else 0.0, -p.mflops, -p.memory_bytes)  # noqa: E731
    target = max(fitting, key=acc) if fitting else min(allowed, key=lambda p: plans[p.id][1])

    # 3. downgrade at once, upgrade only after the budget has held
    breach = []
    if observed_p95_ms is not None and observed_p95_ms > budget.slo_ms:
        breach.append(f"p95 {observed_p95_ms:.2f} ms > SLO {budget.slo_ms:.2f} ms")
    if cur not in allowed:
        breach.append("caps: " + (", ".join(cap_why) or "memory"))
    elif predict_ms(cur, threads, snap, ratio(cur.id, threads)) > budget.slo_ms:
        breach.append("predicted over SLO")
    better = not breach and target.id != cur.id and acc(target) > acc(cur)
    better_since = (state.better_since if state.better_since is not None else now) if better else None

    if breach and target.id != cur.id:
        d = Decision(target.id, plans[target.id][0], plans[target.id][1], "downgrade: " + "; ".join(breach))
    elif better:
        if now - better_since >= budget.hold_s:
            d = Decision(target.id, plans[target.id][0], plans[target.id][1], "upgrade")
        else:
            d = Decision(cur.id, threads, predict_ms(cur, threads, snap, ratio(cur.id, threads)),
                         "hold: waiting to upgrade")
    elif cur in allowed:
        t, ms = plans[cur.id]   # same entry: its best thread count now
        d = Decision(cur.id, t, ms, "hold" if not breach else "hold: " + "; ".join(breach))
    else:
        d = Decision(target.id, plans[target.id][0], plans[target.id][1], "caps")
    switched = d.entry != cur.id
    new = replace(state, entry=d.entry, threads=d.threads,
                  better_since=None if switched else better_since, switches=state.switches + int(switched))
    return d, new

"""The Pareto front of pool entries over cost and accuracy: what build-pool
keeps and what ``adaptive-rt inspect`` flags in older pools."""
from __future__ import annotations

import math

__all__ = ["pareto_front"]


def pareto_front(items: list[tuple[float, float, object]], min_gain: float = 0.0) -> tuple[list, list]:
    """(kept, dropped) of ``(cost, accuracy, x)`` items: an item is dropped
    when another costs no more and is at least as accurate (strictly better
    in one of the two) — it could never be the best choice for any budget.
    Kept items come cheapest first, each more accurate than every cheaper one
    by more than ``min_gain`` (0: any gain; a margin keeps only the steps that
    measurement noise is unlikely to reverse on another split)."""
    if min_gain < 0:
        raise ValueError(f"min_gain {min_gain} must be >= 0")
    order = sorted(items, key=lambda t: (t[0], -t[1]))
    kept, dropped, best = [], [], -math.inf
    for t in order:
        if t[1] > best + min_gain:
            kept.append(t)
            best = t[1]
        else:
            dropped.append(t)
    return kept, dropped

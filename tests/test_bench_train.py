"""bench_train's yardstick: the hypervolume above an accuracy floor and the
fixed stratified population every sampler is scored on."""
from __future__ import annotations

import pytest

pytest.importorskip("torch")

from adaptive_rt.bench.bench_train import hypervolume, passes_per_step, stratified_population  # noqa: E402
from adaptive_rt.model.graph import subnet_cost  # noqa: E402
from adaptive_rt.model.presets import get_space  # noqa: E402


def test_hypervolume_above_a_floor():
    assert hypervolume([(0.0, 1.0)], 10.0, 0.9) == pytest.approx(1.0)
    assert hypervolume([(5.0, 0.95)], 10.0, 0.9) == pytest.approx(0.5 * 0.5)
    assert hypervolume([(5.0, 0.85)], 10.0, 0.9) == 0.0                     # under the floor
    assert hypervolume([(11.0, 0.99)], 10.0, 0.9) == 0.0                    # beyond the reference cost
    two = hypervolume([(2.0, 0.92), (6.0, 0.96)], 10.0, 0.9)
    assert two == pytest.approx((0.4 * 0.2 + 0.4 * 0.6) / 1.0)
    # a dominated point adds nothing
    assert hypervolume([(2.0, 0.92), (6.0, 0.96), (7.0, 0.95)], 10.0, 0.9) == pytest.approx(two)
    # without a floor the area is mostly the rectangle under the cheapest point; with one, a
    # one-point accuracy gap on the larger entry is a visible difference
    a = [(1.0, 0.96), (9.0, 0.98)]
    b = [(1.0, 0.96), (9.0, 0.99)]
    assert hypervolume(b, 10, 0.0) / hypervolume(a, 10, 0.0) < 1.002
    assert hypervolume(b, 10, 0.9) / hypervolume(a, 10, 0.9) > 1.01


def test_population_is_fixed_and_stratified():
    space = get_space("mbv3-tiny28")
    pop = stratified_population(space, 6, 6)
    assert pop == stratified_population(space, 6, 6)                         # the same for every run
    assert len(pop) == 38 and len({c for c, _ in pop}) == 38
    assert pop[0][0] == space.min_config() and pop[-1][0] == space.max_config()
    costs = [subnet_cost(space, c).mflops for c, _ in pop]
    assert costs == sorted(costs)
    lo, hi = costs[0], costs[-1]
    for b in range(6):
        inner = [m for (c, bb), m in zip(pop[1:-1], costs[1:-1]) if bb == b]
        assert len(inner) == 6                                              # top bucket too
        assert all(lo + (hi - lo) * b / 6 <= m <= lo + (hi - lo) * (b + 1) / 6 for m in inner)


def test_passes_per_step_of_each_sampler():
    space = get_space("mbv3-tiny28")
    assert passes_per_step("uniform", space, 0) == 1 == passes_per_step("rss", space, 0)
    assert passes_per_step("sandwich", space, 0) == 4
    assert passes_per_step("pss", space, 0) == 3
    assert 2.0 < passes_per_step("ps", space, 0) < 3.0                      # 1, then 3 per step

"""Multi-objective subnet search (NATv2-style objectives, pymoo's NSGA-II):
maximise validation accuracy, minimise MFLOPs, over integer genes.

Genes: the resolution index, then per stage the width-multiplier index and
depth index, then per block slot (max depth) the kernel-size and
expand-ratio indices; a stage of depth d uses its first d slots. Accuracy is
measured with BN recalibrated for each candidate (memoised per config), so
the search costs about one recalibration and one validation pass per
distinct candidate.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..model.space import SearchSpace, SubnetConfig

__all__ = ["GeneCodec", "nsga2_search"]


class GeneCodec:
    def __init__(self, space: SearchSpace):
        self.space = space
        hi = [len(space.resolutions) - 1]
        for st in space.stages:
            hi += [len(st.width_mults) - 1, len(st.depths) - 1]
            hi += [len(st.kernel_sizes) - 1, len(st.expand_ratios) - 1] * st.max_depth
        self.upper = np.array(hi, dtype=int)

    @property
    def n_var(self) -> int:
        return len(self.upper)

    def decode(self, genes) -> SubnetConfig:
        g = [int(round(v)) for v in genes]
        g = [min(max(v, 0), int(u)) for v, u in zip(g, self.upper)]
        sp = self.space
        i = 0
        res = sp.resolutions[g[i]]
        i += 1
        widths, kernels, expands = [], [], []
        for st in sp.stages:
            widths.append(st.width_mults[g[i]])
            d = st.depths[g[i + 1]]
            i += 2
            ks, es = [], []
            for b in range(st.max_depth):
                if b < d:
                    ks.append(st.kernel_sizes[g[i]])
                    es.append(st.expand_ratios[g[i + 1]])
                i += 2
            kernels.append(tuple(ks))
            expands.append(tuple(es))
        return SubnetConfig(res, tuple(widths), tuple(kernels), tuple(expands))


def nsga2_search(space: SearchSpace, accuracy: Callable[[list[SubnetConfig]], list[float]],
                 cost: Callable[[SubnetConfig], float], pop_size: int = 20, generations: int = 6,
                 seed: int = 0) -> list[tuple[SubnetConfig, float, float]]:
    """(config, accuracy, cost) of every distinct candidate evaluated; the
    caller picks per bucket. The min and max configs are always included.
    ``accuracy`` scores a list of configs at once — a whole generation's new
    ones — so it may spread them over processes; the search itself is
    deterministic for a seed, so every process runs the same one."""
    from pymoo.algorithms.moo.nsga2 import NSGA2
    from pymoo.core.problem import Problem
    from pymoo.operators.crossover.sbx import SBX
    from pymoo.operators.mutation.pm import PM
    from pymoo.operators.repair.rounding import RoundingRepair
    from pymoo.operators.sampling.rnd import IntegerRandomSampling
    from pymoo.optimize import minimize

    codec = GeneCodec(space)
    seen: dict[SubnetConfig, float] = {}

    def score(configs: list[SubnetConfig]) -> None:
        new = [c for c in dict.fromkeys(configs) if c not in seen]
        if new:
            for c, a in zip(new, accuracy(new)):
                seen[c] = float(a)

    score([space.min_config(), space.max_config()])

    class P(Problem):
        def __init__(self):
            super().__init__(n_var=codec.n_var, n_obj=2, xl=np.zeros(codec.n_var), xu=codec.upper.astype(float),
                             vtype=int)

        def _evaluate(self, x, out, *args, **kwargs):
            cs = [codec.decode(row) for row in x]
            score(cs)
            out["F"] = np.array([[-seen[c], cost(c)] for c in cs])

    algo = NSGA2(pop_size=pop_size, sampling=IntegerRandomSampling(),
                 crossover=SBX(prob=0.9, eta=15, vtype=float, repair=RoundingRepair()),
                 mutation=PM(eta=20, vtype=float, repair=RoundingRepair()), eliminate_duplicates=True)
    minimize(P(), algo, ("n_gen", generations), seed=seed, verbose=False)
    return [(c, a, cost(c)) for c, a in seen.items()]

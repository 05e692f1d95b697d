"""Subnet samplers: which subnets one training step trains, and how.

A sampler turns (step, progress) into a list of :class:`Task` — a config and
whether it learns from labels (CE) or from the largest subnet's detached
output (in-place distillation, KD). Samplers are registered by name
(``--sampler NAME``); a new one is one class. Their state is JSON-able, so a
checkpoint can resume them. Randomness comes from a generator seeded by
(seed, step), so every rank of a distributed run draws the same subnets.
"""
from __future__ import annotations

import functools
import math
import random
from dataclasses import dataclass
from typing import Callable

from ..model.graph import subnet_cost
from ..model.space import SearchSpace, SubnetConfig
from ..registry import Registry

__all__ = ["Task", "Sampler", "SAMPLERS", "register_sampler", "make_sampler"]


@dataclass(frozen=True)
class Task:
    config: SubnetConfig
    kd: bool = False        # learn from the largest subnet's output instead of labels


SAMPLERS: Registry[type["Sampler"]] = Registry("sampler")


def register_sampler(name: str) -> Callable:
    """Class decorator: register a Sampler under ``name``."""
    return SAMPLERS.register(name)


def make_sampler(name: str, space: SearchSpace, seed: int = 0, **kw) -> "Sampler":
    return SAMPLERS.get(name)(space, seed=seed, **kw)


class Sampler:
    """Base: subclasses implement ``tasks``; ``observe`` gets each trained
    task's loss (used by PSS)."""

    name = "base"

    def __init__(self, space: SearchSpace, seed: int = 0):
        self.space = space
        self.seed = seed
        self.max_config = space.max_config()
        self.min_config = space.min_config()

    def rng(self, step: int) -> random.Random:
        return random.Random(self.seed * 1_000_003 + step)

    def tasks(self, step: int, progress: float) -> list[Task]:   # progress in [0, 1)
        raise NotImplementedError

    def observe(self, config: SubnetConfig, loss: float, step: int, progress: float) -> None:
        pass

    def sort_channels_now(self, prev: float, progress: float) -> bool:
        """True when the trainer should sort channels before this step."""
        return False

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, d: dict) -> None:
        pass


@register_sampler("uniform")
class Uniform(Sampler):
    """One subnet per step, every elastic choice uniform, trained on labels."""

    def tasks(self, step, progress):
        return [Task(self.space.sample(self.rng(step)))]


@register_sampler("rss")
class RSS(Sampler):
    """Random subnet sampling (RSS, as its public code): one random subnet,
    trained from scratch on labels, no teacher, no phases, kept for
    ``switch_every`` steps (default: about one epoch) before drawing the next."""

    def __init__(self, space, seed=0, switch_every: int = 50):
        super().__init__(space, seed)
        self.switch_every = max(1, int(switch_every))

    def tasks(self, step, progress):
        return [Task(self.space.sample(self.rng(step // self.switch_every)))]


@register_sampler("sandwich")
class Sandwich(Sampler):
    """The sandwich rule (slimmable / US-Nets, BigNAS): the largest subnet on
    labels, then the smallest and ``n_random`` random ones distilled from it."""

    def __init__(self, space, seed=0, n_random: int = 2):
        super().__init__(space, seed)
        self.n_random = n_random

    def tasks(self, step, progress):
        r = self.rng(step)
        return ([Task(self.max_config), Task(self.min_config, kd=True)]
                + [Task(self.space.sample(r), kd=True) for _ in range(self.n_random)])


@register_sampler("ps")
class ProgressiveShrinking(Sampler):
    """OFA's progressive shrinking: the full net first, then elastic kernel,
    then depth, then expand ratio and width; in each elastic phase subnets
    are distilled from the full net (trained on labels every step).
    Phase boundaries are fractions of training (``phases``)."""

    PHASES = ("full", "kernel", "depth", "width")

    def __init__(self, space, seed=0, phases: tuple[float, ...] = (0.25, 0.45, 0.7), per_step: int = 2):
        super().__init__(space, seed)
        self.bounds = tuple(phases)
        self.per_step = per_step

    def phase(self, progress: float) -> str:
        i = sum(progress >= b for b in self.bounds)
        return self.PHASES[i]

    def sort_channels_now(self, prev: float, progress: float) -> bool:
        # OFA sorts channels when the width (expand) phase starts
        return self.phase(progress) == "width" and (prev < 0 or self.phase(prev) != "width")

    def _shrunk(self, r: random.Random, phase: str) -> SubnetConfig:
        mx = self.max_config
        c = self.space.sample(r)
        if phase == "kernel":       # only kernels elastic
            return mx.replace(kernels=tuple(tuple(r.choice(st.kernel_sizes) for _ in ks)
                                            for st, ks in zip(self.space.stages, mx.kernels)))
        if phase == "depth":        # kernels and depth elastic
            ks = tuple(k for k in c.kernels)
            es = tuple((max(st.expand_ratios),) * len(k) for st, k in zip(self.space.stages, ks))
            return mx.replace(kernels=ks, expands=es)
        return c                    # width phase: everything elastic (resolution too)

    def tasks(self, step, progress):
        ph = self.phase(progress)
        out = [Task(self.max_config)]
        if ph != "full":
            r = self.rng(step)
            out += [Task(self._shrunk(r, ph), kd=True) for _ in range(self.per_step)]
        return out


@register_sampler("pss")
class PSS(Sampler):
    """Prioritized subnet sampling (PSS-Net). MFLOPs (or a latency table) is
    cut into buckets; each bucket has a conditional sampler (per-gene
    marginals of random configs that fall in it — drawn with tilts from the
    smallest to the largest options, so every bucket has them) and a pool of at most
    ``capacity`` configs scored by an EMA of -loss. Each step trains the max
    net on labels and the min net plus one subnet of a random bucket by KD;
    that subnet is fresh from the bucket's sampler with probability p_e (or
    while the pool is not full), else drawn from the pool with probability
    softmax(score / tau). p_e and tau decay from 1 to 0.01 over training."""

    def __init__(self, space, seed=0, buckets: int = 8, capacity: int = 10, metric: Callable | None = None,
                 n_candidates: int = 3000):
        super().__init__(space, seed)
        self.metric = metric or (lambda c: subnet_cost(space, c).mflops)
        lo, hi = self.metric(self.min_config), self.metric(self.max_config)
        self.edges = [lo + (hi - lo) * i / buckets for i in range(buckets + 1)]
        self.capacity = capacity
        self.n_candidates = n_candidates
        self.pools: list[dict[str, float]] = [{} for _ in range(buckets)]

    @functools.cached_property
    def candidates(self) -> list[list[SubnetConfig]]:
        """Each bucket's random configs, drawn on first use (a process that only evaluates a run —
        build-pool — never pays for the thousands of cost evaluations).
        Uniform draws crowd the middle of the cost range (on mbv3-tiny28 3,000 of them left the top two
        of 8 buckets empty, so nothing there but the max net was ever trained): draws tilted from the
        small to the large options cover the whole range, and each bucket's sampler is built from the
        ones that fall in it."""
        r = random.Random(self.seed)
        out: list[list[SubnetConfig]] = [[] for _ in range(self.num_buckets)]
        n = self.n_candidates
        for k in range(n):
            tilt = -6.0 + 12.0 * k / max(1, n - 1)
            c = self.space.sample(r, tilt=tilt)
            out[self.bucket(c)].append(c)
        return out

    @property
    def num_buckets(self) -> int:
        return len(self.edges) - 1

    def bucket(self, config: SubnetConfig) -> int:
        f = self.metric(config)
        for i in range(self.num_buckets):
            if f < self.edges[i + 1]:
                return i
        return self.num_buckets - 1

    @staticmethod
    def decay(progress: float) -> float:
        return 0.01 ** progress          # 1 -> 0.01

    def _conditional(self, b: int, r: random.Random) -> SubnetConfig:
        """A config from bucket b: genes drawn from the bucket's empirical
        marginals (a random bucket member's genes, mixed per stage), rejected
        until it lands in the bucket."""
        cands = self.candidates[b]
        if not cands:
            return self.space.sample(r)
        for _ in range(50):
            parts = [r.choice(cands) for _ in range(self.space.num_stages + 1)]
            c = SubnetConfig(parts[-1].resolution,
                             tuple(p.widths[s] for s, p in enumerate(parts[:-1])),
                             tuple(p.kernels[s] for s, p in enumerate(parts[:-1])),
                             tuple(p.expands[s] for s, p in enumerate(parts[:-1])))
            if self.bucket(c) == b:
                return c
        return r.choice(cands)

    def draw(self, step: int, progress: float) -> SubnetConfig:
        r = self.rng(step)
        nonempty = [i for i in range(self.num_buckets) if self.candidates[i] or self.pools[i]]
        b = r.choice(nonempty)
        pool = self.pools[b]
        p_e = self.decay(progress)
        if len(pool) < self.capacity or r.random() < p_e:
            return self._conditional(b, r)
        tau = max(self.decay(progress), 1e-3)
        ids = list(pool)
        m = max(pool.values())
        weights = [math.exp((pool[i] - m) / tau) for i in ids]
        return SubnetConfig.from_id(r.choices(ids, weights)[0])

    def tasks(self, step, progress):
        return [Task(self.max_config), Task(self.min_config, kd=True), Task(self.draw(step, progress), kd=True)]

    def observe(self, config, loss, step, progress):
        if config in (self.max_config, self.min_config):
            return
        pool = self.pools[self.bucket(config)]
        cid = config.id
        score = -float(loss)
        pool[cid] = 0.9 * pool[cid] + 0.1 * score if cid in pool else score
        if len(pool) > self.capacity:
            del pool[min(pool, key=pool.get)]

    def best(self, per_bucket: int = 1) -> list[list[SubnetConfig]]:
        """The top configs of each bucket's pool, best first."""
        return [[SubnetConfig.from_id(i) for i in sorted(p, key=p.get, reverse=True)[:per_bucket]] for p in self.pools]

    def state_dict(self) -> dict:
        return {"pools": [dict(p) for p in self.pools]}

    def load_state_dict(self, d: dict) -> None:
        pools = d.get("pools", [])
        if len(pools) != self.num_buckets:
            raise ValueError(f"PSS state has {len(pools)} buckets, sampler has {self.num_buckets}")
        self.pools = [{str(k): float(v) for k, v in p.items()} for p in pools]

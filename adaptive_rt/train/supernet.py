"""The elastic supernet in torch: one set of weights, any SubnetConfig.

It executes the same graph IR as the NumPy reference (``graph.build_graph``),
op by op, on slices of its parameters, so a subnet's forward here equals
``reference.run`` on the packed weights. Parameters are kept in the native
layout (``adaptive_rt.model.layout``: ``[Cin, Cout]`` for 1x1 convs, ``[k, k, C]``
depthwise, ...), except that each depthwise block stores only its largest
kernel plus OFA's learned kernel transforms: a smaller kernel is
``T_k @ centre_k(next larger kernel)`` per channel (T initialised to the
identity). ``pack()`` turns the supernet into the pool file's tensors, each
kernel variant computed once.
"""
from __future__ import annotations

from typing import Callable, Mapping

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..model.graph import Graph, Op, build_graph, cached_graph
from ..model.layout import running_stat_specs, tensor_specs
from ..model.space import SearchSpace, SubnetConfig

__all__ = ["Supernet", "key", "activation", "run_graph", "run_op"]


def key(name: str) -> str:
    """Parameter key for a native tensor name (torch forbids '.' in names)."""
    return name.replace(".", "__")


def activation(x: torch.Tensor, act: str) -> torch.Tensor:
    if act == "none":
        return x
    if act == "relu":
        return F.relu(x)
    if act == "relu6":
        return F.hardtanh(x, 0.0, 6.0)
    if act == "hswish":
        return F.hardswish(x)
    if act == "hsigmoid":
        return F.hardsigmoid(x)
    if act == "sigmoid":
        return torch.sigmoid(x)
    raise ValueError(f"unknown activation {act!r}")


TensorFn = Callable[[str], torch.Tensor]                      # native name -> full tensor
BatchNormFn = Callable[[torch.Tensor, Op], torch.Tensor]       # (NCHW y, op) -> normalised y


def run_graph(g: Graph, x: torch.Tensor, tensor: TensorFn, batch_norm: BatchNormFn) -> torch.Tensor:
    """Logits of graph ``g`` for the NHWC batch ``x``: the torch executor of
    the graph IR, over any source of tensors (the supernet's parameters, or a
    pool file's arrays in the torch backend) and any batch norm (training
    statistics, running statistics, a pool entry's)."""
    vals: list = [None] * len(g.shapes)
    vals[0] = x.permute(0, 3, 1, 2)           # NHWC -> NCHW inside
    for op in g.ops:
        vals[op.output] = run_op(op, vals, tensor, batch_norm)
    return vals[g.output].flatten(1)


def _active(tensor: TensorFn, ref) -> torch.Tensor:
    return tensor(ref.name)[tuple(slice(0, a) for a in ref.active)]


def run_op(op: Op, vals: list, tensor: TensorFn, batch_norm: BatchNormFn) -> torch.Tensor:
    """One op of the graph IR on NCHW tensors (``vals`` by value index)."""
    x = vals[op.inputs[0]]
    if op.kind == "resize":
        return F.interpolate(x, size=op.out_shape[:2], mode="bilinear", align_corners=False, antialias=False)
    if op.kind == "add":
        return x + vals[op.inputs[1]]
    if op.kind == "gap":
        return x.mean(dim=(2, 3), keepdim=True)
    if op.kind == "se":
        w1, b1, w2, b2 = (_active(tensor, r) for r in op.se)
        s = x.mean(dim=(2, 3))
        gate = activation(F.relu(s @ w1 + b1) @ w2 + b2, op.gate)
        return x * gate[:, :, None, None]
    w = _active(tensor, op.weight)
    if op.kind == "conv":
        k, cin = op.kernel, op.in_shape[2]
        wk = w.reshape(k, k, cin, -1).permute(3, 2, 0, 1)
        y = F.conv2d(x, wk, stride=op.stride, padding=op.pad)
    elif op.kind == "dwconv":
        wk = w.permute(2, 0, 1).unsqueeze(1)
        y = F.conv2d(x, wk, stride=op.stride, padding=op.pad, groups=wk.shape[0])
    elif op.kind == "pwconv":
        y = F.conv2d(x, w.t()[:, :, None, None])
    elif op.kind == "linear":
        y = (x.flatten(1) @ w)[:, :, None, None]
    else:
        raise ValueError(f"unknown op kind {op.kind!r}")
    if op.bias is not None:
        y = y + _active(tensor, op.bias)[None, :, None, None]
    if op.bn is not None:
        y = batch_norm(y, op)
    return activation(y, op.act)


class Supernet(nn.Module):
    """All weights of a SearchSpace; ``forward(x, config)`` runs one subnet.

    ``x`` is NHWC float32 (as everywhere in adaptive_rt). In training mode BN
    uses batch statistics and updates the supernet's running statistics
    (their first C channels); in eval mode it uses those running statistics,
    or ``bn_stats`` (name -> tensor, e.g. a pool entry's) when given.
    """

    def __init__(self, space: SearchSpace, seed: int = 0, bn_momentum: float = 0.1):
        super().__init__()
        self.space = space
        self.bn_momentum = bn_momentum
        self.bn_group = None        # a torch.distributed group: BN batch statistics over all its ranks
        self.exact_bn = False       # training BN written out (_batch_bn) instead of F.batch_norm
        g = torch.Generator().manual_seed(seed)
        specs = tensor_specs(space)
        self.dw_max: dict[str, int] = {}      # block prefix -> largest kernel stored
        self.dw_sizes: dict[str, tuple[int, ...]] = {}
        params = nn.ParameterDict()
        for name, shape in specs.items():
            if ".dw" in name and not name.endswith((".bn.weight", ".bn.bias")):
                prefix, k = name.rsplit(".dw", 1)
                k = int(k.split(".")[0])
                self.dw_sizes[prefix] = tuple(sorted(set(self.dw_sizes.get(prefix, ())) | {k}))
                continue
            params[key(name)] = nn.Parameter(self._init(name, shape, g))
        for prefix, sizes in self.dw_sizes.items():
            kmax = sizes[-1]
            c = specs[f"{prefix}.dw{kmax}.weight"][2]
            self.dw_max[prefix] = kmax
            params[key(f"{prefix}.dw{kmax}.weight")] = nn.Parameter(
                torch.randn(kmax, kmax, c, generator=g) * np.sqrt(2.0 / (kmax * kmax)))
            for k in sizes[:-1]:
                params[key(f"{prefix}.dw.t{k}")] = nn.Parameter(torch.eye(k * k))
        self.params = params
        for name, shape in running_stat_specs(space).items():
            self.register_buffer(key(name), torch.zeros(shape) if name.endswith(".mean") else torch.ones(shape))

    @staticmethod
    def _init(name: str, shape: tuple[int, ...], g: torch.Generator) -> torch.Tensor:
        if name.endswith(".bn.weight"):
            return torch.ones(shape)
        if name.endswith(".bias"):
            return torch.zeros(shape)
        return torch.randn(*shape, generator=g) * np.sqrt(2.0 / shape[0])

    # ------------------------------------------------------------------ weights
    def dw_weight(self, prefix: str, k: int) -> torch.Tensor:
        """The full-width ``[k, k, C_max]`` depthwise kernel of size k: the
        transformed centre of the next larger kernel (OFA's elastic kernel)."""
        kmax = self.dw_max[prefix]
        w = self.params[key(f"{prefix}.dw{kmax}.weight")]
        sizes = self.dw_sizes[prefix]
        for small in reversed(sizes[:-1]):
            if small < k:
                break
            big = w.shape[0]
            s = (big - small) // 2
            centre = w[s:s + small, s:s + small, :].reshape(small * small, -1)
            w = (self.params[key(f"{prefix}.dw.t{small}")] @ centre).reshape(small, small, -1)
        return w

    def tensor(self, name: str) -> torch.Tensor:
        if ".dw" in name and name.endswith(".weight") and not name.endswith(".bn.weight"):
            prefix, rest = name.rsplit(".dw", 1)
            return self.dw_weight(prefix, int(rest.split(".")[0]))
        k = key(name)
        if k in self.params:
            return self.params[k]
        return getattr(self, k)

    # ------------------------------------------------------------------ forward
    def forward(self, x: torch.Tensor, config: SubnetConfig, bn_stats: Mapping[str, torch.Tensor] | None = None,
                graph: Graph | None = None) -> torch.Tensor:
        g = graph if graph is not None else cached_graph(self.space, config, tuple(x.shape[1:3]))
        return run_graph(g, x, self.tensor, lambda y, op: self._bn(y, op, bn_stats))

    def _bn(self, y: torch.Tensor, op: Op, bn_stats) -> torch.Tensor:
        bn = op.bn
        c = bn.channels
        gamma, beta = self.tensor(bn.gamma)[:c], self.tensor(bn.beta)[:c]
        if bn_stats is not None and not self.training:
            mean, var = bn_stats[bn.mean()], bn_stats[bn.var()]
        else:
            mean, var = self.tensor(bn.mean())[:c], self.tensor(bn.var())[:c]
            if self.training and self.exact_bn:
                return self._batch_bn(y, mean, var, gamma, beta)
        return F.batch_norm(y, mean, var, gamma, beta, training=self.training, momentum=self.bn_momentum,
                            eps=self.space.bn_eps)

    def _batch_bn(self, y: torch.Tensor, run_mean: torch.Tensor, run_var: torch.Tensor, gamma: torch.Tensor,
                  beta: torch.Tensor) -> torch.Tensor:
        """Training-mode batch norm written out, from the sums of ``y - K``
        and its square, K the running mean (a per-channel shift that keeps
        the variance free of cancellation once K is near the batch mean).
        With ``bn_group`` set the sums are all-reduced — once per BN forward
        and once in its backward (autograd) — so the statistics are those of
        the union of every rank's batch (synchronised BN): N processes with
        batch B/N each normalise exactly as one process with batch B. Running
        statistics get the global mean and unbiased variance, identically on
        every rank."""
        from .distributed import all_reduce_autograd
        c = y.shape[1]
        k = run_mean.detach()[None, :, None, None]
        d = y - k
        s = torch.cat([d.sum((0, 2, 3)), d.square().sum((0, 2, 3)),
                       y.new_full((1,), float(y.shape[0] * y.shape[2] * y.shape[3]))])
        if self.bn_group is not None:
            s = all_reduce_autograd(s, self.bn_group)
        n = s[2 * c:].detach()
        dmean = s[:c] / n
        var = (s[c:2 * c] / n - dmean.square()).clamp(min=0.0)
        mean = run_mean.detach() + dmean
        scale = gamma * torch.rsqrt(var + self.space.bn_eps)
        out = torch.addcmul((beta - mean * scale)[None, :, None, None], y, scale[None, :, None, None])
        with torch.no_grad():
            m = self.bn_momentum
            run_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
            run_var.mul_(1 - m).add_(var.detach() * (n / (n - 1).clamp(min=1)), alpha=m)
        return out

    # ------------------------------------------------------------------ BN
    @torch.no_grad()
    def recalibrate_bn(self, config: SubnetConfig, batches, prefix: str = "") -> dict[str, np.ndarray]:
        """BN statistics of one subnet re-estimated on ``batches`` (NHWC
        tensors) in train mode as cumulative averages over the batches (OFA /
        US-Nets); the supernet's own running statistics are restored after.
        Returns the subnet's statistics as per-entry arrays under ``prefix``."""
        saved = {n: getattr(self, key(n)).clone() for n in running_stat_specs(self.space)}
        was_training, momentum, group, exact = self.training, self.bn_momentum, self.bn_group, self.exact_bn
        g = None
        try:
            self.train()
            self.bn_group, self.exact_bn = None, False   # this process's batches (build-pool spreads subnets)
            for i, xb in enumerate(batches):
                if g is None:
                    g = build_graph(self.space, config, tuple(xb.shape[1:3]))
                self.bn_momentum = 1.0 / (i + 1)     # batch i enters the average with weight 1/(i+1)
                self.forward(xb, config, graph=g)
            if g is None:
                raise ValueError("recalibrate_bn needs at least one batch")
            return {name: getattr(self, key(src))[:c].cpu().numpy().astype(np.float32)
                    for name, src, c in self.bn_stat_names(config, tuple(g.input_shape[:2]), prefix)}
        finally:
            for n, v in saved.items():
                getattr(self, key(n)).copy_(v)
            self.bn_momentum, self.bn_group, self.exact_bn = momentum, group, exact
            self.train(was_training)

    def bn_stat_names(self, config: SubnetConfig, input_hw: tuple[int, int], prefix: str = "") -> list:
        """(entry name, supernet buffer name, channels) of every BN statistic
        ``recalibrate_bn`` returns for ``config``, in its order."""
        out = []
        for bn in cached_graph(self.space, config, input_hw).bn_refs():
            out.append((bn.mean(prefix), bn.mean(), bn.channels))
            out.append((bn.var(prefix), bn.var(), bn.channels))
        return out

    # ------------------------------------------------------------------ channel sorting
    @torch.no_grad()
    def sort_channels(self) -> None:
        """OFA's channel sorting: in every block with an expand conv, order
        the middle channels by the L1 norm of their project-conv weights,
        largest first, permuting the expand conv, depthwise kernels, BN
        parameters and statistics and SE weights to match. The full network
        computes exactly the same function; a narrower subnet then keeps the
        most important channels."""
        specs = tensor_specs(self.space)
        for s, stage in enumerate(self.space.stages):
            if not stage.has_expand:
                continue
            for b in range(stage.max_depth):
                p = f"s{s}.b{b}"
                perm = torch.argsort(self.tensor(f"{p}.project.weight").abs().sum(1), descending=True, stable=True)

                def permute(name: str, dim: int) -> None:
                    t = self.tensor(name)
                    t.copy_(t.index_select(dim, perm))

                permute(f"{p}.expand.weight", 1)
                for n in ("expand.bn.weight", "expand.bn.bias", "expand.bn.mean", "expand.bn.var",
                          "dw.bn.weight", "dw.bn.bias", "dw.bn.mean", "dw.bn.var"):
                    permute(f"{p}.{n}", 0)
                permute(f"{p}.dw{self.dw_max[p]}.weight", 2)
                if f"{p}.se.reduce.weight" in specs:
                    permute(f"{p}.se.reduce.weight", 0)
                    permute(f"{p}.se.expand.weight", 1)
                    permute(f"{p}.se.expand.bias", 0)
                permute(f"{p}.project.weight", 0)

    # ------------------------------------------------------------------ packing
    @torch.no_grad()
    def pack(self) -> dict[str, np.ndarray]:
        """Every tensor of the pool file's native layout (and the supernet's
        own running statistics), as float32 NumPy arrays."""
        out = {name: self.tensor(name).detach().cpu().numpy().astype(np.float32)
               for name in tensor_specs(self.space)}
        for name in running_stat_specs(self.space):
            out[name] = getattr(self, key(name)).detach().cpu().numpy().astype(np.float32)
        return out

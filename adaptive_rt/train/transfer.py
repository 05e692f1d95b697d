"""Start a run from a pretrained supernet (Transfer-OFA's setting): the
weights of one of our runs, of a pool file, or of a Once-for-All checkpoint,
fine-tuned on the user's data (``adaptive-rt train --init SOURCE``).

What is taken over: every supernet parameter whose name and shape the new
run has, and the supernet's BN running statistics where the source has them
(a run, an OFA checkpoint; a pool keeps per-entry statistics only, so they
start fresh). A pool stores each kernel size of an elastic depthwise layer
already transformed (``dw5 = T5 @ centre(dw7)``); the transforms ``T`` are
recovered by least squares from those (exact where the layer has at least
k*k channels). When the data has another class count than the source's
space, the run gets the same space with that many outputs (named
``<space>-<N>cls``) and a new, freshly initialised classifier; when it has
other input channels the source cannot be used (refused with a message).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import torch

from ..model.layout import running_stat_specs, tensor_specs
from ..model.space import SearchSpace

__all__ = ["InitError", "InitWeights", "load_init", "for_data"]


class InitError(ValueError):
    """The --init source cannot start this run (the message says why)."""


@dataclass
class InitWeights:
    space: SearchSpace
    params: dict[str, torch.Tensor]                     # supernet parameter key -> tensor
    buffers: dict[str, torch.Tensor] = field(default_factory=dict)
    source: str = ""

    def describe(self) -> str:
        return f"{self.source} ({self.space.name}, {len(self.params)} parameters)"


def load_init(source: str) -> InitWeights:
    """The weights of a run directory, a pool file or an OFA checkpoint."""
    path = os.fspath(source)
    if os.path.isdir(path):
        return _from_run(path)
    if not os.path.isfile(path):
        from ..assets import pool_path
        resolved = pool_path(path)          # a shipped pool's name
        if not os.path.isfile(resolved):
            raise InitError(f"--init {path}: no such run directory, pool file or checkpoint")
        path = resolved
    with open(path, "rb") as f:
        head = f.read(16)
    if len(head) >= 9 and head[8:9] == b"{":   # safetensors: a u64 header length, then JSON
        return _from_pool(path)
    return _from_ofa(path)


def _from_run(run_dir: str) -> InitWeights:
    from ..io.jsonio import read_json_file
    from .checkpoint import STATE, read_checkpoint
    from .supernet import Supernet
    state_path = os.path.join(run_dir, STATE)
    if not os.path.isfile(state_path):
        raise InitError(f"--init {run_dir}: not a training run ({STATE} missing)")
    try:
        state = read_json_file(state_path, "training state", ValueError)
        space = SearchSpace.from_dict(state["space"])
        net = Supernet(space)
        _, tensors, _ = read_checkpoint(run_dir, {k: p.shape for k, p in net.params.items()},
                                        {k: b.shape for k, b in net.named_buffers()})
    except (ValueError, KeyError, TypeError, OSError) as e:
        raise InitError(f"--init {run_dir}: cannot read its checkpoint: {e}") from None
    return InitWeights(space, {k[2:]: v for k, v in tensors.items() if k.startswith("p.")},
                       {k[2:]: v for k, v in tensors.items() if k.startswith("b.")},
                       f"run {run_dir}, epoch {state.get('epoch')}")


def _from_pool(path: str) -> InitWeights:
    from ..io.poolfile import PoolFileError, load_pool
    try:
        pool = load_pool(path)
    except (PoolFileError, OSError) as e:
        raise InitError(f"--init {path}: {e}") from None
    missing = [n for n in tensor_specs(pool.space) if n not in pool.tensors]
    if missing:
        raise InitError(f"--init {path}: the pool has no float32 weights ({missing[0]} and {len(missing) - 1} more; "
                        "an int8-only pool cannot start training)")
    params = supernet_params(pool.space, pool.tensors)
    buffers = {}
    from .supernet import key
    for name in running_stat_specs(pool.space):
        if name in pool.tensors:
            buffers[key(name)] = torch.from_numpy(np.array(pool.tensors[name], np.float32))
    return InitWeights(pool.space, params, buffers, f"pool {path}")


def supernet_params(space: SearchSpace, tensors) -> dict[str, torch.Tensor]:
    """Supernet parameters from native-layout tensors (a pool's): every
    tensor as is, the elastic depthwise transforms fitted to the stored
    smaller kernels (``T = small @ pinv(centre)``, least squares)."""
    from .supernet import Supernet, key
    net = Supernet(space)
    out: dict[str, torch.Tensor] = {}
    for name in tensor_specs(space):
        k = key(name)
        if k in net.params:
            out[k] = torch.from_numpy(np.array(tensors[name], np.float32))
    for prefix, sizes in net.dw_sizes.items():
        big = np.asarray(tensors[f"{prefix}.dw{sizes[-1]}.weight"], np.float64)
        for small in reversed(sizes[:-1]):    # each smaller kernel from the centre of the next larger one
            s = (big.shape[0] - small) // 2
            centre = big[s:s + small, s:s + small, :].reshape(small * small, -1)
            want = np.asarray(tensors[f"{prefix}.dw{small}.weight"], np.float64).reshape(small * small, -1)
            t = want @ np.linalg.pinv(centre)
            out[key(f"{prefix}.dw.t{small}")] = torch.from_numpy(t.astype(np.float32))
            big = want.reshape(small, small, -1)
    return out


def _from_ofa(path: str) -> InitWeights:
    from .ofa import OfaImportError, load_ofa_checkpoint, ofa_space, ofa_supernet
    try:
        state = load_ofa_checkpoint(path)
    except OfaImportError as e:
        raise InitError(f"--init {path}: not a run directory, a pool file or an OFA checkpoint ({e})") from None
    errors = []
    for width in (1.0, 1.2):
        try:
            net = ofa_supernet(state, ofa_space(width))
        except OfaImportError as e:
            errors.append(str(e))
            continue
        return InitWeights(net.space, {k: p.detach().clone() for k, p in net.params.items()},
                           {k: b.detach().clone() for k, b in net.named_buffers()}, f"OFA checkpoint {path}")
    raise InitError(f"--init {path}: not an OFA MobileNetV3 w1.0 or w1.2 checkpoint ({errors[0]})")


def for_data(init: InitWeights, num_classes: int, in_channels: int) -> InitWeights:
    """``init`` for a dataset: the same space, or one with ``num_classes``
    outputs and a new classifier (its parameters left out, to be initialised
    afresh); other input channels are refused."""
    sp = init.space
    if sp.in_channels != in_channels:
        raise InitError(f"--init: {init.source} takes {sp.in_channels}-channel images, the dataset has "
                        f"{in_channels} channels")
    if sp.num_classes == num_classes:
        return init
    d = sp.to_dict()
    d["num_classes"] = num_classes
    d["name"] = f"{sp.name.rsplit('-', 1)[0] if sp.name.endswith('cls') else sp.name}-{num_classes}cls"
    space = SearchSpace.from_dict(d)
    from .supernet import Supernet
    shapes = {k: p.shape for k, p in Supernet(space).params.items()}
    params = {k: v for k, v in init.params.items() if k in shapes and shapes[k] == v.shape}
    return InitWeights(space, params, init.buffers, init.source)

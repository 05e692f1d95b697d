"""Training checkpoints in a run directory, crash-safe.

An epoch's checkpoint is two safetensors files — ``checkpoint-eN`` (the
supernet's parameters ``p.*`` and buffers ``b.*``) and ``optimizer-eN``
(momentum by parameter) — and ``state.json``, written last and atomically:
it names the epoch's files, so it is the commit point. A crash at any moment
leaves the previous complete checkpoint in force; files of older epochs are
removed after the commit. File names read back from ``state.json`` are
accepted only when they are plain names of this pattern (never paths).
"""
from __future__ import annotations

import json
import os
import re
from typing import Mapping

import torch

from ..io.atomic import atomic_write_bytes
from ..io.jsonio import read_json_file

__all__ = ["STATE", "TENSOR_FILE", "write_checkpoint", "read_checkpoint"]

STATE = "state.json"
TENSOR_FILE = re.compile(r"^(checkpoint|optimizer)(-e[0-9]+)?\.safetensors$")
_LEGACY = {"checkpoint": "checkpoint.safetensors", "optimizer": "optimizer.safetensors"}


def _save_tensors(path: str, tensors: Mapping[str, torch.Tensor]) -> None:
    from safetensors.torch import save
    atomic_write_bytes(path, save({k: v.detach().contiguous().cpu() for k, v in tensors.items()}))


def _load_tensors(path: str) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file
    return load_file(path)


def write_checkpoint(out_dir: str, epoch: int, model: Mapping[str, torch.Tensor],
                     momentum: Mapping[str, torch.Tensor], state: dict) -> None:
    """The epoch's tensor files, then ``state.json`` naming them (the commit
    point, ``state`` plus ``files``), then the older epochs' files removed."""
    os.makedirs(out_dir, exist_ok=True)
    files = {"checkpoint": f"checkpoint-e{epoch}.safetensors", "optimizer": f"optimizer-e{epoch}.safetensors"}
    _save_tensors(os.path.join(out_dir, files["checkpoint"]), model)
    _save_tensors(os.path.join(out_dir, files["optimizer"]), momentum)
    atomic_write_bytes(os.path.join(out_dir, STATE), json.dumps({**state, "files": files}, indent=1).encode())
    for f in os.listdir(out_dir):
        if TENSOR_FILE.match(f) and f not in files.values():
            try:
                os.unlink(os.path.join(out_dir, f))
            except OSError:
                pass


def read_checkpoint(out_dir: str, params: Mapping[str, torch.Size], buffers: Mapping[str, torch.Size]):
    """(state, model tensors, momentum) of the committed checkpoint, every
    tensor checked against the shapes the supernet has now; ValueError (or
    FileNotFoundError) naming the file and the problem otherwise."""
    path = os.path.join(out_dir, STATE)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no checkpoint in {out_dir} ({STATE} missing)")
    state = read_json_file(path, "training state", ValueError)
    if not isinstance(state, dict) or not all(k in state for k in ("epoch", "step", "history", "sampler")):
        raise ValueError(f"{path}: not a training state")
    files = state.get("files") or _LEGACY
    names = []
    for role in ("checkpoint", "optimizer"):   # names from the file: plain names of our own pattern only
        f = files.get(role) if isinstance(files, dict) else None
        if not isinstance(f, str) or not TENSOR_FILE.match(f) or not f.startswith(role):
            raise ValueError(f"{path}: invalid {role} file name {f!r}")
        names.append(os.path.join(out_dir, f))
    tensors = _load_tensors(names[0])
    for kind, prefix, shapes in (("parameter", "p.", params), ("buffer", "b.", buffers)):
        for k, shape in shapes.items():
            t = tensors.get(prefix + k)
            if t is None or t.shape != shape:
                raise ValueError(f"{names[0]}: {kind} {k} missing or of another shape")
    momentum = _load_tensors(names[1])
    for k, v in momentum.items():
        if k not in params or v.shape != params[k]:
            raise ValueError(f"{names[1]}: momentum {k} matches no parameter")
    return state, tensors, momentum

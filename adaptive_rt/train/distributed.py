"""Distributed training on torch.distributed: one process per device,
started by ``torchrun`` (or anything that sets its environment: RANK,
WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT).

Nothing here is home-made cluster code: the process group is PyTorch's
(NCCL between GPUs, gloo between CPUs), gradients are averaged by
DistributedDataParallel. This module only holds the run's place in the
group (:class:`Dist`) and the few collectives the trainer needs beyond
DDP — all JSON or tensors, never pickle (``broadcast_object_list`` pickles,
so it is not used).

A single process is ``Dist()`` (world 1): every helper is then a no-op, so
the trainer has one code path.
"""
from __future__ import annotations

import datetime
import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any, Iterable

import torch
import torch.distributed as tdist

__all__ = ["Dist", "DistError", "ReplicaMismatch", "init_from_env", "shutdown", "resolve_device",
           "all_reduce_sum", "all_reduce_autograd", "broadcast_json", "broadcast_tensors", "check_replicas", "is_comm_failure"]


class DistError(RuntimeError):
    """The distributed setup is wrong (environment, device, backend)."""


class ReplicaMismatch(RuntimeError):
    """Ranks that must hold the same model state do not."""


@dataclass(frozen=True)
class Dist:
    """This process's place in the run: rank ``rank`` of ``world``."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    backend: str | None = None          # "gloo" | "nccl" when world > 1
    timeout_s: float = 0.0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def describe(self) -> str:
        if not self.enabled:
            return f"1 process on {self.device}"
        return f"rank {self.rank} of {self.world} ({self.backend} on {self.device})"


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto``: this rank's GPU when CUDA is present, else the CPU."""
    if name not in ("auto", "cpu", "cuda"):
        raise DistError(f"unknown device {name!r}; use auto, cpu or cuda")
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise DistError("--device cuda: this torch has no CUDA device")
    n = torch.cuda.device_count()
    if local_rank >= n:
        raise DistError(f"local rank {local_rank} has no GPU: this machine has {n}; start at most {n} "
                        f"processes per node (torchrun --nproc_per_node {n})")
    return torch.device("cuda", local_rank)


def _env_int(name: str, default: int | None = None) -> int:
    v = os.environ.get(name)
    if v is None:
        if default is None:
            raise DistError(f"distributed run: environment variable {name} is not set (start with torchrun)")
        return default
    try:
        return int(v)
    except ValueError:
        raise DistError(f"distributed run: {name}={v!r} is not an integer") from None


def init_from_env(device: str = "auto", timeout_s: float = 600.0) -> Dist:
    """Join the process group torchrun describes in the environment, or
    return a single-process ``Dist`` when WORLD_SIZE is unset or 1.

    ``timeout_s`` bounds every collective: a rank that died or stalled makes
    the others fail after at most that long instead of hanging (a rank that
    exits closes its connections, and gloo then fails at once)."""
    world = _env_int("WORLD_SIZE", 1)
    if world < 1:
        raise DistError(f"WORLD_SIZE={world} must be at least 1")
    if world == 1:
        return Dist(device=resolve_device(device, 0))
    if not (timeout_s > 0):
        raise DistError("the distributed timeout must be positive")
    rank = _env_int("RANK")
    local_rank = _env_int("LOCAL_RANK", 0)
    local_world = _env_int("LOCAL_WORLD_SIZE", 1)
    if not 0 <= rank < world:
        raise DistError(f"RANK={rank} is outside 0..{world - 1}")
    for v in ("MASTER_ADDR", "MASTER_PORT"):
        if not os.environ.get(v):
            raise DistError(f"distributed run: environment variable {v} is not set (start with torchrun)")
    dev = resolve_device(device, local_rank)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
        backend = "nccl"
    else:
        backend = "gloo"
        if "OMP_NUM_THREADS" not in os.environ:    # torchrun sets 1; plain launchers may not
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // max(1, local_world)))
    if not tdist.is_initialized():
        tdist.init_process_group(backend, rank=rank, world_size=world,
                                 timeout=datetime.timedelta(seconds=timeout_s))
    return Dist(rank, world, local_rank, local_world, dev, backend, timeout_s)


def shutdown(d: Dist) -> None:
    """Leave the group together: a barrier (so no rank tears its connections
    down while another still writes its checkpoint), then destroy it."""
    if d.enabled and tdist.is_initialized():
        tdist.barrier()
        tdist.destroy_process_group()


def is_comm_failure(e: BaseException) -> bool:
    """True for the errors a collective raises when a peer is gone or late."""
    if isinstance(e, getattr(tdist, "DistError", ())):
        return True
    msg = str(e).lower()
    return isinstance(e, RuntimeError) and any(s in msg for s in (
        "gloo", "nccl", "connection closed", "connection reset", "timed out", "timeout", "broken pipe"))


# ---------------------------------------------------------------------------- collectives
def all_reduce_sum(t: torch.Tensor, d: Dist) -> torch.Tensor:
    """Sum ``t`` over ranks, in place (identical bytes on every rank)."""
    if d.enabled:
        tdist.all_reduce(t, op=tdist.ReduceOp.SUM)
    return t


class _AllReduceSum(torch.autograd.Function):
    """Sum over the group's ranks; the gradient of every input is the sum
    of the outputs' gradients over the ranks (each rank's loss uses the sum)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, group) -> torch.Tensor:
        ctx.group = group
        y = x.detach().clone().contiguous()
        tdist.all_reduce(y, op=tdist.ReduceOp.SUM, group=group)
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        g = grad.detach().clone().contiguous()
        tdist.all_reduce(g, op=tdist.ReduceOp.SUM, group=ctx.group)
        return g, None


def all_reduce_autograd(x: torch.Tensor, group=None) -> torch.Tensor:
    """Differentiable all-reduce (sum), e.g. for synchronised BN statistics."""
    return _AllReduceSum.apply(x, group)


def broadcast_json(obj: Any, d: Dist, src: int = 0) -> Any:
    """``obj`` of rank ``src`` on every rank, sent as UTF-8 JSON bytes."""
    if not d.enabled:
        return obj
    if d.rank == src:
        payload = json.dumps(obj).encode()
        n = torch.tensor([len(payload)], dtype=torch.int64, device=d.device)
    else:
        n = torch.zeros(1, dtype=torch.int64, device=d.device)
    tdist.broadcast(n, src)
    if d.rank == src:
        buf = torch.frombuffer(bytearray(payload), dtype=torch.uint8).to(d.device)
    else:
        buf = torch.empty(int(n.item()), dtype=torch.uint8, device=d.device)
    tdist.broadcast(buf, src)
    return obj if d.rank == src else json.loads(bytes(buf.cpu().numpy()).decode())


@torch.no_grad()
def broadcast_tensors(tensors: Iterable[torch.Tensor], d: Dist, src: int = 0) -> None:
    """Overwrite each (contiguous) tensor in place with rank ``src``'s."""
    if not d.enabled:
        return
    for t in tensors:
        tdist.broadcast(t, src)


def digest(tensors: Iterable[tuple[str, torch.Tensor]], extra: Any = None) -> bytes:
    """SHA-256 over the names and bytes of tensors (and a JSON-able extra)."""
    h = hashlib.sha256()
    for name, t in tensors:
        h.update(name.encode())
        h.update(t.detach().contiguous().cpu().numpy().tobytes())
    if extra is not None:
        h.update(json.dumps(extra, sort_keys=True).encode())
    return h.digest()


def check_replicas(dig: bytes, d: Dist, what: str) -> None:
    """Raise :class:`ReplicaMismatch` unless every rank's digest equals rank 0's."""
    if not d.enabled:
        return
    mine = torch.frombuffer(bytearray(dig), dtype=torch.uint8).to(d.device)
    got = [torch.empty_like(mine) for _ in range(d.world)]
    tdist.all_gather(got, mine)
    ref = got[0].cpu()
    bad = [r for r, g in enumerate(got) if not torch.equal(g.cpu(), ref)]
    if bad:
        raise ReplicaMismatch(f"{what} on rank(s) {', '.join(map(str, bad))} differ from rank 0's")

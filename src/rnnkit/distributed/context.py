"""This process's place in a distributed run, and the handful of collectives the trainer uses."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from rnnkit.errors import UserError

# Rank 0 validates alone while the others wait in a collective; give slow CPU evaluations room before the
# process group's watchdog declares a hang (NCCL's default is 10 minutes).
TIMEOUT = timedelta(hours=2)


def env_world() -> tuple[int, int, int]:
    """(rank, world size, local rank) from the variables torchrun sets; (0, 1, 0) outside torchrun."""
    try:
        return (
            int(os.environ.get("RANK", 0)),
            int(os.environ.get("WORLD_SIZE", 1)),
            int(os.environ.get("LOCAL_RANK", 0)),
        )
    except ValueError:
        raise UserError("RANK / WORLD_SIZE / LOCAL_RANK must be integers (they are set by torchrun)") from None


@dataclass(frozen=True)
class DistContext:
    """Rank and world size, plus helpers that are no-ops (or identities) in a single process."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    comm_device: torch.device = field(default_factory=lambda: torch.device("cpu"))  # NCCL needs CUDA tensors

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def wrap(self, model: nn.Module, device: torch.device) -> nn.Module:
        """The module to train with: DistributedDataParallel when distributed, the model itself otherwise.

        DDP broadcasts rank 0's parameters at construction and averages gradients during ``backward``.
        """
        if not self.enabled:
            return model
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index] if device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    def broadcast_object(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank (validation metrics, decisions)."""
        if not self.enabled:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def all_gather_object(self, obj: Any) -> list[Any]:
        if not self.enabled:
            return [obj]
        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def all_reduce_sum(self, values: list[float]) -> list[float]:
        """Element-wise sums over ranks, in float64."""
        if not self.enabled:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=self.comm_device)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t.tolist()

    def stop_flags(self, main_only: list[bool], any_rank: list[bool]) -> tuple[list[bool], list[bool]]:
        """Agree on stop conditions: ``main_only`` flags are rank 0's decision (a time budget measured on one
        clock), ``any_rank`` flags are true if true anywhere (a Ctrl-C that reached one process)."""
        if not self.enabled:
            return main_only, any_rank
        mine = [float(f and self.is_main) for f in main_only] + [float(f) for f in any_rank]
        t = torch.tensor(mine, device=self.comm_device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        flags = [bool(v) for v in t.tolist()]
        return flags[: len(main_only)], flags[len(main_only) :]


SINGLE = DistContext()


def init_from_env(device: torch.device) -> tuple[DistContext, torch.device]:
    """Join the process group torchrun described, if any; returns the context and this rank's device.

    On CUDA each local rank takes GPU ``LOCAL_RANK`` and NCCL carries the gradients; on CPU gloo does.
    """
    rank, world, local_rank = env_world()
    if world <= 1:
        return SINGLE, device
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise UserError(
                f"LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} CUDA device(s) here; "
                f"start at most one process per GPU"
            )
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        backend = "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend, rank=rank, world_size=world, timeout=TIMEOUT)
    comm = device if backend == "nccl" else torch.device("cpu")
    return DistContext(rank=rank, world=world, local_rank=local_rank, comm_device=comm), device


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def gather_columns(t: Tensor) -> Tensor:
    """Concatenate every rank's ``t`` along dim 1 (the batch dimension of an RNN state), in rank order."""
    # t: (layers, batch / world, hidden) -> (layers, batch, hidden)
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return t
    t = t.contiguous()
    parts = [torch.empty_like(t) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, t)
    return torch.cat(parts, dim=1)

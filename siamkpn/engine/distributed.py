"""torch.distributed helpers: one code path for torchrun, torch.distributed.launch and a plain process."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from toolkit.errors import BadValue

__all__ = ["DistInfo", "init_distributed", "all_reduce_mean", "barrier", "broadcast_from_rank0", "cleanup"]


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str = "auto", local_rank_arg: int = -1) -> DistInfo:
    """Join the process group that torchrun / torch.distributed.launch describe in the environment.

    NCCL on GPU, gloo on CPU. Without those variables this is a single process.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", local_rank_arg if local_rank_arg >= 0 else 0))
    use_cuda = torch.cuda.is_available() if device == "auto" else device.startswith("cuda")
    if use_cuda and not torch.cuda.is_available():
        raise BadValue(f"--device {device}: CUDA is not available on this machine (use --device cpu)")
    if use_cuda and ":" in device and world == 1:  # one process: --device cuda:N picks the GPU
        local_rank = int(device.split(":", 1)[1])
    if use_cuda:
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
    else:
        dev = torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistInfo(rank=rank, world_size=world, local_rank=local_rank, device=dev)


def all_reduce_mean(t: torch.Tensor) -> torch.Tensor:
    """Mean of `t` over ranks (identity in a single process)."""
    if dist.is_initialized() and dist.get_world_size() > 1:
        t = t.clone()
        dist.all_reduce(t)
        t /= dist.get_world_size()
    return t


def broadcast_from_rank0(obj: Any) -> Any:
    """Rank 0's `obj` on every rank (a picklable value; identity in a single process): what rank 0 alone decided."""
    if dist.is_initialized() and dist.get_world_size() > 1:
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]
    return obj


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def cleanup() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()

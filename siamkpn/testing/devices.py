"""One device per worker from a --device value (a list, ``cuda`` for every GPU, LOCAL_RANK under torchrun)."""
from __future__ import annotations

import os
from typing import List, Optional

from siamkpn.cli.common import UsageError

__all__ = ["default_threads", "local_rank", "worker_count", "worker_devices"]


def _cuda_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _expand(items: List[str], rank: Optional[int], gpus: int) -> List[str]:
    """``auto`` and ``cuda`` as the GPUs they mean: cuda:LOCAL_RANK under torchrun, else every visible GPU."""
    if len(items) != 1 or items[0] not in ("auto", "cuda") or gpus == 0:
        return items  # cpu, cuda:N, a list; `auto` on a machine without CUDA stays auto (the CPU); `cuda` errs later
    if rank is not None:
        return [f"cuda:{rank}"]
    return [f"cuda:{i}" for i in range(gpus)]


def worker_count(workers: Optional[int], device: str) -> int:
    """--workers, by default one per device of an explicit list (``cuda:0,cuda:1`` -> 2), else 1."""
    if workers is not None:
        return workers
    return max(1, len(device.split(","))) if "," in device else 1


def worker_devices(device: str, workers: int, rank: Optional[int] = None) -> List[str]:
    """The device of each of `workers` workers: the listed devices in turn (round-robin).

    A list longer than `workers` is a usage error naming the devices left unused; ``cuda`` (and ``auto`` on a CUDA
    machine) means every visible GPU, of which `workers` workers take the first ones in turn; under torchrun
    (`rank` = LOCAL_RANK) they mean ``cuda:LOCAL_RANK``.
    """
    items = device.split(",")
    if len(items) > workers:
        raise UsageError(f"--device {device} lists {len(items)} devices but --workers is {workers}: "
                         f"{', '.join(items[workers:])} would stay unused (use --workers {len(items)} or more)")
    expanded = _expand(items, rank, _cuda_count() if items[0] in ("auto", "cuda") and len(items) == 1 else 0)
    return [expanded[i % len(expanded)] for i in range(workers)]


def local_rank() -> Optional[int]:
    """LOCAL_RANK as torchrun sets it, else None."""
    value = os.environ.get("LOCAL_RANK", "")
    return int(value) if value.isdigit() else None


def default_threads(threads: Optional[int], workers: int) -> Optional[int]:
    """--threads, by default the cores divided among the workers (at least 1); None (torch's choice) for one
    worker, as the sequential run always had."""
    if threads is not None or workers == 1:
        return threads
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // workers)

"""Multi-process training with PyTorch's own engine, started by ``torchrun``.

``torchrun`` sets ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK``; without them
everything here is a no-op and training runs in one process.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def is_main_process() -> bool:
    """Only this process writes checkpoints, CSV files and progress bars."""
    return rank() == 0


def init_from_environment() -> torch.device | None:
    """Join the process group ``torchrun`` describes (NCCL on GPUs, Gloo on CPUs).

    Returns:
        This process's device, or ``None`` when not started by ``torchrun``.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    if torch.cuda.is_available():
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def gather_rows(rows: torch.Tensor) -> torch.Tensor:
    """Concatenate a ``(n_i, ...)`` tensor from every process (``n_i`` may differ)."""
    if world_size() == 1:
        return rows
    parts = [None] * world_size()
    dist.all_gather_object(parts, rows.cpu())
    return torch.cat(parts)


def mean_over_processes(total: float, count: int) -> float:
    """``sum(total) / sum(count)`` over all processes."""
    if world_size() == 1:
        return total / max(count, 1)
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else None
    values = torch.tensor([total, float(count)], dtype=torch.float64, device=device)
    dist.all_reduce(values)
    return float(values[0] / values[1].clamp(min=1))

"""Optimisers and learning-rate schedules by name (``OPTIMIZERS``, ``SCHEDULERS``), below ``Config``."""

from __future__ import annotations

import torch

from Utilities.Errors import check_name

OPTIMIZERS = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam}

SCHEDULERS = {  # stepped after every batch; ``steps`` is the whole run's number of batches
    "onecycle": lambda optimizer, lr, steps: torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps),
    "cosine": lambda optimizer, lr, steps: torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps),
    "constant": lambda optimizer, lr, steps: torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0),
}


def make_optimizer(name: str, model: torch.nn.Module, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """The optimiser, with its fused kernel on CPU and CUDA (one kernel for all parameters, not one per tensor)."""
    params = list(model.parameters())
    fused = all(p.device.type in ("cpu", "cuda") and p.dtype.is_floating_point for p in params)
    return OPTIMIZERS[check_name("optimizer", name, OPTIMIZERS)](params, lr=lr, weight_decay=weight_decay, fused=fused)


def make_scheduler(name: str, optimizer: torch.optim.Optimizer, lr: float, steps: int):
    """The schedule ``name`` for a run of ``steps`` batches peaking at (or starting from) ``lr``."""
    return SCHEDULERS[check_name("scheduler", name, SCHEDULERS)](optimizer, lr, max(steps, 1))

"""Device and precision choices, made once and shared by training and inference."""

from __future__ import annotations

import contextlib

import torch

from Utilities.Fast_layers import for_cpu_training, with_fast_merge


def default_device() -> torch.device:
    """CUDA when present, the CPU otherwise."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


PRECISIONS = ("auto", "float32", "bfloat16", "float16")


def autocast_dtype(device: torch.device, precision: str = "auto") -> torch.dtype | None:
    """The reduced precision worth using on ``device``, or ``None`` for float32.

    ``precision="auto"`` picks as below; ``"float32"``, ``"bfloat16"`` or
    ``"float16"`` force one (e.g. to compare accuracy).

    bfloat16 on a GPU that supports it, else float16; bfloat16 on a CPU with
    native bf16 instructions (AVX512-BF16/AMX), float32 on other CPUs, where
    emulated bf16 is slower (docs/speed.md has the measurements per CPU).
    """
    if precision not in PRECISIONS:
        raise KeyError(f"unknown precision {precision!r}; known: {', '.join(PRECISIONS)}")
    if precision != "auto":
        return None if precision == "float32" else getattr(torch, precision)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return torch.bfloat16
    return None


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """``torch.autocast`` for ``dtype``, or a no-op context for float32."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def prepare_model(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """Move to ``device`` in channels-last layout, which oneDNN and cuDNN convolutions prefer, with smp's FPN
    merge as plain sums (``Fast_layers.with_fast_merge``)."""
    return with_fast_merge(model).to(device=device, memory_format=torch.channels_last)


def prepare_for_training(model: torch.nn.Module, device: torch.device, dtype: torch.dtype | None) -> torch.nn.Module:
    """``prepare_model``, plus on a CPU the faster forms of slow layers (``Fast_layers.for_cpu_training``)."""
    model = prepare_model(model, device)
    return for_cpu_training(model, bfloat16=dtype == torch.bfloat16) if device.type == "cpu" else model

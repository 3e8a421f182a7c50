"""Device and precision choices, made once and shared by training and inference."""

from __future__ import annotations

import contextlib

import torch

from Utilities import Precision
from Utilities.Errors import check_name
from Utilities.Fast_layers import for_cpu_training, with_fast_merge


def default_device() -> torch.device:
    """CUDA when present, the CPU otherwise."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


PRECISIONS = ("auto", "float32", "bfloat16", "float16")
PURPOSES = {"training": Precision.training_calls, "prediction": Precision.torch_prediction_calls}


def precision_choice(device: torch.device, precision: str = "auto", purpose: str = "training") -> Precision.Choice:
    """The precision for ``purpose`` (``training`` or PyTorch ``prediction``) on ``device``, and why.

    ``precision="auto"`` is, on a CPU, the faster of float32 and bfloat16 as
    measured once on this machine (``Precision``), on CUDA bfloat16 mixed
    precision where the GPU supports it, else float16; ``"float32"``,
    ``"bfloat16"`` or ``"float16"`` force one (e.g. to compare accuracy).
    """
    check_name("precision", precision, PRECISIONS)
    label = f"{purpose}, PyTorch on {'the CPU' if device.type == 'cpu' else device.type}"
    if precision != "auto":
        return Precision.Choice(label, precision, f"precision={precision!r} asked for")
    if device.type == "cuda":
        return Precision.Choice(label, "bfloat16" if torch.cuda.is_bf16_supported() else "float16", "mixed precision")
    if device.type != "cpu":
        return Precision.Choice(label, "float32", f"no reduced precision on {device.type}")
    return Precision.measured_choice(label, PURPOSES[purpose], Precision.BATCH,
                                     calls_per_round=1 if purpose == "training" else 4)


def dtype_of(choice: Precision.Choice) -> torch.dtype | None:
    """The autocast dtype of ``choice``, or ``None`` for float32."""
    return None if choice.precision == "float32" else getattr(torch, choice.precision)


def autocast_dtype(device: torch.device, precision: str = "auto", purpose: str = "training") -> torch.dtype | None:
    """``precision_choice``'s autocast dtype, or ``None`` for float32."""
    return dtype_of(precision_choice(device, precision, purpose))


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

"""Device and precision choices, made once and shared by training and inference."""

from __future__ import annotations

import contextlib
import functools

import torch


def default_device() -> torch.device:
    """CUDA when present, the CPU otherwise."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


PRECISIONS = ("auto", "float32", "bfloat16", "float16")


def autocast_dtype(device: torch.device, precision: str = "auto") -> torch.dtype | None:
    """The reduced precision worth using on ``device``, or ``None`` for float32.

    ``precision="auto"`` picks as below; ``"float32"``, ``"bfloat16"`` or
    ``"float16"`` force one (e.g. to compare accuracy).

    bfloat16 on a GPU that supports it, else float16; bfloat16 on a CPU with
    native bf16 instructions (AVX512-BF16/AMX), where it trains U-Net/ResNet34
    about 2.4x faster than float32 (``make bench``); float32 on other CPUs,
    where emulated bf16 is slower.
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
    """Move to ``device`` in channels-last layout, which oneDNN and cuDNN convolutions prefer."""
    return model.to(device=device, memory_format=torch.channels_last)


class _Float32Forward:
    """Mixin: the layer runs in float32 even inside an autocast region."""

    def forward(self, *args):
        with torch.autocast(args[0].device.type, enabled=False):
            return super().forward(*(a.float() for a in args))


@functools.cache
def _float32_class(layer_class: type) -> type:
    return type(f"Float32{layer_class.__name__}", (_Float32Forward, layer_class), {})


def is_depthwise(module: torch.nn.Module) -> bool:
    return isinstance(module, torch.nn.Conv2d) and module.groups > 1 and module.groups == module.in_channels


def depthwise_in_float32(model: torch.nn.Module) -> torch.nn.Module:
    """Run the depthwise convolutions of ``model`` in float32 inside bf16 autocast, in place.

    oneDNN's bfloat16 depthwise backward is slow on CPUs: forward plus backward
    of a 5x5 depthwise layer takes 2.4-3.2x as long as in float32, and for
    FPN/EfficientNet-Lite0 at 128 px the whole training step ran at 39 img/s
    in bf16 autocast, 53 in float32 and 61 with only the depthwise layers in
    float32 (batch 8, 2 cores). Each such layer's class becomes a float32
    subclass of its own, so parameters, state dict keys and the layer's own
    padding logic (timm's ``Conv2dSame``) are unchanged.
    """
    for module in model.modules():
        if is_depthwise(module) and not isinstance(module, _Float32Forward):
            module.__class__ = _float32_class(type(module))
    return model


def prepare_for_training(model: torch.nn.Module, device: torch.device, dtype: torch.dtype | None) -> torch.nn.Module:
    """``prepare_model``, plus on a CPU under bf16 autocast the depthwise convolutions in float32."""
    model = prepare_model(model, device)
    return depthwise_in_float32(model) if device.type == "cpu" and dtype == torch.bfloat16 else model

"""Faster forms of the same layers, swapped in by class: for training on a CPU (``for_cpu_training``), and
smp's FPN merge wherever a model is prepared (``with_fast_merge``).

Each replacement computes what the layer computed (the tests compare outputs
and gradients), keeps its parameters, state dict keys and any shape logic of
its own (timm's ``Conv2dSame``), and is a subclass of the layer it replaces,
so checkpoints and the rest of the code do not notice. What each one gained,
measured: docs/speed.md (``python -m benchmarks.training_changes``).
"""

from __future__ import annotations

import functools
import operator

import segmentation_models_pytorch as smp
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode


def is_depthwise(module: torch.nn.Module) -> bool:
    return isinstance(module, torch.nn.Conv2d) and module.groups > 1 and module.groups == module.in_channels


FLOAT32_UNDER_BF16 = {
    # Layer types whose bf16 forward plus backward is slower than float32's on a CPU (oneDNN; docs/speed.md)
    "depthwise convolution": is_depthwise,
    "GroupNorm": lambda module: isinstance(module, torch.nn.GroupNorm),
}


class Float32Forward:
    """Mixin: the layer runs in float32 even inside an autocast region."""

    def forward(self, *args):
        with torch.autocast(args[0].device.type, enabled=False):
            return super().forward(*(a.float() for a in args))


class TiledDepthwiseForward:
    """Mixin: when gradients are recorded, the layer's depthwise convolutions get their weight gradient from
    ``tiled_depthwise_weight_gradient``."""

    def forward(self, *args):
        if not torch.is_grad_enabled():
            return super().forward(*args)
        with _TiledDepthwiseGradient():
            return super().forward(*args)


@functools.cache
def _subclass(mixin: type, layer_class: type) -> type:
    prefix = mixin.__name__.removesuffix("Forward").removesuffix("Depthwise")
    return type(f"{prefix}{layer_class.__name__}", (mixin, layer_class), {"_original_class": layer_class})


def with_mixin(module: torch.nn.Module, mixin: type) -> torch.nn.Module:
    """``module`` made an instance of a subclass of its own class with ``mixin`` first, in place."""
    if not isinstance(module, mixin):
        module.__class__ = _subclass(mixin, type(module))
    return module


def without_fast_layers(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` with every layer back in its own class, in place: the classes made at run time do not pickle
    (``torch.save(model)``), so training undoes them when it ends."""
    for module in model.modules():
        while "_original_class" in vars(type(module)):
            module.__class__ = type(module)._original_class
    return model


def _tiles(kernel_size) -> bool:
    """Is a depthwise kernel of this size one whose weight gradient ``tiled_depthwise_weight_gradient`` computes
    faster (above 3x3, at least 3 each way)?"""
    return min(kernel_size) >= 3 and max(kernel_size) > 3


def for_cpu_training(model: torch.nn.Module, bfloat16: bool, float32_layers=tuple(FLOAT32_UNDER_BF16),
                     tiled: bool = True) -> torch.nn.Module:
    """``model`` with the faster forms of its layers for training on a CPU, in place (``without_fast_layers``
    undoes it).

    Under bf16 autocast (``bfloat16``) the layer types of ``FLOAT32_UNDER_BF16``
    (or those named in ``float32_layers``) run in float32; with ``tiled``,
    depthwise convolutions with kernels above 3x3 compute their weight gradient
    from 3x3 pieces (``tiled_depthwise_weight_gradient``) where they run in
    float32 (always, without bf16). Each change's gain, one after the other:
    ``python -m benchmarks.training_changes`` (docs/speed.md).
    """
    for module in model.modules():
        if bfloat16 and any(FLOAT32_UNDER_BF16[name](module) for name in float32_layers):
            with_mixin(module, Float32Forward)
        if tiled and is_depthwise(module) and _tiles(module.kernel_size):
            with_mixin(module, TiledDepthwiseForward)
    return model


def tiled_depthwise_weight_gradient(images: torch.Tensor, grad: torch.Tensor, kernel_size: tuple[int, int],
                                    stride: tuple[int, int], padding: tuple[int, int]) -> torch.Tensor:
    """The weight gradient of a depthwise convolution (dilation 1), summed from 3x3 pieces.

    oneDNN has a specialised depthwise kernel for the weight gradient of 3x3
    layers only; larger ones fall back to a generic grouped convolution that
    pads each channel to a block of 16, slower than the four 3x3 pieces of a
    5x5 layer (docs/speed.md). Piece
    ``(i, j)`` is the 3x3 gradient of the input window shifted by ``(i, j)``;
    pieces overlap where the kernel is not a multiple of 3, and each kernel
    position is taken from one piece only.
    """
    channels = images.shape[1]
    images = F.pad(images, (padding[1], padding[1], padding[0], padding[0])) if any(padding) else images
    gradient = images.new_empty(channels, 1, *kernel_size)
    rows = [(start, min(start, kernel_size[0] - 3)) for start in range(0, kernel_size[0], 3)]
    columns = [(start, min(start, kernel_size[1] - 3)) for start in range(0, kernel_size[1], 3)]
    height, width = grad.shape[2:]
    for start_row, top in rows:
        for start_column, left in columns:
            window = images[:, :, top : top + stride[0] * (height - 1) + 3, left : left + stride[1] * (width - 1) + 3]
            piece = torch.ops.aten.convolution_backward(
                grad, window, gradient.new_empty(channels, 1, 3, 3), None, list(stride), [0, 0], [1, 1], False,
                [0, 0], channels, [False, True, False])[1]
            gradient[:, :, start_row : top + 3, start_column : left + 3] = piece[:, :, start_row - top :, start_column - left :]
    return gradient


class _DepthwiseConv2d(torch.autograd.Function):
    """``F.conv2d`` of a depthwise layer, with ``tiled_depthwise_weight_gradient`` in the backward pass."""

    @staticmethod
    def forward(ctx, images, weight, bias, stride, padding):
        ctx.save_for_backward(images, weight)
        ctx.stride, ctx.padding, ctx.has_bias = stride, padding, bias is not None
        return F.conv2d(images, weight, bias, stride, padding, 1, weight.shape[0])

    @staticmethod
    def backward(ctx, grad):
        images, weight = ctx.saved_tensors
        grad_images = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_images = torch.ops.aten.convolution_backward(
                grad, images, weight, None, list(ctx.stride), list(ctx.padding), [1, 1], False, [0, 0],
                weight.shape[0], [True, False, False])[0]
        if ctx.needs_input_grad[1]:
            grad_weight = tiled_depthwise_weight_gradient(images, grad, weight.shape[2:], ctx.stride, ctx.padding)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_bias = grad.sum((0, 2, 3))
        return grad_images, grad_weight, grad_bias, None, None


def _pair(value) -> tuple[int, int]:
    values = tuple(value) if isinstance(value, (tuple, list)) else (value,)
    return values * 2 if len(values) == 1 else values


class _TiledDepthwiseGradient(TorchFunctionMode):
    """Within it, ``F.conv2d`` calls of batched depthwise convolutions with a kernel ``_tiles`` takes (dilation 1,
    numeric padding, outside autocast: in float32) go through ``_DepthwiseConv2d``; other calls are left as they
    are. Intercepting the call, not the layer, keeps each layer's own padding code (timm's ``Conv2dSame``)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.conv2d and torch.is_grad_enabled():
            call = dict(zip(("input", "weight", "bias", "stride", "padding", "dilation", "groups"), args), **kwargs)
            images, weight = call["input"], call["weight"]
            padding = call.get("padding", 0)
            if (
                images.dim() == 4 and not torch.is_autocast_enabled(images.device.type)
                and call.get("groups", 1) == images.shape[1] == weight.shape[0] and weight.shape[1] == 1
                and _tiles(weight.shape[2:]) and _pair(call.get("dilation", 1)) == (1, 1)
                and not isinstance(padding, str)
            ):
                return _DepthwiseConv2d.apply(images, weight, call.get("bias"), _pair(call.get("stride", 1)),
                                              _pair(padding))
        return func(*args, **kwargs)


class _AddMerge(smp.decoders.fpn.decoder.MergeBlock):
    """smp's FPN merge by ``torch.stack(levels).sum(0)``, as sums: the same values in float32 (in bf16 each sum
    rounds, where smp's rounds once); stacking copies every level first, which costs more than the sums."""

    def forward(self, levels: list[torch.Tensor]) -> torch.Tensor:
        return functools.reduce(operator.add, levels) if self.policy == "add" else super().forward(levels)


def with_fast_merge(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` with each smp FPN merge made an ``_AddMerge``, in place (it has no parameters)."""
    for module in model.modules():
        if type(module) is smp.decoders.fpn.decoder.MergeBlock:
            module.__class__ = _AddMerge
    return model

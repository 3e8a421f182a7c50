"""The fastest eager form of a trained model for predictions on this machine: BatchNorm folded into the
convolutions, channels-last, bfloat16 weights on CPUs with bf16 instructions (measured in ``make bench``)."""

from __future__ import annotations

import torch
from torch.fx.proxy import TraceError
from torch.nn.utils.fusion import fuse_conv_bn_eval

from Utilities.Hardware import prepare_model


def optimise_for_inference(model: torch.nn.Module, device: torch.device, dtype: torch.dtype | None) -> torch.nn.Module:
    """The fastest eager form of ``model`` for predictions (measured in ``make bench``).

    BatchNorm is folded into the preceding convolutions, the layout is
    channels-last, and on a CPU with bf16 instructions the weights themselves
    become bfloat16, which saves autocast's per-call casts.
    """
    model = prepare_model(fold_batch_norm(model.eval()), device)
    return model.to(torch.bfloat16) if device.type == "cpu" and dtype == torch.bfloat16 else model


class _ConvAndNormAsLeaves(torch.fx.Tracer):
    """Traces convolutions and BatchNorms as single calls, also subclasses with shape-dependent code
    (timm's ``Conv2dSame`` pads by the input's size; its ``BatchNormAct2d`` carries an activation)."""

    def is_leaf_module(self, module: torch.nn.Module, qualified_name: str) -> bool:
        return isinstance(module, (torch.nn.Conv2d, torch.nn.BatchNorm2d)) or super().is_leaf_module(module, qualified_name)


def _after_folding(norm: torch.nn.BatchNorm2d) -> torch.nn.Module:
    """What is left of a BatchNorm once folded: nothing, or the dropout and activation a ``BatchNormAct2d`` adds."""
    extras = [getattr(norm, name) for name in ("drop", "act") if isinstance(getattr(norm, name, None), torch.nn.Module)]
    return torch.nn.Sequential(*extras) if extras else torch.nn.Identity()


def fold_batch_norm(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` (in eval mode) with each BatchNorm folded into the convolution before it, in place.

    torch.fx finds the convolution-BatchNorm pairs; the modules keep their
    classes and attributes (a folded BatchNorm becomes ``Identity``, or the
    activation of timm's ``BatchNormAct2d``). A module torch.fx cannot trace
    (FPN, whose decoder branches on tensor shapes) has its children folded one by one.
    """
    if not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()):
        return model
    try:
        graph = _ConvAndNormAsLeaves().trace(model)
    except TraceError:
        for child in model.children():
            fold_batch_norm(child)
        return model
    modules = dict(model.named_modules())
    for node in graph.nodes:
        source = node.args[0] if node.args else None
        if (
            node.op == "call_module" and isinstance(modules[node.target], torch.nn.BatchNorm2d)
            and isinstance(source, torch.fx.Node) and source.op == "call_module"
            and isinstance(modules[source.target], torch.nn.Conv2d) and len(source.users) == 1
        ):
            model.set_submodule(source.target, fuse_conv_bn_eval(modules[source.target], modules[node.target]))
            model.set_submodule(node.target, _after_folding(modules[node.target]))
    return model

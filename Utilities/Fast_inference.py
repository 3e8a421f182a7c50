"""The fastest form of a trained model for predictions on this machine (measured in ``make bench``).

For models of one input size, on a CPU where OpenVINO is installed (it is in
``requirements.txt``): the model converted by OpenVINO and compiled for this
CPU, faster than the PyTorch path end to end (docs/speed.md). Otherwise, and
on CUDA: PyTorch eager with BatchNorm folded into the convolutions,
channels-last. On a CPU, each path runs in the precision measured faster on
this machine (``Precision``: bfloat16 or float32).
Full-resolution models (every image at its own size) stay on PyTorch: there
OpenVINO was no faster and took more memory, more as the image grew
(docs/prediction.md).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable

import torch
from torch.fx.proxy import TraceError
from torch.nn.utils.fusion import fuse_conv_bn_eval

from Utilities import Precision
from Utilities.Errors import ConfigError, check_name
from Utilities.Hardware import prepare_model


def optimise_for_inference(model: torch.nn.Module, device: torch.device, dtype: torch.dtype | None) -> torch.nn.Module:
    """The fastest eager form of ``model`` for predictions (measured in ``make bench``).

    BatchNorm is folded into the preceding convolutions, the layout is
    channels-last, and on a CPU predicting in bfloat16 the weights themselves
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


BACKENDS = ("auto", "openvino", "torch")


def choose_backend(backend: str, device: torch.device, full_resolution: bool = False) -> str:
    """``openvino`` or ``torch``: ``auto`` is OpenVINO for a model of one input size on a CPU where it is
    installed, else PyTorch (see above)."""
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}; known: {', '.join(BACKENDS)}")
    if backend == "auto":
        return "openvino" if device.type == "cpu" and not full_resolution and _openvino_loads() else "torch"
    if backend == "openvino" and device.type != "cpu":
        raise ConfigError(f"the OpenVINO backend runs on the CPU, not on {device}")
    return backend


def _openvino_loads() -> bool:
    """Is OpenVINO installed and loadable (a broken install falls back to PyTorch rather than failing)?"""
    try:
        import openvino  # noqa: F401
    except (ImportError, OSError):
        return False
    return True


def convert_for_openvino(model: torch.nn.Module, side: int | None = None):
    """``model`` as an OpenVINO model (not yet compiled) for inputs of any batch size and ``side`` x ``side``
    pixels, or any height and width without ``side``."""
    import openvino

    with warnings.catch_warnings():  # OpenVINO traces the model with torch.jit, which warns about itself
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        return openvino.convert_model(model.eval().float(), example_input=torch.zeros(1, 3, side or 64, side or 64),
                                      input=[(-1, 3, side or -1, side or -1)])


class OpenVinoModel(torch.nn.Module):
    """A model compiled by OpenVINO for this CPU, called like the module it came from (``converted`` converts one).

    Inputs of any batch size; of ``side`` x ``side`` pixels where it is given (a multiple of 32; 4-5% faster
    than a model of any height and width for FPN/EfficientNet-Lite2 at 128 px), else of any height and width.
    ``precision`` (float32, bfloat16 or float16) is OpenVINO's inference precision hint. Converting takes 2-3 s.
    """

    def __init__(self, compiled):
        super().__init__()
        self.compiled = compiled

    @classmethod
    def converted(cls, model: torch.nn.Module, precision: str, side: int | None = None) -> OpenVinoModel:
        return cls(compile_for_openvino(convert_for_openvino(model, side), precision))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.compiled(images.float().contiguous().numpy())[0])


OPENVINO_HINTS = {"float32": "f32", "bfloat16": "bf16", "float16": "f16"}


def compile_for_openvino(converted, precision: str):
    """An OpenVINO model compiled for this CPU with ``precision`` as its inference precision hint."""
    import openvino

    return openvino.Core().compile_model(converted, "CPU", {"INFERENCE_PRECISION_HINT": OPENVINO_HINTS[precision]})


def openvino_precision(precision: str = "auto") -> Precision.Choice:
    """OpenVINO's inference precision: ``auto`` is the faster of float32 and bfloat16 on representative layers,
    measured once on this machine (``Precision``); the others force one."""
    check_name("precision", precision, ("auto", *OPENVINO_HINTS))
    if precision != "auto":
        return Precision.Choice("prediction, OpenVINO on the CPU", precision, f"precision={precision!r} asked for")
    return Precision.measured_choice("prediction, OpenVINO on the CPU", _openvino_calls, Precision.BATCH,
                                     calls_per_round=10)


def _openvino_calls() -> dict[str, Callable[[], object]]:
    """``Precision.representative_layers`` converted once and compiled with each candidate's hint; a candidate
    OpenVINO compiles to float32 anyway (bf16 on a CPU without bf16 kernels) is left out."""
    converted = convert_for_openvino(Precision.representative_layers(), Precision.SIDE)
    images = Precision.example_input().numpy()
    compiled = {precision: compile_for_openvino(converted, precision) for precision in Precision.CANDIDATES}
    return {precision: functools.partial(model, images) for precision, model in compiled.items()
            if precision == "float32" or model.get_property("INFERENCE_PRECISION_HINT").get_type_name() != "f32"}

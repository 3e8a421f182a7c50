"""Per-layer precision in training: faster, with the gradients of the plain float32 model."""

import copy

import pytest
import torch
from timm.layers import Conv2dSame

from Utilities.Hardware import depthwise_in_float32, is_depthwise
from Utilities.Resnet_Unet import build_model


def gradients(model: torch.nn.Module, images: torch.Tensor, autocast: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The output and the flattened parameter gradients of ``mean(output ** 2)``."""
    model.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        out = model(images)
    (out.float() ** 2).mean().backward()
    return out, torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])


@pytest.mark.parametrize("layer_class", [torch.nn.Conv2d, Conv2dSame])
def test_a_depthwise_layer_in_float32_gives_exactly_the_float32_gradients(layer_class):
    torch.manual_seed(0)
    layer = layer_class(16, 16, 5, stride=2, groups=16, padding=2 if layer_class is torch.nn.Conv2d else 0)
    reference = copy.deepcopy(layer)
    assert is_depthwise(depthwise_in_float32(layer)) and isinstance(layer, layer_class)
    images = torch.randn(2, 16, 17, 17, requires_grad=True)
    out, grads = gradients(layer, images, autocast=True)
    input_grad = images.grad.clone()
    images.grad = None
    expected, expected_grads = gradients(reference, images, autocast=False)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(grads, expected_grads)
    torch.testing.assert_close(input_grad, images.grad)


def test_whole_model_gradients_stay_within_bf16_tolerance_of_float32():
    """Compared with BatchNorm on its running statistics: in training mode the batch statistics of 2x2 feature
    maps make even plain bf16 autocast's gradient differ from float32's by more than its own norm."""
    model, _ = build_model("FPN", "tu-tf_efficientnet_lite0", classes=2, seed=3, encoder_weights="imagenet")
    model.eval()
    images = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    _, exact = gradients(copy.deepcopy(model), images, autocast=False)
    _, bf16 = gradients(copy.deepcopy(model), images, autocast=True)
    mixed_model = depthwise_in_float32(copy.deepcopy(model))
    assert sum(is_depthwise(m) and type(m).__name__.startswith("Float32") for m in mixed_model.modules()) == 16
    _, mixed = gradients(mixed_model, images, autocast=True)

    def relative_error(g):
        return float((g - exact).norm() / exact.norm())

    assert relative_error(mixed) < 0.2
    assert relative_error(mixed) <= relative_error(bf16) * 1.2  # no worse than plain bf16 autocast
    assert mixed_model.state_dict().keys() == model.state_dict().keys()

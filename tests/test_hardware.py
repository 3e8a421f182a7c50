"""Faster forms of layers for CPU training (``Fast_layers``): the same outputs and gradients, faster."""

import copy
import pickle

import pytest
import segmentation_models_pytorch as smp
import torch
from timm.layers import Conv2dSame

from Utilities import Fast_layers
from Utilities.Fast_layers import (
    Float32Forward,
    TiledDepthwiseForward,
    for_cpu_training,
    is_depthwise,
    tiled_depthwise_weight_gradient,
    with_fast_merge,
    without_fast_layers,
)
from Utilities.Hardware import prepare_model
from Utilities.Losses import SoftDiceLoss
from Utilities.Resnet_Unet import build_model


def gradients(model: torch.nn.Module, images: torch.Tensor, autocast: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The output and the flattened parameter gradients of ``mean(output ** 2)``."""
    model.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        out = model(images)
    (out.float() ** 2).mean().backward()
    return out, torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])


@pytest.mark.parametrize("layer_class", [torch.nn.Conv2d, Conv2dSame])
@pytest.mark.parametrize("bfloat16", [True, False])
def test_a_replaced_depthwise_layer_gives_the_float32_gradients(layer_class, bfloat16):
    """Under bf16 autocast the layer runs in float32; in both precisions its 5x5 weight gradient is tiled."""
    torch.manual_seed(0)
    layer = layer_class(16, 16, 5, stride=2, groups=16, padding=2 if layer_class is torch.nn.Conv2d else 0)
    reference = copy.deepcopy(layer)
    for_cpu_training(layer, bfloat16)
    assert isinstance(layer, layer_class) and type(layer) is not layer_class
    images = torch.randn(2, 16, 17, 17, requires_grad=True)
    out, grads = gradients(layer, images, autocast=bfloat16)
    input_grad = images.grad.clone()
    images.grad = None
    expected, expected_grads = gradients(reference, images, autocast=False)
    assert out.dtype == torch.float32 and type(out.grad_fn).__name__ == "_DepthwiseConv2dBackward"
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(grads, expected_grads)
    torch.testing.assert_close(input_grad, images.grad)


@pytest.mark.parametrize("kernel, stride, padding, size", [
    ((5, 5), (1, 1), (2, 2), 9), ((5, 5), (2, 2), (0, 0), 12), ((7, 7), (1, 1), (3, 3), 10),
    ((3, 5), (1, 2), (1, 2), 11), ((6, 4), (2, 1), (1, 0), 13), ((3, 3), (1, 1), (1, 1), 8),
])
def test_the_tiled_weight_gradient_equals_oneDNNs(kernel, stride, padding, size):
    torch.manual_seed(0)
    images = torch.randn(3, 8, size, size + 1).contiguous(memory_format=torch.channels_last)
    weight = torch.randn(8, 1, *kernel)
    out = torch.nn.functional.conv2d(images, weight, None, stride, padding, 1, 8)
    grad = torch.randn_like(out)
    expected = torch.ops.aten.convolution_backward(grad, images, weight, None, list(stride), list(padding), [1, 1],
                                                   False, [0, 0], 8, [False, True, False])[1]
    # float32 sums in another order than oneDNN's (AVX2 and AVX-512 kernels differ by up to 2e-5 here)
    torch.testing.assert_close(tiled_depthwise_weight_gradient(images, grad, kernel, stride, padding), expected,
                               rtol=1e-4, atol=1e-4)


def test_a_groupnorm_under_bf16_autocast_gives_the_float32_gradients():
    norm = torch.nn.GroupNorm(4, 16)
    reference = copy.deepcopy(norm)
    for_cpu_training(norm, bfloat16=True)
    images = torch.randn(2, 16, 8, 8).contiguous(memory_format=torch.channels_last).requires_grad_()
    out, grads = gradients(norm, images, autocast=True)
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
    mixed_model = for_cpu_training(copy.deepcopy(model), bfloat16=True)
    assert sum(is_depthwise(m) and isinstance(m, Float32Forward) for m in mixed_model.modules()) == 16
    assert sum(isinstance(m, TiledDepthwiseForward) for m in mixed_model.modules()) == 9  # the 5x5 ones
    assert sum(type(m).__name__ == "Float32GroupNorm" for m in mixed_model.modules()) == 7
    _, mixed = gradients(mixed_model, images, autocast=True)

    def relative_error(g):
        return float((g - exact).norm() / exact.norm())

    assert relative_error(mixed) < 0.2
    assert relative_error(mixed) <= relative_error(bf16) * 1.2  # no worse than plain bf16 autocast
    assert mixed_model.state_dict().keys() == model.state_dict().keys()


def test_whole_model_in_float32_keeps_its_gradients():
    model, _ = build_model("FPN", "tu-tf_efficientnet_lite0", classes=2, seed=3, encoder_weights="imagenet")
    model.eval()  # no dropout
    images = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    _, exact = gradients(copy.deepcopy(model), images, autocast=False)
    tiled_model = for_cpu_training(copy.deepcopy(model), bfloat16=False)
    assert sum(type(m).__name__.startswith("Tiled") for m in tiled_model.modules()) == 9  # 5x5: 2 + 3 + 4 in stages 3, 5, 6
    assert not any(isinstance(m, Float32Forward) for m in tiled_model.modules())
    _, tiled = gradients(tiled_model, images, autocast=False)
    torch.testing.assert_close(tiled, exact, rtol=1e-4, atol=1e-6)


def test_only_float32_convolutions_that_record_gradients_are_routed(monkeypatch):
    """Under fp16 autocast (no float32 mixin) and without gradients, ``F.conv2d`` is left as it is."""
    calls = []
    original = Fast_layers._DepthwiseConv2d.apply
    monkeypatch.setattr(Fast_layers._DepthwiseConv2d, "apply", lambda *args: calls.append(1) or original(*args))
    layer = for_cpu_training(torch.nn.Conv2d(8, 8, 5, padding=2, groups=8), bfloat16=False)
    images = torch.randn(2, 8, 9, 9, requires_grad=True)
    with torch.no_grad():
        layer(images)
    with torch.autocast("cpu", dtype=torch.float16):
        layer(images).float().sum().backward()
    assert calls == []
    layer(images).sum().backward()
    assert calls == [1]


def test_a_keyword_call_with_one_element_stride_goes_through_the_tiled_gradient():
    images = torch.randn(2, 8, 11, 11, requires_grad=True)
    weight, bias = torch.randn(8, 1, 5, 5, requires_grad=True), torch.randn(8, requires_grad=True)
    with Fast_layers._TiledDepthwiseGradient():
        out = torch.nn.functional.conv2d(images, weight, bias=bias, stride=(2,), padding=2, groups=8)
    assert type(out.grad_fn).__name__ == "_DepthwiseConv2dBackward"
    grads = torch.autograd.grad(out.square().sum(), (images, weight, bias))
    expected = torch.nn.functional.conv2d(images, weight, bias=bias, stride=(2,), padding=2, groups=8)
    for ours, theirs in zip(grads, torch.autograd.grad(expected.square().sum(), (images, weight, bias))):
        torch.testing.assert_close(ours, theirs)


def test_without_fast_layers_gives_back_a_model_that_pickles():
    model, _ = build_model("FPN", "tu-tf_efficientnet_lite0", classes=2, seed=3)
    classes = [type(m) for m in model.modules()]
    for_cpu_training(model, bfloat16=True)
    with pytest.raises((pickle.PicklingError, AttributeError)):
        pickle.dumps(model)
    assert [type(m) for m in without_fast_layers(model).modules()] == classes
    pickle.dumps(model)


def test_the_fpn_merge_adds_as_smp_does():
    model, _ = build_model("FPN", "tu-tf_efficientnet_lite0", classes=2, seed=3)
    merge = prepare_model(model, torch.device("cpu")).decoder.merge
    assert isinstance(merge, smp.decoders.fpn.decoder.MergeBlock) and type(merge).forward is not smp.decoders.fpn.decoder.MergeBlock.forward
    levels = [torch.randn(2, 4, 8, 8, requires_grad=True) for _ in range(4)]
    ours, theirs = merge(levels), smp.decoders.fpn.decoder.MergeBlock("add")(levels)
    torch.testing.assert_close(ours, theirs)
    weights = torch.randn_like(ours)
    for mine, expected in zip(torch.autograd.grad(ours, levels, weights), torch.autograd.grad(theirs, levels, weights)):
        torch.testing.assert_close(mine, expected)
    untouched = smp.FPN(encoder_name="resnet18", encoder_weights=None, decoder_merge_policy="cat", classes=1)
    assert torch.equal(with_fast_merge(untouched).decoder.merge(levels), torch.cat(levels, 1))


def test_the_soft_dice_loss_equals_smps_on_logits():
    logits = (3 * torch.randn(2, 3, 16, 16)).requires_grad_()
    targets = (torch.rand(2, 3, 16, 16) > 0.8).float()
    targets[:, 2] = 0  # a class without pixels is left out, as smp does
    ours = SoftDiceLoss()(logits, targets)
    (grad,) = torch.autograd.grad(ours, logits)
    theirs = smp.losses.DiceLoss(mode="multilabel", from_logits=True)(logits, targets)
    (expected,) = torch.autograd.grad(theirs, logits)
    torch.testing.assert_close(ours, theirs)
    torch.testing.assert_close(grad, expected)

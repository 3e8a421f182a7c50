"""Training losses by name: the ``LOSSES`` registry, below ``Config`` so that a config can check its loss name.

A loss is one entry: a name and a builder taking the soft-Dice term's weight.
``make_loss`` wraps it with the image head's term (``WithImageTerm``).
"""

from __future__ import annotations

from collections.abc import Callable

import segmentation_models_pytorch as smp
import torch
import torch.nn.functional as F

from Utilities.Architectures import split_image_logits
from Utilities.Errors import check_name


class SoftDiceLoss(smp.losses.DiceLoss):
    """smp's multilabel soft Dice on logits, through ``torch.sigmoid``: the same loss as smp's ``from_logits``
    path (``logsigmoid(x).exp()``), whose log-sigmoid is not vectorised on CPUs."""

    def __init__(self):
        super().__init__(mode="multilabel", from_logits=False)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return super().forward(torch.sigmoid(logits), targets)


class PixelPlusDiceLoss(torch.nn.Module):
    """A per-pixel loss plus soft Dice, both on logits, one channel per class.

    Args:
        pixel_loss: binary cross-entropy, or focal loss for tiny defects, where
            cross-entropy's easy background pixels drown the few defect pixels.
        dice: the overlap term (soft Dice by default; Tversky weighs misses and false alarms apart; Lovasz
            optimises IoU).
    """

    def __init__(self, pixel_loss: torch.nn.Module, dice_weight: float = 1.0, dice: torch.nn.Module | None = None):
        super().__init__()
        self.pixel, self.dice_weight = pixel_loss, dice_weight
        self.dice = dice or SoftDiceLoss()

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.pixel(logits, targets) + self.dice_weight * self.dice(logits, targets)


def soft_skeleton(probabilities: torch.Tensor, iterations: int = 5) -> torch.Tensor:
    """A differentiable skeleton of ``(N, C, H, W)`` probabilities: iterated soft erosions minus their openings
    (min and max pooling), as clDice (Shit et al., CVPR 2021) computes it."""
    def erode(x):
        return -F.max_pool2d(-x, 3, 1, 1)

    def opened(x):
        return F.max_pool2d(erode(x), 3, 1, 1)

    skeleton = F.relu(probabilities - opened(probabilities))
    for _ in range(iterations):
        probabilities = erode(probabilities)
        delta = F.relu(probabilities - opened(probabilities))
        skeleton = skeleton + F.relu(delta - skeleton * delta)
    return skeleton


class SoftClDiceLoss(torch.nn.Module):
    """1 - clDice: the harmonic mean of how much of the predicted skeleton lies in the true mask and how much of
    the true skeleton the prediction covers. Thin structures score by their topology, not their width, so a
    crack drawn one pixel off its annotation still counts (Shit et al., CVPR 2021)."""

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        probabilities, eps = torch.sigmoid(logits), 1e-6
        predicted, true = soft_skeleton(probabilities), soft_skeleton(targets)
        precision = ((predicted * targets).sum((2, 3)) + eps) / (predicted.sum((2, 3)) + eps)
        sensitivity = ((true * probabilities).sum((2, 3)) + eps) / (true.sum((2, 3)) + eps)
        return (1 - 2 * precision * sensitivity / (precision + sensitivity)).mean()


LOSSES: dict[str, Callable[[float], torch.nn.Module]] = {  # each built from the soft-Dice term's weight
    "bce_dice": lambda dice_weight: PixelPlusDiceLoss(torch.nn.BCEWithLogitsLoss(), dice_weight),
    "focal_dice": lambda dice_weight: PixelPlusDiceLoss(smp.losses.FocalLoss(mode="multilabel"), dice_weight),
    "bce": lambda dice_weight: torch.nn.BCEWithLogitsLoss(),
    "dice": lambda dice_weight: SoftDiceLoss(),
    "focal": lambda dice_weight: smp.losses.FocalLoss(mode="multilabel"),
    "lovasz": lambda dice_weight: smp.losses.LovaszLoss(mode="multilabel", from_logits=True),
    # thin structures: missed crack pixels weigh more than false ones (beta > alpha), or topology (clDice)
    "bce_tversky": lambda dice_weight: PixelPlusDiceLoss(torch.nn.BCEWithLogitsLoss(), dice_weight,
                                                         smp.losses.TverskyLoss("multilabel", alpha=0.3, beta=0.7)),
    "bce_dice_cldice": lambda dice_weight: _Sum(PixelPlusDiceLoss(torch.nn.BCEWithLogitsLoss(), dice_weight),
                                                SoftClDiceLoss()),
    # Lovasz optimises IoU directly but is unstable alone from the start: beside cross-entropy, as usually trained
    "bce_lovasz": lambda dice_weight: PixelPlusDiceLoss(torch.nn.BCEWithLogitsLoss(), dice_weight,
                                                        smp.losses.LovaszLoss(mode="multilabel", from_logits=True)),
}


class _Sum(torch.nn.Module):
    """The sum of several losses of the same logits and targets."""

    def __init__(self, *losses: torch.nn.Module):
        super().__init__()
        self.losses = torch.nn.ModuleList(losses)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return sum(loss(logits, targets) for loss in self.losses)


class WithImageTerm(torch.nn.Module):
    """``pixel_loss`` on the pixel logits; for a model with an image head (``Resnet_Unet.WithImageLogits``) plus
    binary cross-entropy of its image logits against "this image (or crop) holds a pixel of the class"."""

    def __init__(self, pixel_loss: torch.nn.Module, image_weight: float = 1.0):
        super().__init__()
        self.pixel, self.image_weight = pixel_loss, image_weight

    def forward(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logits, image_logits = split_image_logits(outputs, targets.shape[1])
        loss = self.pixel(logits, targets)
        if image_logits is None:
            return loss
        return loss + self.image_weight * F.binary_cross_entropy_with_logits(image_logits, targets.amax(dim=(2, 3)))


def make_loss(name: str, dice_weight: float = 1.0, image_loss_weight: float = 1.0) -> torch.nn.Module:
    """The loss ``name`` with its soft-Dice term's weight (``*_dice`` losses), plus the image head's term."""
    return WithImageTerm(LOSSES[check_name("loss", name, LOSSES)](dice_weight), image_loss_weight)

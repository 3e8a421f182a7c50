"""The albumentations pipelines: training augmentation and the evaluation preprocessing that prediction shares.

Image and mask go through each pipeline together (nearest-neighbour for
masks); both end normalised with the encoder weights' statistics.
"""

from __future__ import annotations

import albumentations as A
import cv2
from albumentations.pytorch import ToTensorV2


def _augment() -> list:
    """Flips, 90-degree turns and mild photometric change: defects have no preferred orientation."""
    return [
        A.HorizontalFlip(p=0.5),
        A.VerticalFlip(p=0.5),
        A.RandomRotate90(p=0.5),
        A.RandomBrightnessContrast(brightness_limit=0.1, contrast_limit=0.1, p=0.5),
    ]


def _finish(mean, std) -> list:
    return [A.Normalize(mean=mean, std=std), ToTensorV2(transpose_mask=True)]


def _resize(image_size: int) -> A.Resize:
    return A.Resize(image_size, image_size, interpolation=cv2.INTER_LINEAR, mask_interpolation=cv2.INTER_NEAREST)


def train_transforms(image_size: int, mean, std, full_resolution: bool = False) -> A.Compose:
    """Augmented training pipeline: every image resized to ``image_size``, or, with
    ``full_resolution``, an ``image_size`` crop at the image's own resolution
    that holds a defect where the image has one (small defects survive intact).
    """
    if full_resolution:
        size = [
            A.PadIfNeeded(image_size, image_size, border_mode=cv2.BORDER_CONSTANT, fill=0, fill_mask=0),
            A.CropNonEmptyMaskIfExists(image_size, image_size),
        ]
    else:
        size = [_resize(image_size)]
    return A.Compose(size + _augment() + _finish(mean, std))


def eval_transforms(image_size: int, mean, std, full_resolution: bool = False) -> A.Compose:
    """Validation pipeline: resize to ``image_size``, or, with ``full_resolution``, the
    whole image as it is (the model pads it; see ``Resnet_Unet.padded_forward``).
    """
    return A.Compose(([] if full_resolution else [_resize(image_size)]) + _finish(mean, std))

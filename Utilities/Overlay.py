"""Class colours and overlays drawn with OpenCV alone, so that folder prediction never imports matplotlib."""

from __future__ import annotations

import cv2
import numpy as np

# One distinct RGB colour per class channel: matplotlib's tab10, written out.
COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
           (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]
OVERLAY_ALPHA = 0.45  # how strongly a class colour tints the image


def overlay(image: np.ndarray, mask: np.ndarray, colours=COLOURS, alpha: float = OVERLAY_ALPHA) -> np.ndarray:
    """``image`` with each channel of a ``(C, H, W)`` 0/1 mask tinted in its colour (class colours by default;
    where channels overlap, the last one's)."""
    labels = np.zeros(image.shape[:2], np.uint8)
    for k, channel in enumerate(mask):
        labels = np.where(channel > 0, k + 1, labels).astype(np.uint8)
    return tint(image, labels, colours, alpha)


def tint(image: np.ndarray, labels: np.ndarray, colours=COLOURS, alpha: float = OVERLAY_ALPHA) -> np.ndarray:
    """``image`` with the pixels of an ``(H, W)`` label map (0 none, k the k-th colour) tinted in their colour."""
    palette = np.zeros((1, 256, 3), np.uint8)
    palette[0, 1 : len(colours[:255]) + 1] = colours[:255]
    tinted = cv2.addWeighted(image, 1 - alpha, cv2.LUT(cv2.merge([labels] * 3), palette), alpha, 0)
    return cv2.copyTo(tinted, (labels > 0).astype(np.uint8), image.copy())

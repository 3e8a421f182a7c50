"""Figures the notebooks show: samples with boxes, training curves, predictions."""

from __future__ import annotations

from pathlib import Path

import cv2
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from Utilities.Extract_masks import parse_voc_xml
from Utilities.Images import read_image
from Utilities.Overlay import COLOURS, overlay


def draw_boxes(image: np.ndarray, xml_path: str | Path, classes: tuple[str, ...]) -> np.ndarray:
    """Copy of ``image`` with the XML's boxes drawn, one colour per class."""
    out = image.copy()
    for box in parse_voc_xml(xml_path).boxes:
        colour = COLOURS[classes.index(box.name) % len(COLOURS)]
        cv2.rectangle(out, (box.xmin - 1, box.ymin - 1), (box.xmax - 1, box.ymax - 1), colour, 2)
    return out


def sample_grid(
    image_dir: Path, annotation_dir: Path, classes: tuple[str, ...], per_class: int = 4, seed: int = 0
) -> plt.Figure:
    """A row of random images per class with their boxes drawn."""
    rng = np.random.default_rng(seed)
    fig, axes = plt.subplots(len(classes), per_class, figsize=(2 * per_class, 2 * len(classes)))
    for row, name in enumerate(classes):
        paths = sorted(Path(image_dir).glob(f"{name}_*.jpg"))
        for col, path in enumerate(rng.choice(paths, size=per_class, replace=False)):
            image = draw_boxes(read_image(path), Path(annotation_dir) / f"{path.stem}.xml", classes)
            axes[row, col].imshow(image)
            axes[row, col].set_axis_off()
        axes[row, 0].set_title(name, loc="left", fontsize=9)
    fig.tight_layout()
    return fig


def plot_history(history: pd.DataFrame, scores: list[str] | tuple[str, ...] = ("val_dice", "val_iou")) -> plt.Figure:
    """Loss, validation ``scores`` and learning rate against epoch."""
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.5))
    history.plot(x="epoch", y=["train_loss", "val_loss"], ax=axes[0], title="loss", marker=".")
    history.plot(x="epoch", y=list(scores), ax=axes[1], title="validation", marker=".")
    history.plot(x="epoch", y="lr", ax=axes[2], title="learning rate", legend=False)
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def show_prediction(
    image: np.ndarray, truth: np.ndarray, predicted: np.ndarray, classes: tuple[str, ...], title: str = ""
) -> plt.Figure:
    """Image, ground truth, prediction and overlay side by side for the classes present in either mask.

    Args:
        image: ``(H, W, 3)`` uint8.
        truth, predicted: ``(C, H, W)`` 0/1.
    """
    shown = [c for c in range(len(classes)) if truth[c].any() or predicted[c].any()] or [0]
    fig, axes = plt.subplots(len(shown), 4, figsize=(10, 2.6 * len(shown)), squeeze=False)
    for row, c in enumerate(shown):
        panels = [image, truth[c], predicted[c], overlay(image, predicted[c][None], [COLOURS[c]])]
        for ax, panel, label in zip(axes[row], panels, ("image", "truth", "prediction", "overlay")):
            ax.imshow(panel, cmap="gray", vmin=0, vmax=1 if panel.ndim == 2 else 255)
            ax.set_title(f"{label}: {classes[c]}" if label != "image" else f"{title}", fontsize=8)
            ax.set_axis_off()
    fig.tight_layout()
    return fig

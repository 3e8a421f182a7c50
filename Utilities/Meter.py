"""Segmentation metrics accumulated over batches, on top of ``smp.metrics``.

Definitions (all at a probability threshold, 0.5 by default):

- ``dice`` / ``iou``: per image over all channels pooled (the Kaggle steel
  kernels' definition), averaged over images; an image with an empty truth and
  an empty prediction scores 1.
- ``dice_pos`` / ``dice_neg``: the same Dice over images with at least one
  defect pixel in the truth, and over images without any.
- ``dice_<class>`` / ``iou_<class>``: pooled over all pixels of all images of
  that channel (dataset-level), the usual per-class segmentation score;
  ``mean_iou`` is their mean over classes.
- ``class_accuracy``: over images with a defect, the share whose class with
  the largest predicted area is the class with the largest true area
  (NEU-DET's image-level label); an image with nothing predicted is wrong.
- ``images``: how many images were scored.

Only per-image, per-class counts of true/false positives/negatives are kept,
so memory grows with the number of images, not pixels.
"""

from __future__ import annotations

import pandas as pd
import segmentation_models_pytorch as smp
import torch

from Utilities.Distributed import gather_rows


class Meter:
    """Collects per-image confusion counts and turns them into scores.

    Args:
        classes: class names, one per channel.
        threshold: probability above which a pixel counts as predicted defect.
    """

    def __init__(self, classes: tuple[str, ...] | list[str], threshold: float = 0.5):
        self.classes = tuple(classes)
        self.threshold = threshold
        self.counts: list[torch.Tensor] = []

    def update(self, probabilities: torch.Tensor, targets: torch.Tensor) -> None:
        """Add a batch.

        Args:
            probabilities: ``(N, C, H, W)`` float in [0, 1].
            targets: ``(N, C, H, W)`` 0/1.
        """
        tp, fp, fn, tn = smp.metrics.get_stats(
            probabilities.detach().float().cpu(),
            targets.detach().long().cpu(),
            mode="multilabel",
            threshold=self.threshold,
        )
        self.counts.append(torch.stack([tp, fp, fn, tn], dim=-1))

    def merge_processes(self) -> None:
        """Under ``torchrun``, collect every process's images so all score the whole set.

        Every process must call this, also one whose share of images is empty.
        """
        mine = torch.cat(self.counts) if self.counts else torch.zeros((0, len(self.classes), 4), dtype=torch.int64)
        self.counts = [gather_rows(mine)]

    def stats(self) -> tuple[torch.Tensor, ...]:
        """tp, fp, fn, tn, each ``(N_images, C)`` int64."""
        if not self.counts or not sum(len(c) for c in self.counts):
            raise ValueError("Meter has no images; call update() first")
        return torch.cat(self.counts).unbind(-1)

    def compute(self) -> dict[str, float]:
        """All scores as a flat ``{name: float}`` dict (see the module docstring)."""
        tp, fp, fn, tn = self.stats()
        pooled = (tp.sum(1), fp.sum(1), fn.sum(1), tn.sum(1))  # per image, all channels together
        per_image_dice = smp.metrics.f1_score(*pooled, zero_division=1.0)
        has_defect = (tp + fn).sum(1) > 0
        scores = {
            "dice": _mean(per_image_dice),
            "iou": _mean(smp.metrics.iou_score(*pooled, zero_division=1.0)),
            "dice_pos": _mean(per_image_dice[has_defect]),
            "dice_neg": _mean(per_image_dice[~has_defect]),
        }
        class_dice = smp.metrics.f1_score(tp.sum(0), fp.sum(0), fn.sum(0), tn.sum(0), zero_division=1.0)
        class_iou = smp.metrics.iou_score(tp.sum(0), fp.sum(0), fn.sum(0), tn.sum(0), zero_division=1.0)
        for name, dice, iou in zip(self.classes, class_dice, class_iou):
            scores[f"dice_{name}"] = float(dice)
            scores[f"iou_{name}"] = float(iou)
        scores["mean_iou"] = float(class_iou.mean())
        predicted_area, true_area = tp + fp, tp + fn
        right = (predicted_area.argmax(1) == true_area.argmax(1)) & (predicted_area.sum(1) > 0)
        scores["class_accuracy"] = _mean(right[has_defect])
        scores["images"] = float(len(tp))
        return scores

    def per_class_table(self) -> pd.DataFrame:
        """Dice and IoU per class (pooled over images), one row per class."""
        scores = self.compute()
        return pd.DataFrame(
            {"dice": [scores[f"dice_{c}"] for c in self.classes], "iou": [scores[f"iou_{c}"] for c in self.classes]},
            index=pd.Index(self.classes, name="class"),
        )


def _mean(values: torch.Tensor) -> float:
    """Mean as a Python float; NaN for an empty selection (e.g. no defect-free images)."""
    return float(values.float().mean()) if values.numel() else float("nan")

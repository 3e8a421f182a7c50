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
  ``mean_dice`` likewise (for one class: the pooled Dice of that class).
- ``precision_<class>`` / ``recall_<class>``: pixel-level, pooled the same way;
  ``precision`` / ``recall`` / ``f1`` pool all classes' pixels together.
- ``ap_<class>``: average precision of the pixel probabilities over all
  thresholds (scikit-learn's definition, probabilities binned into 1,000 levels);
  ``ap`` is their mean over classes.
- ``detection_<class>``: image-level defect detection accuracy: an image is
  predicted defective in a class if any pixel of it is, truly defective if
  any true pixel is; ``detection`` does the same for "any class".
  ``image_precision_<class>`` / ``image_recall_<class>`` (and without the
  class, for "any class"): the same decisions' precision and recall, the
  share of images flagged that are defective and of defective images flagged.
- ``class_accuracy``: over images with a defect, the share whose class with
  the largest predicted area is the class with the largest true area
  (NEU-DET's image-level label); an image with nothing predicted is wrong.
- ``images``: how many images were scored.

Only per-image, per-class counts of true/false positives/negatives and a
fixed-size histogram of probabilities per class are kept, so memory grows
with the number of images, not pixels.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import segmentation_models_pytorch as smp
import torch
from sklearn.metrics import average_precision_score

from Utilities.Distributed import gather_rows
from Utilities.Errors import UnknownName

AP_BINS = 1000
TABLE_COLUMNS = ("iou", "dice", "f1", "ap", "precision", "recall", "detection", "image_precision", "image_recall")
PER_CLASS = ("dice", "iou", "precision", "recall", "ap", "detection", "image_precision", "image_recall")
POOLED = ("mean_iou", "mean_dice", "precision", "recall", "f1", "ap", "detection", "image_precision", "image_recall",
          "class_accuracy")
VALIDATION_LOSS = "loss"  # the one monitor a better model lowers; every Meter score rises
SCORE_FAMILIES = {  # what a data set's users expect to read (TrainConfig.scores); Utilities.Evaluate computes them
    "area": "Dice/IoU per class and pooled, AP, image-level detection (this Meter)",
    "thin": "crack precision/recall/F1 within 2 px and strictly, and IoU (Utilities.Crack_metrics)",
}


def score_names(classes: tuple[str, ...]) -> tuple[str, ...]:
    """The names ``Meter.compute()`` returns for these classes, known without scoring anything."""
    return ("dice", "iou", "dice_pos", "dice_neg", *(f"{score}_{name}" for name in classes for score in PER_CLASS),
            *POOLED, "images")


def monitor_names(classes: tuple[str, ...]) -> tuple[str, ...]:
    """The validation scores that can pick the best checkpoint: the Meter's and the validation loss."""
    return (*(name for name in score_names(classes) if name != "images"), VALIDATION_LOSS)


def check_monitor(name: str, classes: tuple[str, ...]) -> str:
    """``name`` if validation reports such a score, else ``UnknownName`` listing them."""
    known = monitor_names(classes)
    if name not in known:
        raise UnknownName(f"cannot pick the best checkpoint by {name!r}; known validation scores: {', '.join(known)}")
    return name


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
        # probabilities per class, binned, separately for true-negative and true-positive pixels
        self.histogram = torch.zeros((len(self.classes), 2, AP_BINS), dtype=torch.int64)

    def update(self, probabilities: torch.Tensor, targets: torch.Tensor, masks: torch.Tensor | None = None) -> None:
        """Add a batch.

        Args:
            probabilities: ``(N, C, H, W)`` float in [0, 1].
            targets: ``(N, C, H, W)`` 0/1.
            masks: ``(N, C, H, W)`` 0/1 predicted masks, e.g. post-processed
                (``Utilities.Postprocess``); by default the probabilities at ``threshold``.
        """
        probabilities, targets = probabilities.detach().float().cpu(), targets.detach().long().cpu()
        if masks is None:
            tp, fp, fn, tn = smp.metrics.get_stats(probabilities, targets, mode="multilabel", threshold=self.threshold)
        else:
            tp, fp, fn, tn = smp.metrics.get_stats(masks.detach().long().cpu(), targets, mode="multilabel")
        self.counts.append(torch.stack([tp, fp, fn, tn], dim=-1))
        bins = (probabilities * (AP_BINS - 1)).round().long().clamp(0, AP_BINS - 1)
        channel = torch.arange(len(self.classes)).view(1, -1, *[1] * (bins.dim() - 2))
        index = (channel * 2 + targets.clamp(0, 1)) * AP_BINS + bins
        self.histogram += torch.bincount(index.flatten(), minlength=self.histogram.numel()).view_as(self.histogram)

    def merge_processes(self) -> None:
        """Under ``torchrun``, collect every process's images so all score the whole set.

        Every process must call this, also one whose share of images is empty.
        """
        mine = torch.cat(self.counts) if self.counts else torch.zeros((0, len(self.classes), 4), dtype=torch.int64)
        self.counts = [gather_rows(mine)]
        self.histogram = gather_rows(self.histogram[None]).sum(0)

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
        class_stats = (tp.sum(0), fp.sum(0), fn.sum(0), tn.sum(0))
        all_stats = [s.sum() for s in class_stats]
        precision = smp.metrics.precision(*class_stats, zero_division=1.0)
        recall = smp.metrics.recall(*class_stats, zero_division=1.0)
        predicted_any, true_any = (tp + fp) > 0, (tp + fn) > 0
        detection = (predicted_any == true_any).float().mean(0)
        image_precision, image_recall = _image_precision_recall(predicted_any, true_any)
        ap = [self.average_precision(c) for c in range(len(self.classes))]
        for c, name in enumerate(self.classes):
            scores[f"precision_{name}"] = float(precision[c])
            scores[f"recall_{name}"] = float(recall[c])
            scores[f"ap_{name}"] = ap[c]
            scores[f"detection_{name}"] = float(detection[c])
            scores[f"image_precision_{name}"] = float(image_precision[c])
            scores[f"image_recall_{name}"] = float(image_recall[c])
        scores["mean_iou"] = float(class_iou.mean())
        scores["mean_dice"] = float(class_dice.mean())
        scores["precision"] = float(smp.metrics.precision(*all_stats, zero_division=1.0))
        scores["recall"] = float(smp.metrics.recall(*all_stats, zero_division=1.0))
        scores["f1"] = float(smp.metrics.f1_score(*all_stats, zero_division=1.0))
        scores["ap"] = float(np.nanmean(ap)) if not np.isnan(ap).all() else float("nan")
        scores["detection"] = _mean(predicted_any.any(1) == true_any.any(1))
        scores["image_precision"], scores["image_recall"] = map(float, _image_precision_recall(
            predicted_any.any(1), true_any.any(1)))
        predicted_area, true_area = tp + fp, tp + fn
        right = (predicted_area.argmax(1) == true_area.argmax(1)) & (predicted_area.sum(1) > 0)
        scores["class_accuracy"] = _mean(right[has_defect])
        scores["images"] = float(len(tp))
        return scores

    def average_precision(self, channel: int) -> float:
        """AP of one class from its probability histogram (NaN when the class never occurs)."""
        negatives, positives = self.histogram[channel].numpy()
        if positives.sum() == 0:
            return float("nan")
        scores = np.tile(np.arange(AP_BINS) / (AP_BINS - 1), 2)
        labels = np.repeat([0, 1], AP_BINS)
        weights = np.concatenate([negatives, positives]).astype(np.float64)
        return float(average_precision_score(labels, scores, sample_weight=weights))

    def table(self) -> pd.DataFrame:
        """One tidy row per class and an ``overall`` row: IoU, Dice, F1, AP, precision, recall, detection.

        Class rows pool each class's pixels over all images; ``overall`` pools
        every class's pixels (micro average), except AP (mean over classes)
        and detection (an image is defective if any class is). At the pixel
        level F1 and Dice are the same number; both are listed because
        papers use both names. The per-image Dice of ``compute()["dice"]``
        is another number (averaged over images, not pooled).
        """
        scores = self.compute()
        rows = {name: {column: scores[f"{column if column != 'f1' else 'dice'}_{name}"] for column in TABLE_COLUMNS}
                for name in self.classes}
        tp, fp, fn, tn = (s.sum() for s in self.stats())
        rows["overall"] = {
            "iou": float(smp.metrics.iou_score(tp, fp, fn, tn, zero_division=1.0)),
            "dice": scores["f1"],
            **{column: scores[column] for column in TABLE_COLUMNS if column not in ("iou", "dice")},
        }
        return pd.DataFrame.from_dict(rows, orient="index").rename_axis("class")


def _image_precision_recall(predicted: torch.Tensor, true: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Precision and recall of the image-level "defective" decisions ``predicted`` against ``true`` (bool,
    images along dimension 0)."""
    stats = [(predicted & true).sum(0), (predicted & ~true).sum(0), (~predicted & true).sum(0), (~predicted & ~true).sum(0)]
    return smp.metrics.precision(*stats, zero_division=1.0), smp.metrics.recall(*stats, zero_division=1.0)


def _mean(values: torch.Tensor) -> float:
    """Mean as a Python float; NaN for an empty selection (e.g. no defect-free images)."""
    return float(values.float().mean()) if values.numel() else float("nan")

"""Crack scores as the crack-detection literature reports them.

Cracks are a few pixels wide and hand-drawn, so a prediction one pixel beside
the drawn line is not wrong. The CrackForest paper (Shi et al., 2016) and its
successors therefore score crack pixels with a distance tolerance:

- a predicted crack pixel is correct if a true crack pixel lies within
  ``tolerance`` pixels (Euclidean distance): ``precision = correct / predicted``;
- a true crack pixel is found if a predicted one lies within ``tolerance``:
  ``recall = found / true``; ``f1 = 2 precision recall / (precision + recall)``.

With ``tolerance=0`` these are the strict pixel scores. The probability
threshold is the same for the whole data set and chosen on val (the field's
"optimal data set scale", ODS). Only four counts per threshold are kept, so
memory does not grow with the number of images.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.ndimage import distance_transform_edt

THRESHOLDS = tuple(np.round(np.arange(0.1, 0.91, 0.1), 2))
TOLERANCE = 2  # pixels, as in the CrackForest paper


def within(mask: np.ndarray, tolerance: float) -> np.ndarray:
    """``(H, W)`` bool: pixels whose Euclidean distance to the nearest ``mask`` pixel is at most ``tolerance``."""
    if not mask.any():
        return np.zeros_like(mask, dtype=bool)
    if tolerance == 0:
        return mask.astype(bool)
    return distance_transform_edt(~mask.astype(bool)) <= tolerance


class CrackMeter:
    """Tolerant and strict precision, recall, F1 (and strict IoU) of crack pixels, at several thresholds.

    Args:
        tolerance: distance in pixels within which a crack pixel counts as matched.
        thresholds: probability thresholds to score, for choosing one on val.
    """

    COUNTS = ("predicted", "correct", "true", "found", "strict_tp")

    def __init__(self, tolerance: float = TOLERANCE, thresholds: tuple[float, ...] = THRESHOLDS):
        self.tolerance = tolerance
        self.thresholds = tuple(float(t) for t in thresholds)
        self.counts = np.zeros((len(self.thresholds), len(self.COUNTS)), dtype=np.int64)
        self.images = 0

    def update(self, probabilities: np.ndarray, truth: np.ndarray) -> None:
        """Add one image: ``(H, W)`` crack probabilities and its ``(H, W)`` 0/1 truth (a leading 1-sized axis is fine)."""
        probabilities, truth = np.squeeze(probabilities), np.squeeze(truth).astype(bool)
        if probabilities.shape != truth.shape:
            raise ValueError(f"probabilities {probabilities.shape} and truth {truth.shape} differ in shape")
        near_truth = within(truth, self.tolerance)
        for row, threshold in enumerate(self.thresholds):
            predicted = probabilities >= threshold
            self.counts[row] += (
                predicted.sum(),
                (predicted & near_truth).sum(),
                truth.sum(),
                (truth & within(predicted, self.tolerance)).sum(),
                (predicted & truth).sum(),
            )
        self.images += 1

    def table(self) -> pd.DataFrame:
        """One row per threshold: tolerant ``precision``, ``recall``, ``f1``, and ``strict_*`` with ``strict_iou``."""
        if not self.images:
            raise ValueError("CrackMeter has no images; call update() first")
        predicted, correct, true, found, strict_tp = self.counts.T.astype(np.float64)
        rows = {
            "precision": _ratio(correct, predicted),
            "recall": _ratio(found, true),
            "strict_precision": _ratio(strict_tp, predicted),
            "strict_recall": _ratio(strict_tp, true),
            "strict_iou": _ratio(strict_tp, predicted + true - strict_tp),
        }
        rows["f1"] = _f1(rows["precision"], rows["recall"])
        rows["strict_f1"] = _f1(rows["strict_precision"], rows["strict_recall"])
        columns = ["precision", "recall", "f1", "strict_precision", "strict_recall", "strict_f1", "strict_iou"]
        return pd.DataFrame(rows, index=pd.Index(self.thresholds, name="threshold"))[columns]

    def best_threshold(self) -> float:
        """The threshold with the highest tolerant F1 (choose it on val, then score test there)."""
        return float(self.table()["f1"].idxmax())


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator``, 1 where both are 0 (nothing to find and nothing found is perfect)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, numerator / np.maximum(denominator, 1), np.where(numerator > 0, 0.0, 1.0))


def _f1(precision: np.ndarray, recall: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)

"""From probabilities to masks: a threshold, then post-processing steps chosen on val and kept in the checkpoint.

Each channel is thresholded, then every step of ``STEPS`` runs in order with
that channel's value. A step is one registry entry, a function
``(mask, probabilities, image_probability, value) -> mask`` of one channel,
and its grid of candidate values for ``choose_postprocessing``:

- ``min_area``: drop blobs (8-connected) of fewer pixels, the speckle a
  texture leaves;
- ``min_image_probability``: the image-level decision: keep a channel's mask
  only if the image's probability of holding that defect reaches the value,
  so an image judged free of it gets an empty mask. The probability comes
  from the model's image head where it has one (``TrainConfig.image_head``,
  as Severstal's leading solutions put a classifier in front of the
  segmentation), else it is the channel's highest pixel probability.

An image counts as defective (``defect_present``) when any mask pixel is
left. The values are chosen on validation images by ``choose_postprocessing``,
per channel, for the best mean of the channel's pooled Dice and its
image-level detection accuracy, and stored in the checkpoint
(``Checkpoint.store_postprocessing``), which ``Predictor``, ``predict_folder``
and the command line read.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import cv2
import numpy as np
import pandas as pd
from tqdm.auto import tqdm


def drop_small_blobs(mask: np.ndarray, probabilities: np.ndarray, image_probability: float, min_area: float) -> np.ndarray:
    """``mask`` without its 8-connected blobs of fewer than ``min_area`` pixels."""
    if min_area <= 1 or not mask.any():
        return mask
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    keep = stats[:, cv2.CC_STAT_AREA] >= min_area
    keep[0] = False  # the background
    return keep[labels].astype(np.uint8)


def gate_by_image_probability(mask: np.ndarray, probabilities: np.ndarray, image_probability: float,
                              min_image_probability: float) -> np.ndarray:
    """``mask``, or an empty one when the image's probability of holding the defect is under the value."""
    return mask if image_probability >= min_image_probability else np.zeros_like(mask)


class Step(NamedTuple):
    apply: Callable[[np.ndarray, np.ndarray, float, float], np.ndarray]
    neutral: float  # the value that changes nothing
    grid: tuple[float, ...]  # candidates tried on val
    context: Callable[[float], int]  # rows above and below a band that make the step's result on it the whole image's


STEPS: dict[str, Step] = {
    # a blob of fewer than N pixels spans at most N rows, so N rows of context decide it
    "min_area": Step(drop_small_blobs, 0, (0, 16, 32, 64, 128, 256, 512), lambda min_area: int(min_area)),
    "min_image_probability": Step(gate_by_image_probability, 0.0, (0.0, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995),
                                  lambda value: 0),
}
THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


@dataclass(frozen=True)
class PostProcessing:
    """Per-channel threshold and step values; ``neutral(channels, t)`` is a plain threshold ``t``."""

    threshold: tuple[float, ...]
    steps: dict[str, tuple[float, ...]] = field(default_factory=dict)

    def __post_init__(self):
        unknown = set(self.steps) - set(STEPS)
        if unknown:
            raise KeyError(f"unknown post-processing steps {sorted(unknown)}; known: {', '.join(STEPS)}")
        wrong = {name: len(values) for name, values in self.steps.items() if len(values) != len(self.threshold)}
        if wrong:
            raise ValueError(f"need one value per channel ({len(self.threshold)}), got {wrong}")

    @classmethod
    def neutral(cls, channels: int, threshold: float) -> PostProcessing:
        return cls((threshold,) * channels)

    def with_threshold(self, threshold: float) -> PostProcessing:
        """The same steps after ``threshold`` for every channel."""
        return PostProcessing((threshold,) * len(self.threshold), self.steps)

    def channel_mask(self, probabilities: np.ndarray, channel: int, image_probability: float | None = None) -> np.ndarray:
        """``(H, W)`` uint8 mask of one channel's ``(H, W)`` probabilities (image probability: their peak unless given)."""
        image_probability = float(probabilities.max(initial=0.0)) if image_probability is None else image_probability
        mask = (probabilities >= self.threshold[channel]).astype(np.uint8)
        for name, values in self.steps.items():
            mask = STEPS[name].apply(mask, probabilities, image_probability, values[channel])
        return mask

    def masks(self, probabilities: np.ndarray, image_probabilities: np.ndarray | None = None) -> np.ndarray:
        """``(C, H, W)`` uint8 masks of ``(C, H, W)`` probabilities and ``(C,)`` image probabilities (see above)."""
        return np.stack([self.channel_mask(p, c, None if image_probabilities is None else float(image_probabilities[c]))
                         for c, p in enumerate(probabilities)])

    def context_rows(self) -> int:
        """Rows of context above and below a band of rows for ``masks`` on it to equal the whole image's there
        (given the whole image's image probabilities): how ``Large_images`` post-processes a band at a time."""
        return max((STEPS[name].context(value) for name, values in self.steps.items() for value in values), default=0)

    def to_dict(self) -> dict:
        return {"threshold": list(self.threshold), "steps": {k: list(v) for k, v in self.steps.items()}}

    @classmethod
    def from_dict(cls, values: dict) -> PostProcessing:
        return cls(tuple(values["threshold"]), {k: tuple(v) for k, v in values.get("steps", {}).items()})

    def describe(self, channels: tuple[str, ...]) -> pd.DataFrame:
        """One row per channel: its threshold and step values."""
        table = {"threshold": self.threshold, **self.steps}
        return pd.DataFrame(table, index=pd.Index(channels, name="channel"))


def dominant_class(pixels_over_threshold: np.ndarray) -> np.ndarray:
    """``dominant_class_only``'s rule, for an image streamed in windows and a batch alike: ``(..., C)`` counts
    of pixels over each class's threshold -> ``(..., C)`` float32 weights, 1 for the class with the most (the
    first on a tie), 0 for the others."""
    return np.eye(pixels_over_threshold.shape[-1], dtype=np.float32)[pixels_over_threshold.argmax(-1)]


def label_map(masks: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """``(H, W)`` uint8: 0 where no class's mask is set, else 1 + the most probable of the classes set there."""
    labels, best = np.zeros(masks.shape[1:], np.uint8), np.full(masks.shape[1:], -1.0, np.float32)
    for k, (mask, probability) in enumerate(zip(masks, probabilities)):  # cheaper than an argmax across channels
        if not mask.any():
            continue
        better = (mask > 0) & (probability > best)
        labels, best = np.where(better, k + 1, labels).astype(np.uint8), np.where(better, probability, best)
    return labels


def defect_present(masks: np.ndarray) -> bool:
    """The image-level decision: is any pixel of any channel left in the post-processed masks?"""
    return bool(masks.any())


def choose_postprocessing(
    predictions: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]], channels: tuple[str, ...]
) -> tuple[PostProcessing, pd.DataFrame]:
    """The threshold and step values with the best val score, per channel, tried on every combination of the grids.

    Args:
        predictions: ``(probabilities, truth, image probabilities)`` per
            validation image: ``(C, H, W)``, ``(C, H, W)``, ``(C,)`` or ``None``
            for a model without an image head.

    Returns:
        The chosen ``PostProcessing`` and every candidate's scores: one row per
        channel and combination with pooled ``dice``, ``detection`` (image-level
        accuracy) and ``score``, their mean, which picks the winner.
    """
    rows = []
    for channel, name in enumerate(channels):
        combinations = list(itertools.product(THRESHOLDS, *(step.grid for step in STEPS.values())))
        for threshold, *values in tqdm(combinations, desc=f"post-processing for {name}", unit="candidate"):
            candidate = PostProcessing((threshold,), {step: (value,) for step, value in zip(STEPS, values)})
            rows.append({"channel": name, "threshold": threshold, **dict(zip(STEPS, values)),
                         **_score(candidate, [(p[channel], t[channel], None if i is None else float(i[channel]))
                                              for p, t, i in predictions])})
    table = pd.DataFrame(rows)
    best = table.loc[table.groupby("channel", sort=False)["score"].idxmax()].set_index("channel").loc[list(channels)]
    chosen = PostProcessing(tuple(best["threshold"]), {step: tuple(best[step]) for step in STEPS})
    return chosen, table


def plain_and_chosen(candidates: pd.DataFrame, threshold: float = 0.5) -> pd.DataFrame:
    """The rows of ``choose_postprocessing``'s table for a plain ``threshold`` (every step neutral) and for the
    winner, per channel: what post-processing changed on val."""
    neutral = (candidates["threshold"] == threshold) & (candidates[list(STEPS)] == [s.neutral for s in STEPS.values()]).all(axis=1)
    best = candidates.loc[candidates.groupby("channel", sort=False)["score"].idxmax()]
    return pd.concat([candidates[neutral].assign(rule="plain"), best.assign(rule="chosen")]).set_index(["channel", "rule"])


def _score(candidate: PostProcessing, predictions: list[tuple[np.ndarray, np.ndarray, float | None]]) -> dict[str, float]:
    """Pooled Dice and image-level detection accuracy of one channel's candidate."""
    overlap = predicted = true = right = 0
    for probabilities, truth, image_probability in predictions:
        mask, truth = candidate.channel_mask(probabilities, 0, image_probability) > 0, truth > 0
        overlap += int(np.count_nonzero(mask & truth))
        predicted += int(np.count_nonzero(mask))
        true += int(np.count_nonzero(truth))
        right += bool(mask.any()) == bool(truth.any())
    dice = 2 * overlap / (predicted + true) if predicted + true else 1.0
    detection = right / len(predictions)
    return {"dice": dice, "detection": detection, "score": (dice + detection) / 2}

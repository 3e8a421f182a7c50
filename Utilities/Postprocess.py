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
(``Checkpoint.store_inference_setup``), which ``Predictor``, ``predict_folder``
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
    gate: bool = False  # keeps or empties the whole mask by the image probability: the chooser scores its grid at once


STEPS: dict[str, Step] = {  # gates run after the pixel steps
    # a blob of fewer than N pixels spans at most N rows, so N rows of context decide it
    "min_area": Step(drop_small_blobs, 0, (0, 16, 32, 64, 128, 256, 512), lambda min_area: int(min_area)),
    "min_image_probability": Step(gate_by_image_probability, 0.0, (0.0, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995),
                                  lambda value: 0, gate=True),
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
        for name in sorted(self.steps, key=lambda name: STEPS[name].gate):
            mask = STEPS[name].apply(mask, probabilities, image_probability, self.steps[name][channel])
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


DOMINANT_THRESHOLD = 0.5  # the dominant class is the one with most pixels of at least this probability


def dominant_class(pixels_over_threshold: np.ndarray, peaks: np.ndarray) -> np.ndarray:
    """``dominant_class_only``'s rule, for an image streamed in windows and a batch alike: ``(..., C)`` counts
    of pixels over ``DOMINANT_THRESHOLD`` and ``(..., C)`` peak probabilities -> ``(..., C)`` float32 weights,
    1 for the class with the most pixels (the higher peak on a tie, so an image with nothing over the threshold
    keeps its most probable class), 0 for the others. A fixed threshold makes it a step on the probabilities,
    before the per-class thresholds, so tuning can choose both at once."""
    order = 2 * pixels_over_threshold + peaks  # peaks lie in [0, 1]: they only break ties in the counts
    return np.eye(order.shape[-1], dtype=np.float32)[order.argmax(-1)]


def keep_dominant_class(probabilities: np.ndarray) -> np.ndarray:
    """``(C, H, W)`` probabilities at the image's size with every class but the dominant one set to 0."""
    keep = dominant_class((probabilities >= DOMINANT_THRESHOLD).sum(axis=(1, 2)), probabilities.max(axis=(1, 2)))
    return probabilities * keep[:, None, None].astype(probabilities.dtype)


def exclusive(masks: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """``(C, H, W)`` masks with each pixel in one class at most, the most probable of those set there: what the
    label map a prediction writes holds (``label_map``), so scores are of the written masks."""
    if len(masks) == 1:
        return masks
    labels = label_map(masks, probabilities)
    return (labels[None] == np.arange(1, len(masks) + 1, dtype=np.uint8)[:, None, None]).astype(np.uint8)


@dataclass(frozen=True)
class InferenceSetup:
    """Everything between a model's probabilities and its masks: flip TTA, the dominant class only, then the
    post-processing. Chosen on val (``Utilities.Tune``) and stored in the checkpoint
    (``Checkpoint.store_inference_setup``), so that evaluation, ``Predictor`` and the command line run the same.

    Attributes:
        chosen_on: what chose it, e.g. ``"val: 240 images, dice 0.8312"`` (empty for the untuned default).
        precision: ``"auto"`` (the precision measured faster on the machine) or ``"int8"`` (the checkpoint's
            OpenVINO int8 model, kept by Tune where it agreed with the float one on val: ``Utilities.Int8``).
    """

    postprocessing: PostProcessing
    flip_tta: bool = False
    dominant_class_only: bool = False
    chosen_on: str = ""
    precision: str = "auto"

    @classmethod
    def plain(cls, channels: int, threshold: float) -> InferenceSetup:
        """One pass, every class, a plain threshold: what an untuned checkpoint predicts with."""
        return cls(PostProcessing.neutral(channels, threshold))

    def to_dict(self) -> dict:
        return {"postprocessing": self.postprocessing.to_dict(), "flip_tta": self.flip_tta,
                "dominant_class_only": self.dominant_class_only, "chosen_on": self.chosen_on,
                "precision": self.precision}

    @classmethod
    def from_dict(cls, values: dict) -> InferenceSetup:
        return cls(PostProcessing.from_dict(values["postprocessing"]), bool(values.get("flip_tta", False)),
                   bool(values.get("dominant_class_only", False)), str(values.get("chosen_on", "")),
                   str(values.get("precision", "auto")))

    def masks(self, probabilities: np.ndarray, image_probabilities: np.ndarray | None = None) -> np.ndarray:
        """``(C, H, W)`` uint8 masks of one image's probabilities (flips and the dominant class already applied by
        the predictor): the post-processing, then one class per pixel (``exclusive``)."""
        return exclusive(self.postprocessing.masks(probabilities, image_probabilities), probabilities)

    def describe(self) -> str:
        """One line: what runs, and what chose it."""
        steps = ", ".join(f"{name} {'/'.join(f'{v:g}' for v in values)}" for name, values in self.postprocessing.steps.items()
                          if any(v != STEPS[name].neutral for v in values))
        return (f"flip TTA {'on' if self.flip_tta else 'off'}, dominant class only "
                f"{'on' if self.dominant_class_only else 'off'}, threshold "
                f"{'/'.join(f'{t:g}' for t in self.postprocessing.threshold)}" + (f", {steps}" if steps else "")
                + (", OpenVINO int8" if self.precision == "int8" else "") + f" ({self.chosen_on or 'not tuned: python -m Utilities.Tune chooses on val'})")


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
    pixel_steps = [name for name, step in STEPS.items() if not step.gate]
    gates = [name for name, step in STEPS.items() if step.gate]
    rows = []
    for channel, name in enumerate(channels):
        combinations = list(itertools.product(THRESHOLDS, *(STEPS[step].grid for step in pixel_steps)))
        for threshold, *values in tqdm(combinations, desc=f"post-processing for {name}", unit="candidate"):
            candidate = PostProcessing((threshold,), {step: (value,) for step, value in zip(pixel_steps, values)})
            counts = _counts(candidate, [(p[channel], t[channel], float(p[channel].max(initial=0.0)) if i is None
                                          else float(i[channel])) for p, t, i in predictions])
            for gate_values in itertools.product(*(STEPS[gate].grid for gate in gates)):
                rows.append({"channel": name, "threshold": threshold, **dict(zip(pixel_steps, values)),
                             **dict(zip(gates, gate_values)), **_gated_score(counts, gate_values)})
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


def _counts(candidate: PostProcessing, predictions: list[tuple[np.ndarray, np.ndarray, float]]) -> np.ndarray:
    """Per image of one channel: overlap, predicted and true pixels after the candidate's pixel steps, and the
    image probability, as ``(N, 4)`` float64."""
    rows = []
    for probabilities, truth, image_probability in predictions:
        mask, truth = candidate.channel_mask(probabilities, 0, image_probability) > 0, truth > 0
        rows.append((np.count_nonzero(mask & truth), np.count_nonzero(mask), np.count_nonzero(truth), image_probability))
    return np.array(rows, dtype=np.float64).reshape(-1, 4)


def _gated_score(counts: np.ndarray, gate_values: tuple[float, ...]) -> dict[str, float]:
    """Pooled Dice and image-level detection accuracy of one channel's candidate with these gate values."""
    overlap, predicted, true, image_probability = counts.T
    kept = np.logical_and.reduce([image_probability >= value for value in gate_values]) if gate_values else \
        np.ones(len(counts), bool)
    overlap, predicted = overlap * kept, predicted * kept
    dice = 2 * overlap.sum() / (predicted.sum() + true.sum()) if predicted.sum() + true.sum() else 1.0
    detection = float(np.mean((predicted > 0) == (true > 0))) if len(counts) else 1.0
    return {"dice": float(dice), "detection": detection, "score": (float(dice) + detection) / 2}

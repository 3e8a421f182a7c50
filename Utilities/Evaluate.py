"""Scores of a trained model on labelled images, at the images' own resolution."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from Utilities.Config import TrainConfig
from Utilities.Crack_metrics import THRESHOLDS, TOLERANCE, CrackMeter
from Utilities.Data_Retriever_Seg import read_image, source_of, split_table
from Utilities.Formats import DataSource
from Utilities.Inference import Predictor
from Utilities.Meter import Meter
from Utilities.Postprocess import PostProcessing, choose_postprocessing


def evaluate_source(
    predictor: Predictor,
    source: DataSource,
    names: list[str] | None = None,
    threshold: float | None = None,
    batch_size: int = 16,
    limit: int | None = None,
) -> Meter:
    """Predict samples of any data set format and score them against their truth.

    Masks are compared at the original image size (200x200 for NEU-DET), not
    the network's input size, so numbers compare with published ones.

    Args:
        threshold: score the plain probabilities at this threshold instead of
            the predictor's post-processed masks (``Predictor.masks``).
        names: score only these samples, e.g. the test rows of a split file (default: all).
        limit: score only the first ``limit`` samples (quick checks).

    Returns:
        The filled ``Meter``: ``.compute()`` for all scores, ``.table()`` for the tidy per-class table.
    """
    meter = Meter(predictor.classes, predictor.config.threshold if threshold is None else threshold)
    for _, probabilities, truth, image in _predictions(predictor, source, names, batch_size, limit):
        meter.update(probabilities, truth, None if threshold is not None else _masks(predictor, probabilities, image))
    return meter


def evaluate_cracks(
    predictor: Predictor,
    source: DataSource,
    names: list[str] | None = None,
    tolerance: float = TOLERANCE,
    thresholds: tuple[float, ...] = THRESHOLDS,
) -> CrackMeter:
    """Tolerant and strict crack scores (``Utilities.Crack_metrics``) of a one-channel model, per threshold.

    Choose the threshold on val (``.best_threshold()``), then read test's row for it.
    """
    if len(predictor.classes) != 1:
        raise ValueError(f"crack scores need a one-channel model, not {list(predictor.classes)}")
    meter = CrackMeter(tolerance, thresholds)
    for _, probabilities, truth, _ in _predictions(predictor, source, names, 16, None):
        meter.update(probabilities[0, 0].numpy(), truth[0, 0].numpy())
    return meter


def evaluate_by_label(
    predictor: Predictor, source: DataSource, names: list[str] | None = None, batch_size: int = 16
) -> pd.DataFrame:
    """Scores per image label (e.g. Magnetic Tile's class folders, scored by a binary model) and over all,
    of the predictor's post-processed masks (``Predictor.masks``).

    Returns:
        One row per label and ``all``: the tidy columns of ``Meter.table()`` for
        each output channel pooled over that label's images (``<column>`` for
        one channel, ``<column>_<channel>`` for several), plus ``images``.
    """
    meters: dict[str, Meter] = {}
    for sample, probabilities, truth, image in _predictions(predictor, source, names, batch_size, None):
        masks = _masks(predictor, probabilities, image)
        for key in (sample.label, "all"):
            meters.setdefault(key, Meter(predictor.classes)).update(probabilities, truth, masks)
    rows = {}
    for label, meter in sorted(meters.items(), key=lambda item: item[0] == "all"):
        table = meter.table().drop(index="overall")
        flat = table.iloc[0] if len(table) == 1 else table.stack().set_axis([f"{c}_{k}" for k, c in table.stack().index])
        rows[label] = {**flat.to_dict(), "images": len(meter.stats()[0])}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("label")


def _masks(predictor: Predictor, probabilities: torch.Tensor, image: np.ndarray) -> torch.Tensor:
    """``(1, C, H, W)`` post-processed masks of one image's ``(1, C, H, W)`` probabilities and ``(C,)`` image ones."""
    return torch.from_numpy(predictor.masks(probabilities[0].numpy(), image))[None]


def choose_postprocessing_on(predictor: Predictor, source: DataSource, names: list[str]) -> tuple[PostProcessing, pd.DataFrame]:
    """``Postprocess.choose_postprocessing`` on the named (validation) samples; keep the result with
    ``Checkpoint.store_postprocessing``. Holds the probabilities of all of them in memory (float16)."""
    predictions = [(probabilities[0].numpy().astype(np.float16), truth[0].numpy().astype(np.uint8), image)
                   for _, probabilities, truth, image in _predictions(predictor, source, names, 16, None)]
    return choose_postprocessing(predictions, predictor.classes)


def _predictions(predictor: Predictor, source: DataSource, names, batch_size: int, limit: int | None):
    """``(sample, probabilities (1, C, H, W), truth (1, C, H, W), image probabilities (C,))`` for each sample,
    predicted in batches."""
    if source.classes != predictor.classes:
        raise ValueError(f"the model predicts {list(predictor.classes)} but {source.root} gives {list(source.classes)}")
    samples = [source.sample(n) for n in names] if names is not None else source.samples()
    samples = samples[:limit]
    source.check([s.name for s in samples]).raise_if_errors()  # a test image without truth is an error, not a gap
    for start in tqdm(range(0, len(samples), batch_size), desc="evaluating", unit="batch"):
        chunk = samples[start : start + batch_size]
        images = [read_image(s.image) for s in chunk]
        for sample, picture, (probs, image) in zip(chunk, images, predictor.predict_with_image(images)):
            truth = source.mask(sample, *picture.shape[:2])
            yield sample, torch.from_numpy(probs)[None], torch.from_numpy(truth)[None], image


def held_out_set(config: TrainConfig) -> tuple[DataSource, list[str]]:
    """A config's data set and its test samples, never used in training or model selection, as its split
    file lists them (for every format: NEU-DET's test images are listed wherever notebook 02 put them)."""
    table = split_table(config)
    return source_of(config), list(table.loc[table["split"] == "test", "image"])


def evaluation_table(predictor: Predictor, source: DataSource, names: list[str] | None = None) -> pd.DataFrame:
    """One tidy DataFrame for any data set: IoU, Dice, F1, AP, precision, recall, detection per class and overall."""
    return evaluate_source(predictor, source, names).table()

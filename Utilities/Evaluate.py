"""Scores of a trained model on a labelled folder, at the images' own resolution."""

from __future__ import annotations

from pathlib import Path

import torch
from tqdm.auto import tqdm

from Utilities.Data_Retriever_Seg import read_image
from Utilities.Extract_masks import mask_from_xml
from Utilities.Inference import Predictor, image_files
from Utilities.Meter import Meter


def evaluate_folder(
    predictor: Predictor,
    image_dir: str | Path,
    annotation_dir: str | Path,
    threshold: float | None = None,
    batch_size: int = 16,
    limit: int | None = None,
    names: list[str] | None = None,
) -> Meter:
    """Predict every image of ``image_dir`` and score it against its XML in ``annotation_dir``.

    Masks are compared at the original image size (200x200 for NEU-DET), not
    the network's input size, so numbers compare with published ones.

    Args:
        names: score only these image file names (default: every image).
        limit: score only the first ``limit`` images (quick checks).

    Returns:
        The filled ``Meter``: ``.compute()`` for all scores, ``.per_class_table()``.
    """
    threshold = predictor.config.threshold if threshold is None else threshold
    meter = Meter(predictor.classes, threshold)
    files = [Path(image_dir) / n for n in names] if names is not None else image_files(image_dir)
    files = files[:limit]
    for start in tqdm(range(0, len(files), batch_size), desc="evaluating", unit="batch"):
        chunk = files[start : start + batch_size]
        probabilities = predictor.predict([read_image(p) for p in chunk])
        for path, probs in zip(chunk, probabilities):
            truth = mask_from_xml(Path(annotation_dir) / f"{path.stem}.xml", predictor.classes)
            meter.update(torch.from_numpy(probs)[None], torch.from_numpy(truth)[None])
    return meter

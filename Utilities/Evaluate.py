"""Scores of a trained model on labelled images, at the images' own resolution, as a library and a command.

Usage::

    python -m Utilities.Evaluate --checkpoint Models/fpn_lite2_best.pth            # the test split
    python -m Utilities.Evaluate --checkpoint Models/cracks_best.pth --split val --out scores/

The masks scored are the ones ``python -m Utilities.Inference`` writes: the
checkpoint's inference setup (``Utilities.Tune``), through the same
``Predictor``. Which scores apply is the config's ``scores`` family: ``area``
(Dice/IoU per class and pooled, AP, image-level detection; ``Meter``) or
``thin`` (crack precision/recall/F1 within 2 px and strictly, IoU;
``Crack_metrics``). The command writes one row per image and a summary.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from Utilities.Cli import checkpoint_command
from Utilities.Config import TrainConfig
from Utilities.Crack_metrics import TOLERANCE, CrackMeter
from Utilities.Data_Retriever_Seg import source_of, split_table
from Utilities.Errors import UserError, run_command
from Utilities.Formats import DataSource
from Utilities.Images import read_image
from Utilities.Inference import Predictor
from Utilities.Meter import Meter
from Utilities.Validation_split import names_in

SPLITS = ("train", "val", "test")


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
    for _, probabilities, truth, image in predictions(predictor, source, names, batch_size, limit):
        meter.update(probabilities, truth, None if threshold is not None else _masks(predictor, probabilities, image))
    return meter


def _crack_meter(predictor: Predictor) -> CrackMeter:
    """A meter of the predictor's masks: set to its one threshold, so that it counts exactly the mask's pixels."""
    return CrackMeter(TOLERANCE, predictor.postprocessing.threshold)


def _update_cracks(meter: CrackMeter, predictor: Predictor, probabilities, truth, image) -> None:
    """Add one image's mask (at the meter's threshold where predicted, 0 elsewhere) and truth."""
    mask = _masks(predictor, probabilities, image)[0, 0].numpy().astype(np.float32)
    meter.update(mask * meter.thresholds[0], truth[0, 0].numpy())


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
    for sample, probabilities, truth, image in predictions(predictor, source, names, batch_size, None):
        masks = _masks(predictor, probabilities, image)
        for key in (sample.label, "all"):
            meters.setdefault(key, Meter(predictor.classes)).update(probabilities, truth, masks)
    rows = {}
    for label, meter in sorted(meters.items(), key=lambda item: item[0] == "all"):
        table = meter.table().drop(index="overall")
        flat = table.iloc[0] if len(table) == 1 else table.stack().set_axis([f"{c}_{k}" for k, c in table.stack().index])
        rows[label] = {**flat.to_dict(), "images": len(meter.stats()[0])}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("label")


def score_split(predictor: Predictor, source: DataSource, names: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The scores the config's family names (``TrainConfig.scores``) of the predictor's masks on ``names``.

    Returns:
        ``(summary, per_image)``: for ``area`` the per-class table of
        ``Meter.table()`` (with ``overall``) and per image its Dice and IoU
        over all channels and per class; for ``thin`` one row of tolerant and
        strict crack scores, and the same per image.
    """
    thin = predictor.config.scores == "thin"
    if thin and len(predictor.classes) != 1:
        raise UserError(f"thin-structure scores need a one-channel model, not {list(predictor.classes)}")
    total = _crack_meter(predictor) if thin else Meter(predictor.classes, predictor.config.threshold)
    rows, scored = [], []
    for sample, probabilities, truth, image in predictions(predictor, source, names, 16, None):
        scored.append(sample.name)
        if thin:
            meter = _crack_meter(predictor)
            for each in (meter, total):
                _update_cracks(each, predictor, probabilities, truth, image)
            rows.append({"image": sample.name, **meter.table().iloc[0].to_dict()})
        else:
            total.update(probabilities, truth, _masks(predictor, probabilities, image))
    if thin:
        return total.table().reset_index(), pd.DataFrame(rows)
    return total.table(), _per_image_area(total, scored)


def _per_image_area(meter: Meter, names: list[str]) -> pd.DataFrame:
    """Per image: Dice and IoU over all channels pooled, per class, and true and predicted pixels."""
    tp, fp, fn, _ = (s.double() for s in meter.stats())
    table = pd.DataFrame({"image": names})
    for suffix, (t, f_p, f_n) in {"": (tp.sum(1), fp.sum(1), fn.sum(1)),
                                  **{f"_{c}": (tp[:, k], fp[:, k], fn[:, k]) for k, c in enumerate(meter.classes)}}.items():
        empty = (t + f_p + f_n) == 0  # nothing true and nothing predicted: perfect, as in Meter
        table[f"dice{suffix}"] = torch.where(empty, 1.0, 2 * t / (2 * t + f_p + f_n).clamp(min=1)).numpy()
        table[f"iou{suffix}"] = torch.where(empty, 1.0, t / (t + f_p + f_n).clamp(min=1)).numpy()
    table["true_pixels"], table["predicted_pixels"] = (tp + fn).sum(1).numpy(), (tp + fp).sum(1).numpy()
    return table


def _masks(predictor: Predictor, probabilities: torch.Tensor, image: np.ndarray) -> torch.Tensor:
    """``(1, C, H, W)`` post-processed masks of one image's ``(1, C, H, W)`` probabilities and ``(C,)`` image ones."""
    return torch.from_numpy(predictor.masks(probabilities[0].numpy(), image))[None]


def _samples(source: DataSource, names: list[str] | None, limit: int | None = None):
    return ([source.sample(n) for n in names] if names is not None else source.samples())[:limit]


def predictions(predictor: Predictor, source: DataSource, names, batch_size: int = 16, limit: int | None = None):
    """``(sample, probabilities (1, C, H, W), truth (1, C, H, W), image probabilities (C,))`` for each sample,
    predicted in batches, with the predictor's setup (flips, dominant class)."""
    if source.classes != predictor.classes:
        raise UserError(f"the model predicts {list(predictor.classes)} but {source.root} gives {list(source.classes)}")
    source.check(None if names is None else list(names)[:limit]).raise_if_errors()  # every bad file named first
    samples = _samples(source, names, limit)
    for start in tqdm(range(0, len(samples), batch_size), desc="evaluating", unit="batch"):
        chunk = samples[start : start + batch_size]
        images = [read_image(s.image) for s in chunk]
        for sample, picture, (probs, image) in zip(chunk, images, predictor.predict_with_image(images)):
            truth = source.mask(sample, *picture.shape[:2])
            yield sample, torch.from_numpy(probs)[None], torch.from_numpy(truth)[None], image


def split_names(config: TrainConfig, part: str) -> list[str]:
    """The samples of one part (train, val, test) of the config's split file."""
    names = names_in(split_table(config), part)
    if not names:
        raise UserError(f"{config.split_path} lists no {part} images")
    return names


def held_out_set(config: TrainConfig) -> tuple[DataSource, list[str]]:
    """A config's data set and its test samples, never used in training or model selection, as its split
    file lists them (for every format: NEU-DET's test images are listed wherever notebook 02 put them)."""
    return source_of(config), split_names(config, "test")


def evaluation_table(predictor: Predictor, source: DataSource, names: list[str] | None = None) -> pd.DataFrame:
    """One tidy DataFrame for any data set: IoU, Dice, F1, AP, precision, recall, detection per class and overall."""
    return evaluate_source(predictor, source, names).table()


def predictor_for(checkpoint: str | Path, root: str | Path, **options) -> tuple[Predictor, TrainConfig]:
    """The checkpoint's predictor and its config seen from the project folder ``root``."""
    predictor = Predictor(checkpoint, **options)
    return predictor, TrainConfig.from_dict({**predictor.config.to_dict(), "root": str(root)})  # for prediction


def main() -> None:
    parser = checkpoint_command(
        "Score a checkpoint on one part of its split, with the inference setup stored in it (the masks "
        "python -m Utilities.Inference writes); writes one row per image and a summary.",
        "Exit status: 0 scored, 2 bad arguments or data.", "a Models/<run>_best.pth")
    parser.add_argument("--split", choices=SPLITS, default="test", help="part of the split file to score "
                        "(default: test; choose everything on val first: python -m Utilities.Tune)")
    parser.add_argument("--out", type=Path, help="folder for <run>_<split>_images.csv and <run>_<split>_summary.csv "
                        "(default: the checkpoint's folder)")
    parser.add_argument("--backend", choices=("auto", "openvino", "torch"), default="auto",
                        help="prediction backend, as for Utilities.Inference (default: auto)")
    args = parser.parse_args()
    predictor, config = predictor_for(args.checkpoint, args.root, backend=args.backend)
    print(f"inference setup: {predictor.setup.describe()}")
    summary, per_image = score_split(predictor, source_of(config), split_names(config, args.split))
    out = args.out or args.checkpoint.parent
    out.mkdir(parents=True, exist_ok=True)
    stem = args.checkpoint.name.removesuffix(".pth").removesuffix("_best")
    summary.to_csv(out / f"{stem}_{args.split}_summary.csv", float_format="%.4f", index=config.scores == "area")
    per_image.to_csv(out / f"{stem}_{args.split}_images.csv", float_format="%.4f", index=False)
    print(f"{config.scores} scores on {len(per_image)} {args.split} images of {config.data_path}:")
    print(summary.to_string(float_format="%.4f", index=config.scores == "area"))
    print(f"written: {out / f'{stem}_{args.split}_summary.csv'}, {out / f'{stem}_{args.split}_images.csv'}")


if __name__ == "__main__":
    run_command(main)

"""One Magnetic Tile experiment: train a configuration, choose post-processing on val, score test once.

Appends a row to ``benchmarks/results/mt_experiments.csv``: on val, the
pooled defect Dice and image-level detection accuracy at the plain 0.5
threshold and after the post-processing chosen there
(``Utilities.Postprocess``: threshold, smallest blob, image-level decision
on the peak probability), which is stored in the checkpoint; then, unless
``--val-only``, the test split's scores with it, whole images at their own
resolution: pooled Dice, IoU, AP, image-level detection accuracy, precision
and recall, and the Dice per class folder. The defaults are notebook 05's
configuration.

Usage::

    python -m benchmarks.mt_experiment --seed 1
    python -m benchmarks.mt_experiment --evaluate Models/mt_unet_lite0_best.pth --name notebook05
    python -m benchmarks.mt_experiment --image-size 320 --val-only      # a candidate, scored on val only
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")  # the report is the table, not progress bars

from benchmarks.experiments import describe, experiment_parser, record, train_or_reload  # noqa: E402
from Utilities.Checkpoint import store_postprocessing  # noqa: E402
from Utilities.Config import TrainConfig  # noqa: E402
from Utilities.Data_Retriever_Seg import source_of, split_table  # noqa: E402
from Utilities.Evaluate import choose_postprocessing_on, evaluate_by_label  # noqa: E402
from Utilities.Formats import FORMATS  # noqa: E402
from Utilities.Inference import Predictor  # noqa: E402
from Utilities.Postprocess import plain_and_chosen  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "mt_experiments.csv"
TEST_COLUMNS = ("dice", "iou", "ap", "precision", "recall", "detection", "image_precision", "image_recall")


def mt_config(seed: int = 42, arch: str = "Unet", encoder: str = "tu-tf_efficientnet_lite0", image_size: int = 256,
              epochs: int = 24, lr: float = 1e-3, loss: str = "bce_dice", defect_fraction: float = 0.5,
              image_head: bool = False, run_name: str | None = None) -> TrainConfig:
    """Notebook 05's configuration, or a variation of it."""
    return TrainConfig(
        root=ROOT, data_format="magnetic_tile", data_root="data/Magnetic-Tile",
        classes=FORMATS["magnetic_tile"].default_classes, binary=True, full_resolution=True,
        defect_fraction=defect_fraction, output_prior=0.01, monitor="mean_dice", split_file="splits/Magnetic-Tile.csv",
        arch=arch, encoder=encoder, encoder_weights="imagenet", image_size=image_size, epochs=epochs, lr=lr, loss=loss,
        seed=seed, image_head=image_head, run_name=run_name or f"mtexp_{arch.lower()}_{encoder}_{image_size}_{loss}_"
                                                                f"df{defect_fraction}{'_head' if image_head else ''}_e{epochs}_s{seed}",
    )


def score_checkpoint(checkpoint: Path, config: TrainConfig, val_only: bool = False) -> dict[str, float]:
    """Choose post-processing on val and store it in ``checkpoint``; val before and after; then test with it."""
    source, split = source_of(config), split_table(config)
    names = {part: list(split.loc[split["split"] == part, "image"]) for part in ("val", "test")}
    chosen, candidates = choose_postprocessing_on(Predictor(checkpoint), source, names["val"])
    store_postprocessing(checkpoint, chosen.to_dict())
    predictor = Predictor(checkpoint)
    row = {f"{step}": values[0] for step, values in {"threshold": chosen.threshold, **chosen.steps}.items()}
    for (_, rule), scores in plain_and_chosen(candidates, config.threshold).iterrows():
        row |= {f"val_{rule}_dice": scores["dice"], f"val_{rule}_detection": scores["detection"]}
    if not val_only:
        test = evaluate_by_label(predictor, source, names["test"])
        row |= {f"test_{column}": test.loc["all", column] for column in TEST_COLUMNS}
        row |= {f"test_dice_{label}": test.loc[label, "dice"] for label in test.index if label not in ("all", "free")}
    return row


def main() -> None:
    parser = experiment_parser(__doc__.split("\n\n")[0], seed=42, arch="Unet", encoder="tu-tf_efficientnet_lite0",
                               image_size=256, epochs=24)
    parser.add_argument("--defect-fraction", type=float, default=0.5)
    parser.add_argument("--image-head", action="store_true", help="a classification head decides 'defect present'")
    args = parser.parse_args()

    checkpoint, config, history, minutes = train_or_reload(args.evaluate, lambda: mt_config(
        args.seed, args.arch, args.encoder, args.image_size, args.epochs, args.lr, args.loss, args.defect_fraction,
        args.image_head,
    ), ROOT)
    record({**describe(args.name, config, history, minutes), **score_checkpoint(checkpoint, config, args.val_only)},
           RESULTS)


if __name__ == "__main__":
    main()

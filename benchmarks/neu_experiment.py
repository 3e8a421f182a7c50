"""One NEU-DET experiment: train a configuration, score it once on the test images.

Appends a row to ``benchmarks/results/neu_experiments.csv`` with the
reference's definitions (per-image Dice and IoU over all 6 channels at 0.5,
averaged over images, at the original 200x200 resolution), mean IoU over
classes, per-class IoU, image-level class accuracy, training minutes and
img/s. Model selection and the choice of post-processing (flip TTA, keeping
only the dominant class) use the val split only; test is scored without
post-processing and with the one chosen on val.

Usage::

    python -m benchmarks.neu_experiment --seed 1                 # train the default configuration
    python -m benchmarks.neu_experiment --evaluate Models/fpn_lite0_best.pth --name notebook03
    python -m benchmarks.neu_experiment --image-size 160 --val-only   # a candidate, scored on val only

Candidates are compared with ``--val-only`` (their rows leave the test columns
empty); only the configuration chosen on val is scored on test.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")  # the report is the table, not progress bars


from benchmarks.experiments import describe, experiment_parser, record, train_or_reload  # noqa: E402
from Utilities.Config import TrainConfig  # noqa: E402
from Utilities.Data_Retriever_Seg import split_table  # noqa: E402
from Utilities.Evaluate import evaluate_source, held_out_set  # noqa: E402
from Utilities.Inference import Predictor  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "neu_experiments.csv"


POST_PROCESSING = {  # name: Predictor options; chosen on val, never on test
    "plain": {},
    "tta": {"flip_tta": True},
    "dominant": {"dominant_class_only": True},
    "tta+dominant": {"flip_tta": True, "dominant_class_only": True},
}


def score_checkpoint(checkpoint: Path, config: TrainConfig, val_only: bool = False) -> dict[str, float | str]:
    """Scores at 200x200: val per post-processing, then (unless ``val_only``) test without post-processing
    and test with the post-processing best on val."""
    source, test_names = held_out_set(config)
    split = split_table(config)
    val_names = list(split.loc[split["split"] == "val", "image"])
    val_dice = {
        name: evaluate_source(Predictor(checkpoint, **options), source, val_names).compute()["dice"]
        for name, options in POST_PROCESSING.items()
    }
    chosen = max(val_dice, key=val_dice.get)
    row: dict[str, float | str] = {f"val_dice_{name}": dice for name, dice in val_dice.items()}
    row["post_processing"] = chosen
    if val_only:
        return row
    for label, name in (("", "plain"), ("_post", chosen)):
        meter = evaluate_source(Predictor(checkpoint, **POST_PROCESSING[name]), source, test_names)
        scores = meter.compute()
        row |= {f"test_{k}{label}": scores[k] for k in ("dice", "iou", "mean_iou", "class_accuracy")}
        if not label:
            row |= {f"test_iou_{c}": scores[f"iou_{c}"] for c in meter.classes}
    return row


def main() -> None:
    parser = experiment_parser(__doc__.split("\n\n")[0], TrainConfig.seed, TrainConfig.arch, TrainConfig.encoder,
                               TrainConfig.image_size, TrainConfig.epochs, TrainConfig.lr, TrainConfig.loss)
    parser.add_argument("--encoder-weights", default=TrainConfig.encoder_weights, type=lambda t: None if t == "none" else t)
    parser.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    parser.add_argument("--full-resolution", action="store_true",
                        help="train on --image-size crops of the 200 px images and predict them whole")
    args = parser.parse_args()

    checkpoint, config, history, minutes = train_or_reload(args.evaluate, lambda: TrainConfig(
        root=ROOT, arch=args.arch, encoder=args.encoder, encoder_weights=args.encoder_weights,
        image_size=args.image_size, epochs=args.epochs,
        batch_size=args.batch_size, lr=args.lr, loss=args.loss, seed=args.seed, full_resolution=args.full_resolution,
        run_name=f"exp_{args.arch.lower()}_{args.encoder}_{args.image_size}{'_crops' * args.full_resolution}"
                 f"_{args.loss}_e{args.epochs}_lr{args.lr:g}_s{args.seed}",
    ), ROOT)

    row = {
        **describe(args.name, config, history, minutes),
        "best_val_dice": history["val_dice"].max(),
        **score_checkpoint(checkpoint, config, args.val_only),
    }
    record(row, RESULTS)


if __name__ == "__main__":
    main()

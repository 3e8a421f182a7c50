"""One Magnetic Tile experiment: train a configuration, choose post-processing on val, score test once.

Appends a row to ``benchmarks/results/mt_experiments.csv``: on val, the
monitor score (pooled Dice) of every inference setup tried there
(``Utilities.Tune``: flip TTA, threshold, smallest blob, image-level
decision), the chosen one stored in the checkpoint; then, unless
``--val-only``, the test split's scores with it, whole images at their own
resolution: pooled Dice, IoU, AP, image-level detection accuracy, precision
and recall, and the Dice per class folder. The defaults are notebook 05's
configuration (the magnetic_tile recipe).

Usage::

    python -m benchmarks.mt_experiment --seed 1
    python -m benchmarks.mt_experiment --evaluate Models/mt_unet_lite0_best.pth --name notebook05
    python -m benchmarks.mt_experiment --image-size 320 --val-only      # a candidate, scored on val only
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.experiments import describe, experiment_config, experiment_parser, record, train_or_reload, tune
from Utilities.Data_Retriever_Seg import source_of
from Utilities.Evaluate import evaluate_by_label, split_names

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "mt_experiments.csv"
TEST_COLUMNS = ("dice", "iou", "ap", "precision", "recall", "detection", "image_precision", "image_recall")


def score_checkpoint(checkpoint: Path, config, val_only: bool = False) -> dict[str, float]:
    """Choose the inference setup on val and store it in ``checkpoint``; every candidate's val score; then test."""
    predictor, chosen, candidates = tune(checkpoint, config)
    row = {"threshold": chosen.postprocessing.threshold[0], "flip_tta": chosen.flip_tta,
           **{step: values[0] for step, values in chosen.postprocessing.steps.items()}}
    row |= {f"val_{'tta' if r.flip_tta else 'plain'}_{r.rule}_{config.monitor}": r.score for r in candidates.itertuples()}
    if not val_only:
        test = evaluate_by_label(predictor, source_of(config), split_names(config, "test"))
        row |= {f"test_{column}": test.loc["all", column] for column in TEST_COLUMNS}
        row |= {f"test_dice_{label}": test.loc[label, "dice"] for label in test.index if label not in ("all", "free")}
    return row


def main() -> None:
    args = experiment_parser(__doc__.split("\n\n")[0], "magnetic_tile", ROOT).parse_args()
    checkpoint, config, history, minutes = train_or_reload(args.evaluate, lambda: experiment_config(args), ROOT)
    record({**describe(args.name, config, history, minutes, checkpoint),
            **score_checkpoint(checkpoint, config, args.val_only)}, RESULTS)


if __name__ == "__main__":
    main()

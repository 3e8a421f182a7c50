"""One CrackForest experiment: train a configuration, choose the threshold on val, score test once.

Appends a row to ``benchmarks/results/crack_experiments.csv``: crack
precision, recall and F1 with a 2-pixel tolerance and strictly, and strict
IoU (``Utilities.Crack_metrics``), on the photos at their own 480x320
resolution, with the inference setup chosen on val (``Utilities.Tune``: flip
TTA and the threshold with the best tolerant F1); training minutes and img/s.
The defaults are notebook 06's configuration (the crackforest recipe).

Usage::

    python -m benchmarks.crack_experiment --seed 1
    python -m benchmarks.crack_experiment --evaluate Models/cfd_unet_lite2_best.pth --name notebook06
    python -m benchmarks.crack_experiment --epochs 80 --val-only      # a candidate, scored on val only
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.experiments import describe, experiment_config, experiment_parser, record, train_or_reload, tune
from Utilities.Data_Retriever_Seg import source_of
from Utilities.Evaluate import score_split, split_names

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "crack_experiments.csv"
COLUMNS = ("precision", "recall", "f1", "strict_precision", "strict_recall", "strict_f1", "strict_iou")


def score_checkpoint(checkpoint: Path, config, val_only: bool = False) -> dict:
    """The inference setup chosen on val (flip TTA and the threshold with the best tolerant F1), stored in the
    checkpoint; then (unless ``val_only``) test with it."""
    predictor, chosen, _ = tune(checkpoint, config)
    source = source_of(config)
    val = score_split(predictor, source, split_names(config, "val"))[0].iloc[0]
    row = {"flip_tta": chosen.flip_tta, "threshold": chosen.postprocessing.threshold[0],
           **{f"val_{c}": float(val[c]) for c in COLUMNS}}
    if not val_only:
        test = score_split(predictor, source, split_names(config, "test"))[0].iloc[0]
        row |= {f"test_{c}": float(test[c]) for c in COLUMNS}
    return row


def main() -> None:
    args = experiment_parser(__doc__.split("\n\n")[0], "crackforest", ROOT).parse_args()
    checkpoint, config, history, minutes = train_or_reload(args.evaluate, lambda: experiment_config(args), ROOT)
    record({**describe(args.name, config, history, minutes), **score_checkpoint(checkpoint, config, args.val_only)},
           RESULTS)


if __name__ == "__main__":
    main()

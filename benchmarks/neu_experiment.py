"""One NEU-DET experiment: train a configuration, score it once on the test images.

Appends a row to ``benchmarks/results/neu_experiments.csv`` with the
reference's definitions (per-image Dice and IoU over all 6 channels at 0.5,
averaged over images, at the original 200x200 resolution), mean IoU over
classes, per-class IoU, image-level class accuracy, training minutes and
img/s. Model selection and the choice of the inference setup (``Utilities.Tune``:
flip TTA, keeping only the dominant class, thresholds, smallest blob) use the
val split only; test is scored without post-processing and with the setup
chosen on val, which is stored in the checkpoint.

Usage::

    python -m benchmarks.neu_experiment --seed 1                 # train the neu_det recipe
    python -m benchmarks.neu_experiment --evaluate Models/fpn_lite0_best.pth --name notebook03
    python -m benchmarks.neu_experiment --image-size 160 --val-only   # a candidate, scored on val only

Candidates are compared with ``--val-only`` (their rows leave the test columns
empty); only the configuration chosen on val is scored on test.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.experiments import describe, experiment_config, experiment_parser, record, train_or_reload, tune
from Utilities.Evaluate import evaluate_source, held_out_set
from Utilities.Postprocess import InferenceSetup

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "neu_experiments.csv"


def score_checkpoint(checkpoint: Path, config, val_only: bool = False) -> dict[str, float | str]:
    """Scores at 200x200: the inference setup chosen on val (``Utilities.Tune``: flip TTA, dominant class,
    post-processing) with every candidate's val score; then (unless ``val_only``) test plain and with the setup."""
    predictor, chosen, candidates = tune(checkpoint, config)
    row: dict[str, float | str] = {
        f"val_{config.monitor}_{'tta' if r.flip_tta else 'plain'}{'+dominant' * r.dominant_class_only}_{r.rule}": r.score
        for r in candidates.itertuples()}
    row["post_processing"] = chosen.describe()
    if val_only:
        return row
    source, test_names = held_out_set(config)
    for label, setup in (("", InferenceSetup.plain(len(config.channels), config.threshold)), ("_post", chosen)):
        meter = evaluate_source(predictor.use(setup), source, test_names)
        scores = meter.compute()
        row |= {f"test_{k}{label}": scores[k] for k in ("dice", "iou", "mean_iou", "class_accuracy")}
        if not label:
            row |= {f"test_iou_{c}": scores[f"iou_{c}"] for c in meter.classes}
    return row


def main() -> None:
    args = experiment_parser(__doc__.split("\n\n")[0], "neu_det", ROOT).parse_args()
    checkpoint, config, history, minutes = train_or_reload(args.evaluate, lambda: experiment_config(args), ROOT)
    row = {
        **describe(args.name, config, history, minutes, checkpoint),
        "best_val_dice": history["val_dice"].max(),
        **score_checkpoint(checkpoint, config, args.val_only),
    }
    record(row, RESULTS)


if __name__ == "__main__":
    main()

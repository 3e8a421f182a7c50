"""One CrackForest experiment: train a configuration, choose the threshold on val, score test once.

Appends a row to ``benchmarks/results/crack_experiments.csv``: crack
precision, recall and F1 with a 2-pixel tolerance and strictly, and strict
IoU (``Utilities.Crack_metrics``), on the photos at their own 480x320
resolution, with the inference setup chosen on val (``Utilities.Tune``: flip
TTA and the threshold with the best tolerant F1); training minutes and img/s.
The defaults are notebook 06's configuration (the crackforest recipe).

With ``--folds K``, model selection by cross-validation instead: the train
and val photos pooled and split into K folds (``Validation_split.
cross_validation_splits``), one run per fold trained on the others and tuned
and scored on its fold, a row per fold and their mean in
``benchmarks/results/crack_cv.csv``; the test photos are never predicted. A
fold's score is slightly optimistic (its best epoch and its setup are chosen
on the same photos), alike for every candidate, so it ranks them. With
``--seeds``, the final test of the configuration CV chose: a run per seed and
their mean and standard deviation, in ``crack_experiments.csv``. A fold or seed
already recorded there under the same ``--name``, settings and epochs is taken
from the file, not trained again: a CV or final test can be finished over
several sessions (``--evaluate CHECKPOINT --name ...`` records a run trained
elsewhere, notebook 06's for instance).

Usage::

    python -m benchmarks.crack_experiment --folds 5 --loss bce_tversky      # a candidate, by 5-fold CV
    python -m benchmarks.crack_experiment --seeds 42,1,2      # the final test of the chosen configuration
    python -m benchmarks.crack_experiment --seed 1
    python -m benchmarks.crack_experiment --evaluate Models/cfd_unet_lite2_best.pth --name notebook06
    python -m benchmarks.crack_experiment --epochs 80 --val-only      # a candidate, scored on val only
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd

from benchmarks.experiments import (describe, experiment_config, experiment_parser, record, recorded_or_run, train,
                                    train_or_reload, tune)
from Utilities.Cli import whole_numbers
from Utilities.Config import TrainConfig
from Utilities.Data_Retriever_Seg import source_of, split_table
from Utilities.Evaluate import score_split, split_names
from Utilities.Validation_split import cross_validation_splits

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "crack_experiments.csv"
CV_RESULTS = ROOT / "benchmarks" / "results" / "crack_cv.csv"
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


def cross_validate(base: TrainConfig, folds: int, name: str | None, results: Path = CV_RESULTS) -> pd.DataFrame:
    """Train, tune and score ``base`` on each fold of its split's train and val photos (folds already in
    ``results`` under ``name`` are taken from there); the fold rows and their mean (``fold`` = ``mean``, with
    ``sd_*``), appended to ``results``."""
    rows = []
    for k, fold in enumerate(cross_validation_splits(split_table(base), folds, seed=base.seed), 1):
        split_file = base.models_dir / "cv" / f"{Path(base.split_file).stem}_fold{k}of{folds}.csv"
        split_file.parent.mkdir(parents=True, exist_ok=True)
        fold.to_csv(split_file, index=False)
        config = replace(base, split_file=str(split_file), run_name=f"{base.run_name}_fold{k}of{folds}")
        rows.append(recorded_or_run(results, name or config.run_name, config,
                                    lambda c: {**_trained_row(name, c, val_only=True), "fold": str(k), "folds": folds},
                                    fold=k, folds=folds))
    return _with_mean(rows, "fold", name or base.run_name, results)


def score_seeds(base: TrainConfig, seeds: tuple[int, ...], name: str | None, results: Path = RESULTS) -> pd.DataFrame:
    """The final comparison: ``base`` trained once per seed on its split's train photos, its setup chosen on val
    and test scored once (seeds already in ``results`` under ``name`` are taken from there); the seed rows and
    their mean (``seed`` = ``mean``, with ``sd_*``), appended to ``results``."""
    rows = []
    for seed in seeds:
        config = replace(base, seed=seed, run_name=f"{base.run_name.removesuffix(f'_s{base.seed}')}_s{seed}")
        rows.append(recorded_or_run(results, name or config.run_name, config, lambda c: _trained_row(name, c)))
    return _with_mean(rows, "seed", name or base.run_name, results)


def _trained_row(name: str | None, config: TrainConfig, val_only: bool = False) -> dict:
    """Train ``config`` (continuing from its ``_last.pth``), tune it on val and score it: its row."""
    checkpoint, history, minutes = train(config)
    return {**describe(name, config, history, minutes), **score_checkpoint(checkpoint, config, val_only)}


def _with_mean(rows: list[dict], key: str, name: str, results: Path) -> pd.DataFrame:
    """``rows`` and their mean row (``key`` = ``mean``; scores, minutes and rates averaged, ``sd_*`` beside the
    scores; the per-run setup left empty), which is appended to ``results``."""
    table = pd.DataFrame(rows)
    scores = [c for c in table.columns if c.startswith(("val_", "test_"))]
    averaged = ["epochs", "train_minutes", "train_img_per_s", *scores]
    mean = {**rows[0], "name": name, key: "mean", "flip_tta": None, "threshold": None,
            **table[averaged].mean().to_dict(), **{f"sd_{c}": table[c].std() for c in scores}}
    record(mean, results)
    return pd.concat([table, pd.DataFrame([mean])], ignore_index=True)


def main() -> None:
    parser = experiment_parser(__doc__.split("\n\n")[0], "crackforest", ROOT)
    parser.add_argument("--folds", type=int, help="choose by K-fold cross-validation over the train and val photos "
                        "(the test photos are never predicted)")
    parser.add_argument("--seeds", type=whole_numbers, metavar="N,N,...",
                        help="the final test: one run per seed (e.g. 42,1,2), each tuned on val and scored on test "
                        "once, and their mean and standard deviation")
    args = parser.parse_args()
    if (args.folds or args.seeds) and (args.evaluate or args.val_only):
        parser.error("--folds and --seeds train their own runs; they take neither --evaluate nor --val-only")
    if args.seeds and len(set(args.seeds)) < len(args.seeds):
        parser.error(f"--seeds {','.join(map(str, args.seeds))}: a seed repeated would train the same run twice")
    if args.folds and args.seeds:
        parser.error("--folds chooses on val and --seeds scores test: run them one after the other")
    if args.folds:
        cross_validate(experiment_config(args), args.folds, args.name)
        return
    if args.seeds:
        score_seeds(experiment_config(args), args.seeds, args.name)
        return
    checkpoint, config, history, minutes = train_or_reload(args.evaluate, lambda: experiment_config(args), ROOT)
    record({**describe(args.name, config, history, minutes), **score_checkpoint(checkpoint, config, args.val_only)},
           RESULTS)


if __name__ == "__main__":
    main()

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
their mean and standard deviation, in ``crack_experiments.csv``; with
``--refit CV_NAME`` as well, each seed is trained on the train and val photos
together, its last epoch kept, and predicts with the inference setup that
cross-validation chose (``cv_setup``): twelve val photos choose a threshold
poorly, and no photo is then held back from training. A fold or seed
already recorded there under the same ``--name``, settings and epochs is taken
from the file, not trained again: a CV or final test can be finished over
several sessions (``--evaluate CHECKPOINT --name ...`` records a run trained
elsewhere, notebook 06's for instance).

Usage::

    python -m benchmarks.crack_experiment --folds 5 --loss bce_tversky      # a candidate, by 5-fold CV
    python -m benchmarks.crack_experiment --seeds 42,1,2      # the final test of the chosen configuration
    python -m benchmarks.crack_experiment --seeds 42,1,2 --refit "crackforest recipe (scSE), 100 epochs (CV, full length)"
    python -m benchmarks.crack_experiment --seed 1
    python -m benchmarks.crack_experiment --evaluate Models/cfd_unet_lite2_best.pth --name notebook06
    python -m benchmarks.crack_experiment --epochs 80 --val-only      # a candidate, scored on val only
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pandas as pd

from benchmarks.experiments import (
    describe,
    experiment_config,
    experiment_parser,
    record,
    recorded_or_run,
    train,
    train_or_reload,
    tune,
)
from Utilities.Checkpoint import store_inference_setup
from Utilities.Cli import whole_numbers
from Utilities.Config import TrainConfig
from Utilities.Data_Retriever_Seg import source_of, split_table
from Utilities.Errors import UserError
from Utilities.Evaluate import score_split, split_names
from Utilities.Inference import Predictor
from Utilities.Postprocess import InferenceSetup, PostProcessing
from Utilities.Validation_split import cross_validation_splits

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "crack_experiments.csv"
CV_RESULTS = ROOT / "benchmarks" / "results" / "crack_cv.csv"
COLUMNS = ("precision", "recall", "f1", "strict_precision", "strict_recall", "strict_f1", "strict_iou")
LABELS = "enclosed pavement not crack"  # how the crack masks were read (``Annotation_files.crack_regions``)
OLD_LABELS = "every region above 1"  # rows recorded before 2026-12-02: pavement islands counted as crack


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
                                    lambda c, k=k: {**_trained_row(name, c, val_only=True), "fold": str(k), "folds": folds},
                                    fold=k, folds=folds, labels=LABELS))
    return _with_mean(rows, "fold", name or base.run_name, results)


def score_seeds(base: TrainConfig, seeds: tuple[int, ...], name: str | None, results: Path = RESULTS,
                refit: InferenceSetup | None = None) -> pd.DataFrame:
    """The final comparison: ``base`` trained once per seed on its split's train photos, its setup chosen on val
    and test scored once (seeds already in ``results`` under ``name`` are taken from there); the seed rows and
    their mean (``seed`` = ``mean``, with ``sd_*``), appended to ``results``. With ``refit``, each seed is trained
    on the train and val photos, keeps its last epoch and predicts with ``refit`` (``cv_setup``)."""
    rows = []
    for seed in seeds:
        config = replace(base, seed=seed, run_name=f"{base.run_name.removesuffix(f'_s{base.seed}')}_s{seed}")
        if refit is None:
            rows.append(recorded_or_run(results, name or config.run_name, config, lambda c: _trained_row(name, c),
                                        labels=LABELS))
        else:
            config = replace(config, split_file=str(_refit_split(config)), run_name=f"{config.run_name}_refit")
            rows.append(recorded_or_run(results, name or config.run_name, config,
                                        lambda c: _refitted_row(name, c, refit), trained_on=REFIT, labels=LABELS))
    return _with_mean(rows, "seed", name or base.run_name, results)


def cv_setup(name: str, results: Path = CV_RESULTS) -> InferenceSetup:
    """The inference setup the cross-validation recorded under ``name`` chose, for a model with no val photo left
    to tune on: flip TTA where most folds chose it, and the median of the folds' thresholds."""
    table = (pd.read_csv(results, dtype={"fold": str}) if results.exists()
             else pd.DataFrame(columns=["name", "fold", "labels"]))
    folds = table[(table["name"] == name) & (table["fold"] != "mean") & (table["labels"] == LABELS)]
    folds = folds.drop_duplicates("fold", keep="last")
    if folds.empty:
        raise UserError(f"{results}: no folds recorded under the name {name!r} with the masks read as today "
                        f"({LABELS}); run that cross-validation first "
                        f"(python -m benchmarks.crack_experiment --folds 5 --name {name!r} ...)")
    flips = folds["flip_tta"].astype(str).eq("True")
    threshold = float(folds["threshold"].median())
    return InferenceSetup(PostProcessing.neutral(1, threshold), bool(flips.sum() > len(folds) / 2),
                          chosen_on=f"CV: {name}, flip TTA in {flips.sum()} of {len(folds)} folds, "
                                    f"median threshold {threshold:g}")


REFIT = "train+val"  # the trained_on column of a refitted seed's row


def _refit_split(config: TrainConfig) -> Path:
    """A copy of ``config``'s split file with the val photos trained on too (still listed as val, where the
    Trainer only reports on them) and the test photos as they were."""
    table = split_table(config)
    refit = pd.concat([table.assign(split=table["split"].replace("val", "train")), table[table["split"] == "val"]])
    path = config.models_dir / "refit" / f"{Path(config.split_file).stem}_{REFIT}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    refit.to_csv(path, index=False)
    return path


def _refitted_row(name: str | None, config: TrainConfig, setup: InferenceSetup) -> dict:
    """Train ``config`` (its split refitted), keep its last epoch with ``setup`` as ``<run>_final.pth`` and score
    test once: its row."""
    _, history, minutes = train(config)
    final = config.models_dir / f"{config.run_name}_final.pth"
    shutil.copyfile(config.models_dir / f"{config.run_name}_last.pth", final)
    store_inference_setup(final, setup)
    test = score_split(Predictor(final), source_of(config), split_names(config, "test"))[0].iloc[0]
    return {**_described(name, config, history, minutes, final), "trained_on": REFIT, "flip_tta": setup.flip_tta,
            "threshold": setup.postprocessing.threshold[0], **{f"test_{c}": float(test[c]) for c in COLUMNS}}


def _trained_row(name: str | None, config: TrainConfig, val_only: bool = False) -> dict:
    """Train ``config`` (continuing from its ``_last.pth``), tune it on val and score it: its row."""
    checkpoint, history, minutes = train(config)
    return {**_described(name, config, history, minutes, checkpoint), **score_checkpoint(checkpoint, config, val_only)}


def _described(name: str | None, config: TrainConfig, history: pd.DataFrame, minutes: float, checkpoint: Path) -> dict:
    """``experiments.describe`` and how the masks were read (``labels``): scores under other masks do not compare."""
    return {**describe(name, config, history, minutes, checkpoint), "labels": LABELS}


def _with_mean(rows: list[dict], key: str, name: str, results: Path) -> pd.DataFrame:
    """``rows`` and their mean row (``key`` = ``mean``; scores, minutes and rates averaged, ``sd_*`` beside the
    scores; the per-run setup left empty), which is appended to ``results``."""
    table = pd.DataFrame(rows)
    scores = [c for c in table.columns if c.startswith(("val_", "test_"))]
    averaged = ["train_minutes", "train_img_per_s", *scores]
    mean = {**rows[0], "name": name, key: "mean", "flip_tta": None, "threshold": None,
            "epochs": round(pd.to_numeric(table["epochs"]).mean()),
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
    parser.add_argument("--refit", metavar="CV_NAME",
                        help="with --seeds: train each seed on the train and val photos together, keep its last "
                        "epoch and predict with the inference setup of the cross-validation recorded under CV_NAME "
                        "in crack_cv.csv (flip TTA where most folds chose it, their median threshold)")
    args = parser.parse_args()
    if (args.folds or args.seeds) and (args.evaluate or args.val_only):
        parser.error("--folds and --seeds train their own runs; they take neither --evaluate nor --val-only")
    if args.seeds and len(set(args.seeds)) < len(args.seeds):
        parser.error(f"--seeds {','.join(map(str, args.seeds))}: a seed repeated would train the same run twice")
    if args.refit and not args.seeds:
        parser.error("--refit is a way to run the final test: give --seeds too")
    if args.folds and args.seeds:
        parser.error("--folds chooses on val and --seeds scores test: run them one after the other")
    if args.folds:
        cross_validate(experiment_config(args), args.folds, args.name)
        return
    if args.seeds:
        try:
            refit = cv_setup(args.refit) if args.refit else None
        except UserError as error:
            parser.error(str(error))
        score_seeds(experiment_config(args), args.seeds, args.name, refit=refit)
        return
    checkpoint, config, history, minutes = train_or_reload(args.evaluate, lambda: experiment_config(args), ROOT)
    record({**_described(args.name, config, history, minutes, checkpoint),
            **score_checkpoint(checkpoint, config, args.val_only)}, RESULTS)


if __name__ == "__main__":
    main()

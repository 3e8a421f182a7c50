"""From crack probabilities to a mask, rule against rule, scored on a CV run's own fold models.

For each fold model of a ``crack_experiment --folds K`` run, the fold's photos
are predicted once (flip TTA) and each rule scored (tolerant F1, 2 px) at
every crack threshold and every value of the rule:

- ``threshold``: the plain threshold, what the CV rows and ``Utilities.Tune`` use;
- ``thinned``: the mask thinned to one-pixel lines (``skimage.morphology.skeletonize``)
  before the match, as crack benchmarks often do;
- ``min_area``: blobs (8-connected) of fewer than N pixels dropped
  (``Postprocess.STEPS["min_area"]``, its grid, 0 included), threshold and N chosen together.

Two scores per fold and rule. ``best``: the threshold and value chosen on the
fold itself, as the CV rows are; optimistic, the more so the larger the grid.
``held_out``: the median of the *other* folds' choices, as a model refitted on
all photos gets them (``crack_experiment.cv_setup``): the fair comparison
between rules with grids of different sizes. Rows go to
``benchmarks/results/crack_postprocessing.csv``; the paired differences from
``threshold`` are printed.

Usage::

    python -m benchmarks.crack_postprocessing --run-name cv_scse_e100_rerun --folds 5
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from skimage.morphology import skeletonize

from benchmarks.experiments import record
from Utilities.Crack_metrics import THRESHOLDS, TOLERANCE, CrackMeter
from Utilities.Data_Retriever_Seg import source_of
from Utilities.Evaluate import predictions, split_names
from Utilities.Inference import Predictor
from Utilities.Postprocess import STEPS, InferenceSetup, PostProcessing

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "crack_postprocessing.csv"
SCORES = ("precision", "recall", "f1", "strict_f1")


def _thinned(mask: np.ndarray, value: float) -> np.ndarray:
    """The mask's one-pixel centre lines."""
    return skeletonize(mask > 0).astype(np.uint8)


def _min_area(mask: np.ndarray, value: float) -> np.ndarray:
    """The registered step itself, as ``Utilities.Tune`` would run it (it reads the mask alone, not the
    probabilities nor the image probability passed beside it)."""
    return STEPS["min_area"].apply(mask, mask, 1.0, value)


RULES: dict[str, tuple[Callable[[np.ndarray, float], np.ndarray], tuple[float, ...]]] = {
    "threshold": (lambda mask, value: mask, (0,)),
    "thinned": (_thinned, (0,)),
    "min_area": (_min_area, STEPS["min_area"].grid),
}


def fold_probabilities(checkpoint: Path, split_file: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(probabilities, truth)`` of the fold's val photos, ``(H, W)`` each, predicted with flip TTA."""
    predictor = Predictor(checkpoint)
    predictor.use(InferenceSetup(PostProcessing.neutral(1, 0.5), flip_tta=True))
    config = replace(predictor.config, split_file=str(split_file))
    return [(p[0, 0].numpy(), t[0, 0].numpy()) for _, p, t, _ in
            predictions(predictor, source_of(config), split_names(config, "val"))]


def score(probabilities: list[tuple[np.ndarray, np.ndarray]], rule: str, threshold: float, value: float) -> dict:
    """One rule's pooled tolerant and strict scores at ``threshold`` and ``value``."""
    apply, _ = RULES[rule]
    meter = CrackMeter(TOLERANCE, (0.5,))
    for probability, truth in probabilities:
        meter.update(apply((probability >= threshold).astype(np.uint8), value).astype(np.float32), truth)
    scores = meter.table().iloc[0]
    return {"rule": rule, "threshold": threshold, "value": value, **{c: float(scores[c]) for c in SCORES}}


def best_per_rule(probabilities) -> pd.DataFrame:
    """Per rule, the threshold and value with the best tolerant F1 on these photos (the first of equals:
    the lowest threshold, then the smallest value)."""
    grid = pd.DataFrame([score(probabilities, rule, float(t), float(v)) for rule, (_, values) in RULES.items()
                         for t in THRESHOLDS for v in values])
    return grid.loc[grid.groupby("rule", sort=False)["f1"].idxmax()].reset_index(drop=True)


def held_out(best: pd.DataFrame, probabilities: dict[str, list]) -> pd.DataFrame:
    """Each fold scored with each rule at the median threshold and value of the other folds' ``best`` rows."""
    rows = []
    for fold, photos in probabilities.items():
        others = best[best["fold"] != fold]
        for rule, chosen in others.groupby("rule", sort=False):
            row = score(photos, rule, float(chosen["threshold"].median()), float(chosen["value"].median()))
            rows.append({"fold": fold, "choice": "held_out", **row})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-name", required=True, help="the CV run's name (Models/<run>_fold<k>of<K>_best.pth)")
    parser.add_argument("--folds", type=int, default=5, help="its number of folds (default: 5)")
    args = parser.parse_args()
    probabilities = {str(k): fold_probabilities(ROOT / "Models" / f"{args.run_name}_fold{k}of{args.folds}_best.pth",
                                                ROOT / "Models" / "cv" / f"CrackForest_fold{k}of{args.folds}.csv")
                     for k in range(1, args.folds + 1)}
    best = pd.concat([best_per_rule(photos).assign(fold=fold, choice="best") for fold, photos in probabilities.items()])
    table = pd.concat([best, held_out(best, probabilities)], ignore_index=True)
    for row in table.to_dict("records"):
        record({"run": args.run_name, **row}, RESULTS)
    for choice, rows in table.groupby("choice", sort=False):
        f1 = rows.pivot(index="fold", columns="rule", values="f1")
        paired = f1.drop(columns="threshold").sub(f1["threshold"], axis=0)
        print(f"\n{choice}: tolerant F1 per fold, then the mean and the paired difference from the plain threshold")
        print(pd.concat([f1, f1.mean().to_frame("mean").T, paired.mean().to_frame("paired").T]).to_string(
            float_format="%.4f"))


if __name__ == "__main__":
    main()

"""Does thinning the predicted crack mask before the 2-pixel match help? Scored on a CV run's own folds.

Crack benchmarks often thin the prediction to one-pixel lines (non-maximum
suppression or skeletonisation) before matching it within a tolerance. For
each fold model of a ``crack_experiment --folds K`` run, the fold's val photos
are predicted once (flip TTA), thresholded at each crack threshold, and
scored with and without ``skimage.morphology.skeletonize``; the best
threshold per fold and thinning (chosen on the fold itself, as the CV rows
are) goes to ``benchmarks/results/crack_thinning.csv``, with the mean.

Usage::

    python -m benchmarks.crack_thinning --run-name exp_crackforest_epochs20_s42 --folds 5
"""

from __future__ import annotations

import argparse
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
from Utilities.Postprocess import InferenceSetup, PostProcessing

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "crack_thinning.csv"
SCORES = ("precision", "recall", "f1", "strict_f1")


def fold_scores(checkpoint: Path, split_file: Path) -> pd.DataFrame:
    """Every (threshold, thinned) candidate's tolerant and strict scores on the fold's val photos."""
    predictor = Predictor(checkpoint, backend="torch")
    predictor.use(InferenceSetup(PostProcessing.neutral(1, 0.5), flip_tta=True))
    config = replace(predictor.config, split_file=str(split_file))
    probabilities = [(p[0, 0].numpy(), t[0, 0].numpy()) for _, p, t, _ in
                     predictions(predictor, source_of(config), split_names(config, "val"))]
    rows = []
    for threshold in THRESHOLDS:
        for thinned in (False, True):
            meter = CrackMeter(TOLERANCE, (0.5,))
            for probability, truth in probabilities:
                mask = probability >= threshold
                meter.update((skeletonize(mask) if thinned else mask).astype(np.float32), truth)
            scores = meter.table().iloc[0]
            rows.append({"threshold": threshold, "thinned": thinned, **{c: float(scores[c]) for c in SCORES}})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-name", required=True, help="the CV run's name (Models/<run>_fold<k>of<K>_best.pth)")
    parser.add_argument("--folds", type=int, default=5, help="its number of folds (default: 5)")
    args = parser.parse_args()
    best = []
    for k in range(1, args.folds + 1):
        table = fold_scores(ROOT / "Models" / f"{args.run_name}_fold{k}of{args.folds}_best.pth",
                            ROOT / "Models" / "cv" / f"CrackForest_fold{k}of{args.folds}.csv")
        for _, rows in table.groupby("thinned"):
            row = {"run": args.run_name, "fold": str(k), **rows.loc[rows["f1"].idxmax()].to_dict()}
            best.append(row)
            record(row, RESULTS)
    table = pd.DataFrame(best)
    for thinned, rows in table.groupby("thinned"):
        record({"run": args.run_name, "fold": "mean", "thinned": thinned, **rows[list(SCORES)].mean().to_dict()}, RESULTS)
    print(table.pivot(index="fold", columns="thinned", values="f1").to_string())


if __name__ == "__main__":
    main()

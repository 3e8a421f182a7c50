"""What CrackForest cross-validation compared: one row per candidate of ``benchmarks/results/crack_cv.csv``.

Each candidate's fold F1s (tolerant, on its val fold), their mean and
standard deviation, and the mean and standard deviation of its paired
differences from the crackforest recipe trained for as many epochs on the
same folds, with the masks read alike (``labels``). The folds differ far more from each other than candidates do, so
the paired difference is the fair comparison. Candidates stopped early are
compared on the folds they finished.

Usage::

    python -m benchmarks.crack_cv_table      # prints the table as Markdown

The recipe's rows are those whose recorded settings (``experiments.has_settings``) are the
recipe's; settings a row does not record (batch size, Dice weight...) cannot be told apart.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from benchmarks.crack_experiment import CV_RESULTS, OLD_LABELS
from benchmarks.experiments import has_settings
from Utilities.Config import TrainConfig


def cv_comparison(results: Path = CV_RESULTS) -> pd.DataFrame:
    """One row per candidate (in the order first run): epochs, folds finished, fold F1s, mean and sd, and the
    paired difference from the recipe (mean and sd over the folds both finished; empty for the recipe itself)."""
    table = pd.read_csv(results, dtype={"fold": str})
    folds = table[table["fold"] != "mean"].copy()
    folds["labels"] = folds["labels"].fillna(OLD_LABELS) if "labels" in folds else OLD_LABELS
    folds["is_recipe"] = has_settings(folds, TrainConfig.from_recipe("crackforest"))
    rows = []
    for (name, epochs, k, labels), runs in folds.groupby(["name", "epochs", "folds", "labels"], sort=False):
        f1 = runs.drop_duplicates("fold", keep="last").set_index("fold")["val_f1"]  # a fold run again: the last
        recipe = folds[folds["is_recipe"] & (folds["epochs"] == epochs) & (folds["folds"] == k)
                       & (folds["labels"] == labels)]
        recipe_f1 = recipe.drop_duplicates("fold", keep="last").set_index("fold")["val_f1"]
        paired = (f1 - recipe_f1).dropna() if not runs["is_recipe"].all() else pd.Series(dtype=float)
        rows.append({"candidate": name, "masks": labels, "epochs": int(epochs), "folds": f"{len(f1)} of {int(k)}",
                     "fold F1": " ".join(f"{v:.3f}" for v in f1), "mean F1": f1.mean(), "sd": f1.std(),
                     "paired vs recipe": paired.mean() if len(paired) else None,
                     "paired sd": paired.std() if len(paired) > 1 else None,
                     "train img/s": runs["train_img_per_s"].median()})
    return pd.DataFrame(rows)


def main() -> None:
    table = cv_comparison()
    print(table.astype(object).where(table.notna(), None).to_markdown(index=False, floatfmt=".3f", missingval=""))


if __name__ == "__main__":
    main()

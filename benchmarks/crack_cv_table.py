"""What CrackForest cross-validation compared: one row per candidate of ``benchmarks/results/crack_cv.csv``.

Each candidate's fold F1s (tolerant, on its val fold), their mean and
standard deviation, and the mean and standard deviation of its paired
differences from the crackforest recipe trained for as many epochs on the
same folds. The folds differ far more from each other than candidates do, so
the paired difference is the fair comparison. Candidates stopped early are
compared on the folds they finished.

Usage::

    python -m benchmarks.crack_cv_table      # prints the table as Markdown (docs/results.md holds it)
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from benchmarks.crack_experiment import CV_RESULTS
from Utilities.Config import TrainConfig

SETTINGS = ("arch", "encoder", "image_size", "full_resolution", "loss", "image_head", "decoder_channels",
            "decoder_attention")
UNSET = {"decoder_channels": "default", "decoder_attention": "none"}  # older rows lack these columns


def _settings(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows' model and loss settings, as strings, with older rows' missing columns at their defaults."""
    columns = {name: rows[name] if name in rows else pd.Series(UNSET.get(name), index=rows.index) for name in SETTINGS}
    return pd.DataFrame({name: values.fillna(UNSET.get(name, "")).astype(str) for name, values in columns.items()})


def recipe_settings() -> dict[str, str]:
    """The crackforest recipe's values of ``SETTINGS``, as the rows store them."""
    recipe = TrainConfig.from_recipe("crackforest")
    return {name: str(UNSET[name] if getattr(recipe, name) is None else getattr(recipe, name)) for name in SETTINGS}


def cv_comparison(results: Path = CV_RESULTS) -> pd.DataFrame:
    """One row per candidate (in the order first run): epochs, folds finished, fold F1s, mean and sd, and the
    paired difference from the recipe (mean and sd over the folds both finished; empty for the recipe itself)."""
    table = pd.read_csv(results, dtype={"fold": str})
    folds = table[table["fold"] != "mean"].copy()
    folds["is_recipe"] = (_settings(folds) == pd.Series(recipe_settings())).all(axis=1)
    rows = []
    for name, runs in folds.groupby("name", sort=False):
        f1 = runs.set_index("fold")["val_f1"]
        recipe = folds[folds["is_recipe"] & (folds["epochs"] == runs["epochs"].iloc[0])
                       & (folds["folds"] == runs["folds"].iloc[0])]
        recipe_f1 = recipe.drop_duplicates("fold", keep="last").set_index("fold")["val_f1"]
        paired = (f1 - recipe_f1).dropna() if not runs["is_recipe"].all() else pd.Series(dtype=float)
        rows.append({"candidate": name, "epochs": int(runs["epochs"].iloc[0]),
                     "folds": f"{len(f1)} of {int(runs['folds'].iloc[0])}",
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

"""Training speed of the crackforest recipe's U-Net with narrower decoders: img/s of one training step each.

At full resolution most of a U-Net's step goes to its last decoder stages
(256 px crops: 32 and 16 channels at 128 and 256 px). Each width set trains
a batch of the recipe's crops the project's way (the measured precision,
its loss), the sets taking turns in interleaved rounds
(``default_model.interleaved_rates``), so the ratios hold on one machine at
one moment. Without the recipe's scSE decoder attention, which needs widths
of at least 16, so the widths alone are compared. What the widths cost in F1 is measured by cross-validation
(``python -m benchmarks.crack_experiment --folds 5 --decoder-channels ...``).

Usage::

    python -m benchmarks.crack_decoder_speed
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from benchmarks.default_model import BATCH, interleaved_rates, model_training_step
from benchmarks.speed import machine
from Utilities.Config import TrainConfig
from Utilities.Precision import medians

WIDTHS = {"recipe (smp's 256-128-64-32-16)": None, "128-64-32-16-8": (128, 64, 32, 16, 8),
          "64-32-16-8-8": (64, 32, 16, 8, 8)}


def decoder_rows(config: TrainConfig | None = None, calls_per_round: int = 2) -> pd.DataFrame:
    """Median img/s of each decoder width set's training step, and its ratio to the recipe's own."""
    config = config or TrainConfig.from_recipe("crackforest", encoder_weights=None)
    steps = {name: model_training_step(replace(config, decoder_channels=widths, decoder_attention=None), "auto")
             for name, widths in WIDTHS.items()}
    rates = medians(interleaved_rates(steps, BATCH, calls_per_round))
    recipe = rates[next(iter(WIDTHS))]
    return pd.DataFrame([{"decoder": name, "img/s": rate, "against the recipe": rate / recipe}
                         for name, rate in rates.items()])


def main() -> None:
    print(f"{machine()}; batch {BATCH} of 256 px crops, U-Net/EfficientNet-Lite2, one channel")
    print(decoder_rows().to_markdown(index=False, floatfmt=".2f"))


if __name__ == "__main__":
    main()

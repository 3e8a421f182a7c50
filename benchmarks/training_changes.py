"""What each of the CPU training-speed changes adds (``python -m benchmarks.training_changes``).

The default model's training step (model alone, random tensors, batch 8), built
up one change at a time, from plain float32 eager to the trainer's default; the
steps of every variant are timed in interleaved rounds in one process, so a
machine that speeds up or slows down during the run affects them all alike.
"""

from __future__ import annotations

import statistics

import pandas as pd
import torch

from benchmarks.default_model import BATCH, _plain_loss, interleaved_rates, training_step
from Utilities.Config import TrainConfig
from Utilities.Fast_layers import for_cpu_training, with_fast_merge
from Utilities.Losses import make_loss
from Utilities.Resnet_Unet import model_for

ROUNDS, STEPS_PER_ROUND, WARMUP = 5, 6, 3


CHANGES = (  # in the order they are added; with all of them the step is the trainer's default
    "depthwise convolutions in float32",
    "GroupNorm in float32",
    "5x5 depthwise weight gradients from 3x3 pieces",
    "FPN merge as sums",
    "soft Dice through sigmoid",
)


def _with_changes(model: torch.nn.Module, changes: list[str]) -> torch.nn.Module:
    float32_layers = [layer for layer, change in (("depthwise convolution", CHANGES[0]), ("GroupNorm", CHANGES[1]))
                      if change in changes]
    for_cpu_training(model, bfloat16=True, float32_layers=float32_layers, tiled=CHANGES[2] in changes)
    return with_fast_merge(model) if CHANGES[3] in changes else model


def _step(config: TrainConfig, changes: list[str] | None):
    """One training step with ``changes`` on bf16 autocast and channels-last; ``None``: plain float32 eager."""
    model, _ = model_for(config)
    if changes is None:
        return training_step(config, model, _plain_loss(config), None)
    model = _with_changes(model.to(memory_format=torch.channels_last), changes)
    loss_fn = make_loss(config.loss, config.dice_weight, config.image_loss_weight) if CHANGES[4] in changes else _plain_loss(config)
    return training_step(config, model, loss_fn, torch.bfloat16)


def main() -> None:
    config = TrainConfig()
    variants = {"plain float32 eager": None, "bf16 autocast + channels-last": []}
    variants.update({f"+ {name}": list(CHANGES[: k + 1]) for k, name in enumerate(CHANGES)})
    steps = {label: _step(config, changes) for label, changes in variants.items()}
    rates = interleaved_rates(steps, BATCH, STEPS_PER_ROUND, ROUNDS, WARMUP)
    table = pd.DataFrame({"training step": list(rates), "img/s (median)": [statistics.median(r) for r in rates.values()],
                          "rounds": [", ".join(f"{x:.1f}" for x in r) for r in rates.values()]})
    print(f"{config.arch}/{config.encoder}, {config.image_size} px, batch {BATCH}, model alone, "
          f"{ROUNDS} interleaved rounds of {STEPS_PER_ROUND} steps")
    print(table.to_markdown(index=False, floatfmt=".1f"))


if __name__ == "__main__":
    main()

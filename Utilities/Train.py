"""Train from the command line, in one process or several under ``torchrun``.

Usage::

    python -m Utilities.Train                                        # NEU-DET, the neu_det recipe's defaults
    python -m Utilities.Train --recipe thin_structures --data-root data/my-cracks --epochs 60
    python -m Utilities.Train --recipe magnetic_tile                 # notebook 05's training
    torchrun --nproc_per_node=4 -m Utilities.Train --epochs 30            # 4 GPUs (or 4 CPU processes)
    torchrun --nnodes=2 --nproc_per_node=8 --rdzv-backend=c10d \\
        --rdzv-endpoint=HOST:29500 -m Utilities.Train --epochs 30          # 2 machines, 8 GPUs each

A data set needs its split file first (``python -m Utilities.Validation_split``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from Utilities.Cli import add_config_options, config_from_args
from Utilities.Config import TrainConfig
from Utilities.Data_Retriever_Seg import make_loaders
from Utilities.Distributed import init_from_environment, is_main_process
from Utilities.Errors import run_command
from Utilities.Meter import VALIDATION_LOSS
from Utilities.Resnet_Unet import model_for
from Utilities.Trainer import fit


def command_line() -> argparse.ArgumentParser:
    """The training command's options: one per ``TrainConfig`` option field, ``--recipe`` and ``--resume``."""
    parser = argparse.ArgumentParser(
        description="Train a segmentation model; writes Models/<run-name>_best.pth (best on val), _last.pth (to "
                    "resume) and _history.csv. Next: python -m Utilities.Tune --checkpoint Models/<run-name>_best.pth",
        epilog="Exit status: 0 trained, 2 bad arguments or data (the message names each bad file).")
    add_config_options(parser)
    parser.add_argument("--resume", type=Path, help="a Models/<run>_last.pth to continue, with the same settings")
    return parser


def parse_config(argv: list[str] | None = None) -> tuple[TrainConfig, Path | None]:
    args = command_line().parse_args(argv)
    return config_from_args(args), args.resume


def main() -> None:
    config, resume = parse_config()
    device = init_from_environment()
    train_loader, val_loader = make_loaders(config)
    model, weights = model_for(config)
    history = fit(model, train_loader, val_loader, config, weights, device=device, resume=resume)
    if is_main_process() and len(history):
        monitor = f"val_{config.monitor}"
        scores = history[monitor]
        best = history.loc[scores.idxmin() if config.monitor == VALIDATION_LOSS else scores.idxmax()]
        checkpoint = config.models_dir / f"{config.run_name}_best.pth"
        print(f"best epoch {int(best['epoch'])}: {monitor} {best[monitor]:.4f}, val Dice {best['val_dice']:.4f}; "
              f"checkpoint {checkpoint}\nnext: python -m Utilities.Tune --checkpoint {checkpoint}")


if __name__ == "__main__":
    run_command(main)

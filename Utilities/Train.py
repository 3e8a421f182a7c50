"""Train from the command line, in one process or several under ``torchrun``.

Usage::

    python -m Utilities.Train --epochs 30 --image-size 128
    python -m Utilities.Train --data-format magnetic_tile --data-root data/Magnetic-Tile --binary true \
        --full-resolution true --defect-fraction 0.5 --monitor mean_dice --split-file splits/Magnetic-Tile.csv
    torchrun --nproc_per_node=4 -m Utilities.Train --epochs 30            # 4 GPUs (or 4 CPU processes)
    torchrun --nnodes=2 --nproc_per_node=8 --rdzv-backend=c10d \\
        --rdzv-endpoint=HOST:29500 -m Utilities.Train --epochs 30          # 2 machines, 8 GPUs each
"""

from __future__ import annotations

import argparse
import os
import typing
from dataclasses import fields
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from Utilities.Config import TrainConfig  # noqa: E402
from Utilities.Data_Retriever_Seg import make_loaders  # noqa: E402
from Utilities.Distributed import init_from_environment, is_main_process  # noqa: E402
from Utilities.Resnet_Unet import model_for  # noqa: E402
from Utilities.Trainer import LOWER_IS_BETTER, fit  # noqa: E402


def _option_type(hint):
    """An argparse type for a ``TrainConfig`` field of type ``hint``; ``none`` gives an optional field's ``None``."""
    kinds = [k for k in typing.get_args(hint) if k is not type(None)] or [hint]
    kind = kinds[0]
    if kind is bool:
        parse = _boolean
    elif typing.get_origin(kind) is tuple:
        parse = lambda text: tuple(name.strip() for name in text.split(","))  # noqa: E731
    else:
        parse = kind
    return (lambda text: None if text.lower() == "none" else parse(text)) if type(None) in typing.get_args(hint) else parse


def _boolean(text: str) -> bool:
    if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
        raise argparse.ArgumentTypeError(f"expected true or false, not {text!r}")
    return text.lower() in ("true", "1", "yes")


def parse_config() -> tuple[TrainConfig, Path | None]:
    parser = argparse.ArgumentParser(description="Train a segmentation model on the project's data.")
    parser.add_argument("--root", type=Path, default=Path("."), help="project folder holding IMAGES/ (default: .)")
    parser.add_argument("--resume", type=Path, help="a Models/<run>_last.pth to continue")
    defaults = {f.name: f.default for f in fields(TrainConfig)}  # classes: None, the format's own
    types = typing.get_type_hints(TrainConfig)
    options = TrainConfig.settings("option")
    for name in options:
        default = defaults[name]
        shown = "the data format's own" if name == "classes" else default
        parser.add_argument(f"--{name.replace('_', '-')}", type=_option_type(types[name]), default=default,
                            help=f"default: {shown}")
    args = parser.parse_args()
    config = TrainConfig(root=args.root, **{name: getattr(args, name) for name in options})
    return config, args.resume


def main() -> None:
    config, resume = parse_config()
    device = init_from_environment()
    train_loader, val_loader = make_loaders(config)
    model, weights = model_for(config)
    history = fit(model, train_loader, val_loader, config, weights, device=device, resume=resume)
    if is_main_process() and len(history):
        monitor = f"val_{config.monitor}"
        scores = history[monitor]
        best = history.loc[scores.idxmin() if config.monitor in LOWER_IS_BETTER else scores.idxmax()]
        print(f"best epoch {int(best['epoch'])}: {monitor} {best[monitor]:.4f}, val Dice {best['val_dice']:.4f}; "
              f"checkpoint {config.models_dir / (config.run_name + '_best.pth')}")


if __name__ == "__main__":
    main()

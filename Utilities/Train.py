"""Train from the command line, in one process or several under ``torchrun``.

Usage::

    python -m Utilities.Train --epochs 30 --image-size 128
    torchrun --nproc_per_node=4 -m Utilities.Train --epochs 30            # 4 GPUs (or 4 CPU processes)
    torchrun --nnodes=2 --nproc_per_node=8 --rdzv-backend=c10d \\
        --rdzv-endpoint=HOST:29500 -m Utilities.Train --epochs 30          # 2 machines, 8 GPUs each
"""

from __future__ import annotations

import argparse
import os
from dataclasses import fields
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from Utilities.Config import TrainConfig  # noqa: E402
from Utilities.Data_Retriever_Seg import make_loaders  # noqa: E402
from Utilities.Distributed import init_from_environment, is_main_process  # noqa: E402
from Utilities.Resnet_Unet import build_model  # noqa: E402
from Utilities.Trainer import fit  # noqa: E402

OPTIONS = ("arch", "encoder", "encoder_weights", "image_size", "epochs", "batch_size", "lr", "weight_decay",
           "optimizer", "loss", "precision", "seed", "num_workers", "max_train_images", "max_val_images", "run_name")


def parse_config() -> tuple[TrainConfig, Path | None]:
    parser = argparse.ArgumentParser(description="Train a segmentation model on the project's data.")
    parser.add_argument("--root", type=Path, default=Path("."), help="project folder holding IMAGES/ (default: .)")
    parser.add_argument("--resume", type=Path, help="a Models/<run>_last.pth to continue")
    defaults = TrainConfig()
    types = {f.name: f.type for f in fields(TrainConfig)}
    for name in OPTIONS:
        default = getattr(defaults, name)
        kind = int if "int" in str(types[name]) else float if "float" in str(types[name]) else str
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind, default=default, help=f"default: {default}")
    args = parser.parse_args()
    config = TrainConfig(root=args.root, **{name: getattr(args, name) for name in OPTIONS})
    return config, args.resume


def main() -> None:
    config, resume = parse_config()
    device = init_from_environment()
    train_loader, val_loader = make_loaders(config)
    model, weights = build_model(config.arch, config.encoder, len(config.classes), config.encoder_weights, config.seed)
    history = fit(model, train_loader, val_loader, config, weights, device=device, resume=resume)
    if is_main_process() and len(history):
        best = history.loc[history["val_dice"].idxmax()]
        print(f"best epoch {int(best['epoch'])}: val Dice {best['val_dice']:.4f}, IoU {best['val_iou']:.4f}; "
              f"checkpoint {config.models_dir / (config.run_name + '_best.pth')}")


if __name__ == "__main__":
    main()

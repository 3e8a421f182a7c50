"""What the experiment runners share: train or reload a run, describe it, record its row."""

from __future__ import annotations

import argparse
import datetime
import time
from pathlib import Path

import pandas as pd

from Utilities.Checkpoint import read_checkpoint
from Utilities.Config import TrainConfig
from Utilities.Data_Retriever_Seg import make_loaders
from Utilities.Resnet_Unet import model_for
from Utilities.Trainer import fit


def train(config: TrainConfig) -> tuple[Path, pd.DataFrame, float]:
    """Train ``config``; its best checkpoint, history and training minutes."""
    train_loader, val_loader = make_loaders(config)
    model, weights = model_for(config)
    started = time.perf_counter()
    history = fit(model, train_loader, val_loader, config, weights)
    return config.models_dir / f"{config.run_name}_best.pth", history, (time.perf_counter() - started) / 60


def reload(checkpoint: Path, root: Path) -> tuple[TrainConfig, pd.DataFrame, float]:
    """An earlier run's config (seen from ``root``), history and training minutes (summed epoch times)."""
    config = TrainConfig.from_dict(read_checkpoint(checkpoint)["config"])
    config.root = root
    history = pd.read_csv(checkpoint.with_name(checkpoint.name.replace("_best.pth", "_history.csv")))
    return config, history, history["seconds"].sum() / 60


def train_or_reload(evaluate: Path | None, make_config, root: Path) -> tuple[Path, TrainConfig, pd.DataFrame, float]:
    """``reload`` the checkpoint ``evaluate`` when given, else ``train`` the config ``make_config()`` builds."""
    if evaluate:
        return (evaluate, *reload(evaluate, root))
    config = make_config()
    checkpoint, history, minutes = train(config)
    return checkpoint, config, history, minutes


def describe(name: str | None, config: TrainConfig, history: pd.DataFrame, minutes: float) -> dict:
    """The columns every experiment row starts with."""
    return {
        "name": name or config.run_name,
        "date": datetime.date.today().isoformat(),
        "arch": config.arch,
        "encoder": config.encoder,
        "encoder_weights": config.encoder_weights,
        "lr": config.lr,
        "image_size": config.image_size,
        "full_resolution": config.full_resolution,
        "epochs": len(history),
        "loss": config.loss,
        "image_head": config.image_head,
        "seed": config.seed,
        "train_minutes": minutes,
        "train_img_per_s": history["train_img_per_s"].median(),
    }


def record(row: dict, results: Path) -> None:
    """Append ``row`` to the CSV ``results`` and print it."""
    results.parent.mkdir(parents=True, exist_ok=True)
    table = pd.concat([pd.read_csv(results), pd.DataFrame([row])]) if results.exists() else pd.DataFrame([row])
    table.to_csv(results, index=False, float_format="%.4f")
    print(pd.Series(row).to_string())


def experiment_parser(description: str, seed: int, arch: str, encoder: str, image_size: int, epochs: int,
                      lr: float = 1e-3, loss: str = "bce_dice") -> argparse.ArgumentParser:
    """The options every runner has, with the runner's defaults: ``--name``, ``--evaluate``, ``--seed``,
    ``--val-only`` and the model and schedule (``--arch``, ``--encoder``, ``--image-size``, ``--epochs``,
    ``--lr``, ``--loss``)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--name", default=None, help="the row's name (default: the run name)")
    parser.add_argument("--evaluate", type=Path, help="score an existing checkpoint instead of training")
    parser.add_argument("--seed", type=int, default=seed)
    parser.add_argument("--val-only", action="store_true", help="score val only: for choosing between candidates")
    parser.add_argument("--arch", default=arch)
    parser.add_argument("--encoder", default=encoder)
    parser.add_argument("--image-size", type=int, default=image_size, help="training size (crop at full resolution)")
    parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument("--lr", type=float, default=lr)
    parser.add_argument("--loss", default=loss)
    return parser

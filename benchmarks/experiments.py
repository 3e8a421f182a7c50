"""What the experiment runners share: a recipe with options on top, train or reload a run, tune it on val,
describe it, record its row."""

from __future__ import annotations

import argparse
import datetime
from pathlib import Path

import pandas as pd

from Utilities.Checkpoint import read_checkpoint, store_inference_setup
from Utilities.Cli import add_config_options
from Utilities.Config import TrainConfig
from Utilities.Data_Retriever_Seg import make_loaders, source_of
from Utilities.Evaluate import split_names
from Utilities.Inference import Predictor
from Utilities.Postprocess import InferenceSetup
from Utilities.Resnet_Unet import model_for
from Utilities.Trainer import fit
from Utilities.Tune import choose_setup


def train(config: TrainConfig) -> tuple[Path, pd.DataFrame, float]:
    """Train ``config``, continuing from its ``_last.pth`` where an interrupted run left one (a finished run
    trains no further); its best checkpoint, history and training minutes (the epochs' summed seconds)."""
    train_loader, val_loader = make_loaders(config)
    model, weights = model_for(config)
    last = config.models_dir / f"{config.run_name}_last.pth"
    history = fit(model, train_loader, val_loader, config, weights, resume=last if last.exists() else None)
    return config.models_dir / f"{config.run_name}_best.pth", history, history["seconds"].sum() / 60


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


def config_columns(config: TrainConfig) -> dict:
    """The settings an experiment row records, as it records them."""
    return {
        "arch": config.arch,
        "decoder_channels": "-".join(map(str, config.decoder_channels)) if config.decoder_channels else "default",
        "decoder_attention": config.decoder_attention or "none",
        "encoder": config.encoder,
        "encoder_weights": config.encoder_weights,
        "lr": config.lr,
        "image_size": config.image_size,
        "full_resolution": config.full_resolution,
        "loss": config.loss,
        "image_head": config.image_head,
        "seed": config.seed,
    }


UNRECORDED = {"decoder_channels": "default", "decoder_attention": "none"}  # rows written before these columns


def has_settings(rows: pd.DataFrame, config: TrainConfig) -> pd.Series:
    """Whether each row, as a results CSV gives it back, records ``config``'s settings (``config_columns``)."""
    return pd.concat([_equal(rows, name, value) for name, value in config_columns(config).items()], axis=1).all(axis=1)


def _equal(rows: pd.DataFrame, column: str, value) -> pd.Series:
    """Whether each row's ``column`` holds ``value``: numbers as numbers (a CSV may write 5 as 5.0000), a missing
    column or value as ``None`` or as what rows written before the column meant (``UNRECORDED``)."""
    values = rows[column] if column in rows else pd.Series(None, index=rows.index, dtype=object)
    if value is None:
        return values.isna()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return pd.to_numeric(values, errors="coerce") == value
    return values.fillna(UNRECORDED.get(column, "")).astype(str) == str(value)


def recorded_or_run(results: Path, name: str, config: TrainConfig, run, **keys) -> dict:
    """The row of ``results`` already recorded under ``name`` for ``config``'s settings and schedule and ``keys``
    (a fold), else ``run(config)``'s row, recorded: a seed or fold scored in an earlier session, whose checkpoints
    are gone, is not trained again."""
    if results.exists():
        table = pd.read_csv(results, dtype={key: str for key in keys})
        wanted = [table["name"] == name, _equal(table, "epochs", config.epochs), has_settings(table, config),
                  *(_equal(table, key, value) for key, value in keys.items())]
        found = table[pd.concat(wanted, axis=1).all(axis=1)]
        if len(found):
            run_of = ", ".join([f"seed {config.seed}", *(f"{key} {value}" for key, value in keys.items())])
            print(f"{name} ({run_of}): recorded on {found['date'].iloc[-1]}, not trained again")
            return found.iloc[-1].dropna().to_dict()
    row = run(config)
    record(row, results)
    return row


def describe(name: str | None, config: TrainConfig, history: pd.DataFrame, minutes: float, checkpoint: Path) -> dict:
    """The columns every experiment row starts with; ``trained_in`` is the precision the Trainer kept in
    ``checkpoint`` (empty for one written before it did), since minutes depend on it."""
    return {"name": name or config.run_name, "date": datetime.date.today().isoformat(), **config_columns(config),
            "epochs": len(history), "train_minutes": minutes, "train_img_per_s": history["train_img_per_s"].median(),
            "trained_in": read_checkpoint(checkpoint).get("trained_in", "")}


def record(row: dict, results: Path) -> None:
    """Append ``row`` to the CSV ``results`` and print it. Measurements are kept to 4 decimals, settings exactly:
    a learning rate of 1e-5 written as 0.0000 would match no later run's."""
    results.parent.mkdir(parents=True, exist_ok=True)
    table = pd.concat([pd.read_csv(results), pd.DataFrame([row])]) if results.exists() else pd.DataFrame([row])
    settings = config_columns(TrainConfig())
    measured = [c for c in table.select_dtypes("float").columns if c not in settings]
    table.round(dict.fromkeys(measured, 4)).to_csv(results, index=False)
    print(pd.Series(row).to_string())


def tune(checkpoint: Path, config: TrainConfig) -> tuple[Predictor, InferenceSetup, pd.DataFrame]:
    """Choose the inference setup on val (``Utilities.Tune``), store it in ``checkpoint``; the predictor using it."""
    predictor = Predictor(checkpoint)
    chosen, candidates = choose_setup(predictor, source_of(config), split_names(config, "val"))
    store_inference_setup(checkpoint, chosen)
    return predictor, chosen, candidates


def experiment_parser(description: str, recipe: str, root: Path) -> argparse.ArgumentParser:
    """The runner's options: ``--name``, ``--evaluate``, ``--val-only`` and every training option, starting from
    ``recipe`` (``--recipe`` changes it), as ``python -m Utilities.Train`` has them."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--name", default=None, help="the row's name (default: the run name)")
    parser.add_argument("--evaluate", type=Path, help="score an existing checkpoint instead of training")
    parser.add_argument("--val-only", action="store_true", help="score val only: for choosing between candidates")
    add_config_options(parser)
    parser.set_defaults(recipe=recipe, root=root)
    return parser


def experiment_config(args: argparse.Namespace) -> TrainConfig:
    """The recipe with the options given, under a run name made of them (unless ``--run-name`` is given)."""
    given = {k: v for k, v in vars(args).items() if k in TrainConfig.__dataclass_fields__ and k not in ("root", "recipe")}
    if "run_name" not in given:
        changed = "".join(f"_{k}{v}" for k, v in sorted(given.items()) if k != "seed")
        given["run_name"] = f"exp_{args.recipe}{changed}_s{given.get('seed', TrainConfig.seed)}"
    return TrainConfig.from_recipe(args.recipe, root=args.root, **given)

"""The training and validation loop.

``fit`` trains with AdamW (or Adam) and a one-cycle learning-rate schedule (or another of ``SCHEDULERS``),
keeps the best checkpoint by validation Dice and an atomically written "last"
checkpoint to resume from, and returns the per-epoch history. On a CPU it
trains with channels-last tensors in float32 or bfloat16 autocast, whichever
was measured faster on this machine (``Precision``; the log says which and
why); on CUDA in mixed precision.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from Utilities.Architectures import split_image_logits
from Utilities.Checkpoint import check_resumable, read_checkpoint, save_checkpoint
from Utilities.Config import TrainConfig
from Utilities.Distributed import init_from_environment, is_main_process, mean_over_processes, world_size
from Utilities.Fast_layers import without_fast_layers
from Utilities.Hardware import autocast, default_device, dtype_of, precision_choice, prepare_for_training
from Utilities.Losses import make_loss
from Utilities.Meter import VALIDATION_LOSS, Meter, check_monitor
from Utilities.Optim import make_optimizer, make_scheduler
from Utilities.Resnet_Unet import padded_forward


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch, so shuffling and augmentation repeat."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _seed_epoch(seed: int, epoch: int, loader) -> None:
    # Reseeding per epoch makes a resumed run draw the same batches and augmentations.
    seed_everything(seed + epoch)
    transform = getattr(loader.dataset, "transform", None)
    if hasattr(transform, "set_random_seed"):
        transform.set_random_seed(seed + epoch)
    if hasattr(getattr(loader, "sampler", None), "set_epoch"):
        loader.sampler.set_epoch(epoch)


def _quiet_unless_main() -> dict:
    # Only rank 0 shows bars; elsewhere tqdm's own settings (e.g. TQDM_DISABLE=1) apply.
    return {} if is_main_process() else {"disable": True}


def train_one_epoch(
    model: torch.nn.Module,
    loss_fn: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    loader,
    device: torch.device,
    dtype: torch.dtype | None,
    scaler: torch.amp.GradScaler,
    description: str = "train",
) -> float:
    """One pass over ``loader``; returns the mean training loss."""
    model.train()
    total, count = 0.0, 0
    # tqdm.auto would call iter(loader) twice per epoch; drive the bar by hand instead
    bar = tqdm(total=len(loader), desc=description, leave=False, **_quiet_unless_main())
    for images, masks in loader:
        images = images.to(device, memory_format=torch.channels_last, non_blocking=True)
        masks = masks.to(device, non_blocking=True)
        with autocast(device, dtype):
            loss = loss_fn(model(images).float(), masks)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        total += loss.item() * len(images)
        count += len(images)
        bar.set_postfix(loss=f"{total / count:.4f}")
        bar.update()
    bar.close()
    return mean_over_processes(total, count)


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    loader,
    device: torch.device,
    classes: tuple[str, ...],
    threshold: float = 0.5,
    dtype: torch.dtype | None = None,
    loss_fn: torch.nn.Module | None = None,
) -> dict[str, float]:
    """Scores of ``model`` on ``loader`` (see ``Meter``), plus ``loss`` when ``loss_fn`` is given."""
    model.eval()
    meter = Meter(classes, threshold)
    total, count = 0.0, 0
    bar = tqdm(total=len(loader), desc="val", leave=False, **_quiet_unless_main())
    for images, masks in loader:
        images = images.to(device, memory_format=torch.channels_last, non_blocking=True)
        masks = masks.to(device, non_blocking=True)
        with autocast(device, dtype):
            logits = padded_forward(model, images).float()  # whole images at full resolution: any size
        if loss_fn is not None:
            total += loss_fn(logits, masks).item() * len(images)
            count += len(images)
        meter.update(torch.sigmoid(split_image_logits(logits, len(classes))[0]), masks)
        bar.update()
    bar.close()
    meter.merge_processes()
    scores = meter.compute()
    if loss_fn is not None:
        scores["loss"] = mean_over_processes(total, count)
    return scores


@dataclass
class _Run:
    """What a training run carries from epoch to epoch."""

    model: torch.nn.Module
    loss_fn: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    device: torch.device
    dtype: torch.dtype | None
    precision: str  # what it trains in: "float32", "bfloat16" or "float16", kept in its checkpoints as trained_in
    history: list[dict] = field(default_factory=list)


def fit(
    model: torch.nn.Module,
    train_loader,
    val_loader,
    config: TrainConfig,
    encoder_weights_used: str | None = None,
    device: torch.device | None = None,
    resume: str | Path | None = None,
) -> pd.DataFrame:
    """Train for ``config.epochs`` epochs and keep the best and last checkpoints.

    Writes ``Models/<run_name>_best.pth`` (best validation ``config.monitor``, Dice by default),
    ``Models/<run_name>_last.pth`` (to resume from) and
    ``Models/<run_name>_history.csv``. Ctrl-C (KeyboardInterrupt) stops after
    keeping the last finished epoch and returns the history so far. Under ``torchrun``
    it trains with DistributedDataParallel and only rank 0 writes files.

    Args:
        resume: a ``_last.pth`` checkpoint of an interrupted run to continue.

    Returns:
        One row per epoch: losses, validation scores, learning rate, seconds, img/s.
    """
    try:
        run = _start(model, config, len(train_loader), device, resume)
        _train_epochs(run, config, encoder_weights_used, train_loader, val_loader)
    finally:
        without_fast_layers(model)  # the caller gets its model in its own classes (they pickle)
    return pd.DataFrame(run.history)


def _train_epochs(run: _Run, config: TrainConfig, encoder_weights_used, train_loader, val_loader) -> None:
    """The epochs left of ``run``; Ctrl-C stops after the last finished one."""
    epoch = len(run.history)
    try:
        for epoch in range(len(run.history), config.epochs):
            row = _train_and_validate(run, config, epoch, train_loader, val_loader)
            run.history.append(row)
            if is_main_process():
                _keep(run, config, encoder_weights_used, row)
    except KeyboardInterrupt:
        last = config.models_dir / f"{config.run_name}_last.pth"
        saved = f"epoch {len(run.history)} is saved in {last}" if run.history else "no epoch had finished"
        tqdm.write(f"interrupted in epoch {epoch + 1}; {saved}")


def _start(model, config: TrainConfig, batches_per_epoch: int, device, resume) -> _Run:
    """The model on its device and precision, its loss, optimiser, schedule and scaler; restored from ``resume``."""
    check_monitor(config.monitor, config.channels)  # before any training, also for a config changed after it was built
    device = device or init_from_environment() or default_device()
    precision = precision_choice(device, config.precision)
    dtype = dtype_of(precision)
    if is_main_process():
        tqdm.write(f"precision: {precision.describe()}")
    seed_everything(config.seed)
    model = prepare_for_training(model, device, dtype)
    state = read_checkpoint(resume) if resume is not None else None
    if state is not None:
        check_resumable(state, config.to_dict(), resume)
        model.load_state_dict(state["state_dict"])
    if world_size() > 1:
        model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = make_optimizer(config.optimizer, model, config.lr, config.weight_decay)
    scheduler = make_scheduler(config.scheduler, optimizer, config.lr, config.epochs * batches_per_epoch)
    run = _Run(model, make_loss(config.loss, config.dice_weight, config.image_loss_weight), optimizer, scheduler,
               torch.amp.GradScaler(device.type, enabled=dtype == torch.float16), device, dtype, precision.precision)
    if state is not None:
        run.optimizer.load_state_dict(state["optimizer"])
        run.scheduler.load_state_dict(state["scheduler"])
        run.scaler.load_state_dict(state["scaler"])
        run.history = state["history"]
    return run


def _train_and_validate(run: _Run, config: TrainConfig, epoch: int, train_loader, val_loader) -> dict:
    """One epoch of training, then the validation scores: the history's row for ``epoch``."""
    _seed_epoch(config.seed, epoch, train_loader)
    started = time.perf_counter()
    lr = run.optimizer.param_groups[0]["lr"]
    train_loss = train_one_epoch(run.model, run.loss_fn, run.optimizer, run.scheduler, train_loader, run.device,
                                 run.dtype, run.scaler, description=f"epoch {epoch + 1}/{config.epochs}")
    train_seconds = time.perf_counter() - started
    scores = evaluate(run.model, val_loader, run.device, config.channels, config.threshold, run.dtype, run.loss_fn)
    return {
        "epoch": epoch + 1,
        "train_loss": train_loss,
        "val_loss": scores.pop("loss"),
        **{f"val_{k}": v for k, v in scores.items()},
        "lr": lr,
        "seconds": time.perf_counter() - started,
        "train_img_per_s": len(train_loader.dataset) / train_seconds,
    }


def _keep(run: _Run, config: TrainConfig, encoder_weights_used, row: dict) -> None:
    """The best checkpoint when ``row`` beats every earlier epoch, the last checkpoint and the history CSV."""
    models, monitor = Path(config.models_dir), f"val_{check_monitor(config.monitor, config.channels)}"
    earlier = [r.get(monitor, math.nan) for r in run.history[:-1]]  # rows resumed from older runs may lack it
    earlier = [score for score in earlier if not math.isnan(score)]
    sign = -1 if config.monitor == VALIDATION_LOSS else 1
    if sign * row[monitor] > max((sign * score for score in earlier), default=-math.inf):  # NaN (AP without defects) never is
        save_checkpoint(models / f"{config.run_name}_best.pth", run.model, config, row, encoder_weights_used,
                        epoch=row["epoch"], trained_in=run.precision)
    _save_last(models / f"{config.run_name}_last.pth", run, config, encoder_weights_used)
    pd.DataFrame(run.history).to_csv(models / f"{config.run_name}_history.csv", index=False)
    tqdm.write(f"epoch {row['epoch']:>3}  train_loss {row['train_loss']:.4f}  val_loss {row['val_loss']:.4f}  "
               f"val_dice {row['val_dice']:.4f}  val_iou {row['val_iou']:.4f}  {row['seconds']:.0f}s")


def _save_last(path, run: _Run, config, encoder_weights_used) -> None:
    save_checkpoint(
        path, run.model, config, run.history[-1] if run.history else {}, encoder_weights_used,
        optimizer=run.optimizer.state_dict(),
        scheduler=run.scheduler.state_dict(),
        scaler=run.scaler.state_dict(),
        history=[{k: int(v) if k == "epoch" else float(v) for k, v in row.items()} for row in run.history],
        trained_in=run.precision,
    )

"""Rows of ``make bench`` (alone: ``python -m benchmarks.default_model``) for the default pretrained model: its speed, where a training step's time goes, and
minutes to a good model.

- what the measured precision choice (``Precision``) picked for each purpose
  on this machine, and what choosing cost;
- training and inference img/s of ``TrainConfig()``'s model at its own size,
  the project's way (channels-last; under bf16 depthwise convolutions in
  float32; BatchNorm folded for inference) in float32, in bfloat16 and in the
  measured choice (the default), against the same model in plain float32 eager;
- predictions end to end through ``Predictor.predict`` (NEU-DET-sized
  200x200 images in, probabilities at 200x200 out): the plain float32 model,
  PyTorch's fast path, the same compiled (``Predictor.compile``), and the
  default backend (OpenVINO where installed, ``Fast_inference``) forced to
  float32, to bfloat16, and in its measured choice;
- every speed as the median of ``ROUNDS`` rounds in which the paths take turns
  (``interleaved_rates``);
- the training step's time per layer type (``torch.profiler``, self CPU time
  of each operator, depthwise convolutions told apart by their weight's shape);
- time to quality: training minutes until a run's val Dice first reaches
  ``QUALITY``, read from the histories that training writes.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import segmentation_models_pytorch as smp
import torch

from Utilities import Precision
from Utilities.Config import TrainConfig
from Utilities.Fast_inference import optimise_for_inference
from Utilities.Hardware import autocast, autocast_dtype, prepare_for_training
from Utilities.Losses import make_loss
from Utilities.Optim import make_optimizer
from Utilities.Precision import medians
from Utilities.Resnet_Unet import model_for

CPU = torch.device("cpu")
BATCH, WARMUP = 8, 3
ROUNDS = 5  # interleaved rounds of every timed path (see interleaved_rates)
QUALITY = 0.80  # NEU-DET val Dice


def _batch(config: TrainConfig) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(BATCH, 3, config.image_size, config.image_size, generator=generator)
    masks = (torch.rand(BATCH, len(config.channels), config.image_size, config.image_size, generator=generator) > 0.9)
    return images.contiguous(memory_format=torch.channels_last), masks.float()


def _plain_loss(config: TrainConfig):
    """The default loss as written with smp alone (binary cross-entropy plus smp's ``DiceLoss`` on logits), as
    the plain baseline was measured before ``Losses.SoftDiceLoss`` (the same loss, faster)."""
    bce, dice = torch.nn.BCEWithLogitsLoss(), smp.losses.DiceLoss(mode="multilabel", from_logits=True)
    return lambda logits, masks: bce(logits, masks) + config.dice_weight * dice(logits, masks)


def model_training_step(config: TrainConfig, precision: str | None):
    """A function running one training step of the default model, the project's way in ``precision`` (``auto``:
    the measured choice), or in plain float32 eager (``None``)."""
    model, _ = model_for(config)
    if precision is None:
        return training_step(config, model, _plain_loss(config), None)
    dtype = autocast_dtype(CPU, precision)
    return training_step(config, prepare_for_training(model, CPU, dtype), make_loss(config.loss, config.dice_weight, config.image_loss_weight), dtype)


def training_step(config: TrainConfig, model: torch.nn.Module, loss_fn, dtype: torch.dtype | None):
    """A function running one training step of ``model`` on ``_batch``'s images, channels-last under ``dtype``
    autocast, contiguous in float32 without (as plain code feeds them), in parts the profiler names."""
    model.train()
    optimizer = make_optimizer(config.optimizer, model, config.lr, config.weight_decay)
    images, masks = _batch(config)
    if dtype is None:
        images = images.contiguous()

    def step():
        with torch.profiler.record_function("forward"), autocast(CPU, dtype):
            loss = loss_fn(model(images).float(), masks)
        optimizer.zero_grad(set_to_none=True)
        with torch.profiler.record_function("backward"):
            loss.backward()
        with torch.profiler.record_function("optimiser"):
            optimizer.step()

    return step


def interleaved_rates(calls: dict[str, Callable[[], object]], images_per_call: int, calls_per_round: int,
                      rounds: int = ROUNDS, warmup: int = WARMUP) -> dict[str, list[float]]:
    """``Precision.interleaved_rates`` with this benchmark's rounds and warm-up: paths timed one after the other
    let the machine's drift land in the ratios (end-to-end prediction gave 2.4x and 3.5x in two runs)."""
    return Precision.interleaved_rates(calls, images_per_call, calls_per_round, rounds, warmup)


def _inference(config: TrainConfig, precision: str | None):
    """A function predicting a batch with the default model, the project's PyTorch way in ``precision`` (``auto``:
    the measured choice), or in plain float32 eager (``None``)."""
    model, _ = model_for(config)
    images, _ = _batch(config)
    if precision is not None:
        dtype = autocast_dtype(CPU, precision, "prediction")
        model = optimise_for_inference(model.eval(), CPU, dtype)
        images = images.to(next(model.parameters()).dtype)
    else:
        model, images, dtype = model.eval(), images.contiguous(), None

    @torch.inference_mode()
    def predict():
        with autocast(CPU, dtype):
            model(images)

    return predict


WAYS = {"plain float32 eager": None, "float32": "float32", "bfloat16": "bfloat16", "default": "auto"}


def speed_rows(config: TrainConfig | None = None) -> list[tuple[str, float, str]]:
    """Training and inference img/s of the default model: the project's way in float32, in bfloat16 and in the
    precision measured faster (the default), and in plain float32; the default against the faster of its two
    forms (target: at least 0.97)."""
    config = config or TrainConfig()
    name = f"default {config.arch}/{config.encoder}, {config.image_size} px, batch {BATCH}"
    rows = []
    for kind, make, calls in (("training", model_training_step, 4), ("inference", _inference, 16)):  # rounds of 1-3 s
        per_round = interleaved_rates({way: make(config, p) for way, p in WAYS.items()}, BATCH, calls)
        rates = medians(per_round)
        rows += [(f"{kind}, {name}, {way}", rate, "img/s") for way, rate in rates.items()]
        rows += [(f"default model: {kind} speed-up over its plain float32", rates["default"] / rates["plain float32 eager"], "x"),
                 (f"default model: {kind}, default over the faster of float32 and bfloat16 (target >= 0.97)",
                  over_the_faster(per_round, "default", ("float32", "bfloat16")), "x")]
    return rows


def over_the_faster(per_round: dict[str, list[float]], path: str, forms: tuple[str, ...]) -> float:
    """The median over rounds of ``path``'s rate against the fastest of ``forms`` in the same round: pairs taken
    seconds apart, so the machine's drift between rounds cancels (the default is one of the forms, timed again)."""
    return statistics.median(rates[0] / max(rates[1:]) for rates in zip(per_round[path], *(per_round[f] for f in forms)))


def precision_rows() -> list[tuple[str, float, str]]:
    """What the measured precision choice costs the first time on this machine (target: at most 5 s) and once
    cached, and what it chose for each purpose (measured in a scratch cache, not the user's)."""
    import os
    import tempfile

    from Utilities.Fast_inference import openvino_precision
    from Utilities.Hardware import precision_choice

    def choose_all():
        return [precision_choice(CPU, "auto", "training"), precision_choice(CPU, "auto", "prediction"), openvino_precision()]

    saved = os.environ.get("DEFECT_SEG_CACHE")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["DEFECT_SEG_CACHE"] = tmp
        try:
            started = time.perf_counter()
            choices = choose_all()
            first = time.perf_counter() - started
            started = time.perf_counter()
            choose_all()
            cached = time.perf_counter() - started
        finally:
            os.environ.pop("DEFECT_SEG_CACHE") if saved is None else os.environ.update(DEFECT_SEG_CACHE=saved)
    rows = [("precision choice, first time on this machine, every purpose (target <= 5 s)", first, "s"),
            ("precision choice, cached", cached, "s")]
    for choice in choices:
        rows += [(f"precision for {choice.purpose}: {choice.precision}; representative layers, {name}", rate, "img/s")
                 for name, rate in choice.rates.items()]
    return rows


class _Contiguous(torch.nn.Module):
    """``model`` fed contiguous tensors, as plain PyTorch code feeds it (``Predictor`` makes them channels-last)."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images.contiguous())


def prediction_rows(config: TrainConfig | None = None, count: int = 160) -> list[tuple[str, float, str]]:
    """img/s of ``Predictor.predict`` on ``count`` 200x200 images, batches of 16, along each path (see above)."""
    import tempfile

    from Utilities.Checkpoint import load_checkpoint, save_checkpoint
    from Utilities.Inference import Predictor

    config = config or TrainConfig()
    generator = torch.Generator().manual_seed(0)
    images = [torch.randint(0, 256, (200, 200, 3), dtype=torch.uint8, generator=generator).numpy() for _ in range(count)]
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = Path(tmp) / "default_model.pth"
        model, _ = model_for(config)
        save_checkpoint(checkpoint, model.eval(), config, {}, None)
        plain = Predictor(checkpoint, precision="float32", backend="torch")
        plain.model = _Contiguous(load_checkpoint(checkpoint)[0].eval())  # unfolded, contiguous: plain float32 eager
        paths = {"plain float32 eager": plain, "PyTorch (BatchNorm folded, measured precision)": Predictor(checkpoint, backend="torch")}
        started = time.perf_counter()
        paths["PyTorch, compiled"] = Predictor(checkpoint, backend="torch").compile()
        paths["PyTorch, compiled"].predict(images[:16])
        compile_seconds = time.perf_counter() - started
        default = Predictor(checkpoint)
        for precision in ("float32", "bfloat16"):
            paths[f"{default.backend}, {precision}"] = Predictor(checkpoint, precision=precision)
        paths[f"default ({default.backend}, {default.precision.precision})"] = default

        def predict_all(predictor: Predictor) -> None:
            for start in range(0, count, 16):
                predictor.predict(images[start : start + 16])

        calls = {name: lambda predictor=predictor: predict_all(predictor) for name, predictor in paths.items()}
        per_round = interleaved_rates(calls, count, calls_per_round=1, warmup=1)
        rates = medians(per_round)
    name = f"{config.arch}/{config.encoder}, {config.image_size} px model, 200x200 images, batch 16"
    rows = [(f"prediction end to end (Predictor.predict), {name}, {path}", rate, "img/s") for path, rate in rates.items()]
    rows.append(("Predictor.compile time (one-off, warm inductor cache after the first run)", compile_seconds, "s"))
    for path in list(rates)[1:]:
        rows.append((f"prediction end to end: {path} over plain float32 eager", rates[path] / rates["plain float32 eager"], "x"))
    rows.append(("prediction end to end: default over the faster of its float32 and bfloat16 forms (target >= 0.97)",
                 over_the_faster(per_round, list(rates)[-1], (f"{default.backend}, float32", f"{default.backend}, bfloat16")), "x"))
    return rows


def layer_type(name: str, shapes: list) -> str:
    """The category of one profiled operator: what the breakdown adds its time to."""
    lowered = name.lower()
    if "adam" in lowered or "foreach" in lowered:
        return "optimiser"
    if "norm" in lowered:
        return "normalisation"
    if "convolution_backward" in lowered:
        weight = shapes[2] if len(shapes) > 2 else []
        return "depthwise convolution backward" if len(weight) == 4 and weight[1] == 1 else "other convolution backward"
    if "conv" in lowered:
        return "convolution forward"
    if "backward" in lowered:
        return "other backward"
    return "other"


def step_breakdown_rows(config: TrainConfig | None = None, steps: int = 3) -> list[tuple[str, float, str]]:
    """Milliseconds per training step of the default model, the project's way, by layer type."""
    config = config or TrainConfig()
    step = model_training_step(config, "auto")
    for _ in range(WARMUP):
        step()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], record_shapes=True) as profile:
        for _ in range(steps):
            step()
    totals: dict[str, float] = {}
    for event in profile.key_averages(group_by_input_shape=True):
        if event.key in ("forward", "backward", "optimiser") or event.key.startswith("ProfilerStep"):
            continue
        category = layer_type(event.key, event.input_shapes)
        totals[category] = totals.get(category, 0.0) + event.self_cpu_time_total / 1e3 / steps
    whole = sum(totals.values())
    return [(f"training step of the default model: {category} ({100 * ms / whole:.0f}%)", ms, "ms")
            for category, ms in sorted(totals.items(), key=lambda item: -item[1])]


def minutes_to_quality(history: Path, quality: float = QUALITY) -> float:
    """Training minutes (summed epoch times, validation included) until val Dice first reaches ``quality``;
    NaN when it never does."""
    table = pd.read_csv(history)
    reached = table.index[table["val_dice"] >= quality]
    return float(table["seconds"].iloc[: reached[0] + 1].sum() / 60) if len(reached) else float("nan")


# The from-scratch FPN/ResNet18 default before pretrained encoders (notebook 03 at commit 94b73cf, 2026-11-22,
# 42 epochs on a 2-core Intel Xeon): its epoch lines, read back from that notebook's committed outputs.
SCRATCH_HISTORY = Path(__file__).parent / "results" / "fpn_resnet18_scratch_history.csv"


def time_to_quality_rows(histories: dict[str, Path]) -> list[tuple[str, float, str]]:
    """``minutes_to_quality`` of each run whose history exists (``{label: history csv}``)."""
    return [(f"time to NEU-DET val Dice {QUALITY:.2f}, {label}", minutes_to_quality(history), "min")
            for label, history in histories.items() if history.exists()]


def quality_histories(models: Path) -> dict[str, Path]:
    """The default configuration's latest run in ``models`` (notebook 03's, or ``python -m Utilities.Train``'s with
    its defaults: both write ``<run_name>_history.csv``) and the from-scratch FPN/ResNet18 run."""
    default = TrainConfig()
    return {f"default {default.arch}/{default.encoder}, seed {default.seed} (its latest run in Models/)":
            models / f"{default.run_name}_history.csv",
            "from-scratch FPN/resnet18, seed 2 (notebook 03 of 2026-11-22)": SCRATCH_HISTORY}


def main() -> None:
    """Print these rows alone (``make bench`` includes them in its full report)."""
    rows = precision_rows() + speed_rows() + prediction_rows() + step_breakdown_rows() + time_to_quality_rows(quality_histories(Path("Models")))
    print(pd.DataFrame(rows, columns=["measurement", "value", "unit"]).to_markdown(index=False, floatfmt=".2f"))


if __name__ == "__main__":
    main()

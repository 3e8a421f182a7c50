"""CPU speed report: the project's defaults against a plain baseline, in one run.

Run with ``make bench``. Prints a markdown table and writes it to
``benchmarks/results/speed.md`` and ``speed.csv``; ``--precision`` runs only
the rows about precision (``precision_report``, into ``precision.md``). Everything is measured in
the same process on the same machine; the inference paths and the default
model's training rows take turns in rounds (``default_model.interleaved_rates``),
so the ratios hold on a machine whose speed drifts. The yardstick's training
rows, which include the DataLoader, run one after the other.

The "plain baseline" is what most public repositories do (float32,
contiguous memory format, masks rebuilt from XML in every ``__getitem__``,
DataLoader defaults); it lives here only as the yardstick, on U-Net/ResNet34 at
224 px, so reports compare over time. The default pretrained model's own rows
(its speed against plain float32, the training step by layer type, minutes
to NEU-DET val Dice 0.80) come from ``benchmarks.default_model``.
"""

from __future__ import annotations

import datetime
import itertools
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Subset
from torch.utils.flop_counter import FlopCounterMode

from benchmarks import default_model
from Utilities.Checkpoint import load_checkpoint, save_checkpoint
from Utilities.Config import TrainConfig
from Utilities.Data_Retriever_Seg import SegmentationDataset, make_loaders, source_of, split_table
from Utilities.Evaluate import evaluate_source, held_out_set
from Utilities.Hardware import autocast, autocast_dtype, prepare_model
from Utilities.Inference import Predictor
from Utilities.Losses import make_loss
from Utilities.Onnx_export import export_onnx, onnx_predict, onnx_session, quantize_int8
from Utilities.Optim import make_optimizer
from Utilities.Precision import medians
from Utilities.Resnet_Unet import build_model, model_for
from Utilities.Trainer import fit, train_one_epoch
from Utilities.Transforms import train_transforms

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SIZE, BATCH = 224, 8
TRAIN_STEPS, WARMUP_STEPS, INFER_CALLS_PER_ROUND = 20, 2, 2  # inference: in default_model.ROUNDS rounds
PRECISION_EPOCHS = 10
CPU = torch.device("cpu")
TRAINED = ROOT / "Models" / "fpn_lite2_best.pth"  # the default configuration's model (notebook 03), for accuracy of each path


def timed(fn, rounds: int, warmup: int = 1) -> float:
    """Seconds per call, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    started = time.perf_counter()
    for _ in range(rounds):
        fn()
    return (time.perf_counter() - started) / rounds


def conv_ceiling(dtype: torch.dtype | None) -> float:
    """FLOP/s of a large 3x3 convolution, the best this CPU does on ResNet-like work."""
    conv = torch.nn.Conv2d(256, 256, 3, padding=1, bias=False).to(memory_format=torch.channels_last).eval()
    x = torch.randn(BATCH, 256, 56, 56).to(memory_format=torch.channels_last)
    flops = 2 * BATCH * 256 * 256 * 9 * 56 * 56

    @torch.inference_mode()
    def run():
        with autocast(CPU, dtype):
            conv(x)

    return flops / timed(run, rounds=10, warmup=2)


def forward_flops(model: torch.nn.Module) -> float:
    """FLOPs of one forward pass on one image, counted by ``torch.utils.flop_counter``."""
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.randn(1, 3, SIZE, SIZE))
    return float(counter.get_total_flops())


def config_for(**overrides) -> TrainConfig:
    """The CPU-speed issue's yardstick: U-Net/ResNet34 (not the FPN/ResNet18 default) at 224 px, batch 8."""
    return replace(TrainConfig(root=ROOT, arch="Unet", encoder="resnet34", image_size=SIZE, batch_size=BATCH), **overrides)


def train_dataset(config: TrainConfig, count: int, cache_in_ram: bool) -> SegmentationDataset:
    """``count`` seeded training images of NEU-DET with the training augmentation at ``SIZE``."""
    table = split_table(config)
    names = table.loc[table["split"] == "train", "image"].sample(n=count, random_state=0)
    source = source_of(config)
    return SegmentationDataset(source, [source.sample(n) for n in names], train_transforms(SIZE, config.mean, config.std),
                               cache_in_ram=cache_in_ram)


def baseline_training(config: TrainConfig) -> float:
    """Images/s of a plain float32 loop: XML parsed per item, default DataLoader, contiguous tensors."""
    dataset = train_dataset(config, BATCH * (TRAIN_STEPS + WARMUP_STEPS), cache_in_ram=False)
    model, _ = build_model(config.arch, config.encoder, len(config.channels))
    model.train()
    loss_fn = make_loss(config.loss, config.dice_weight, config.image_loss_weight)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    batches = iter(DataLoader(dataset, batch_size=BATCH, shuffle=True))
    started = None
    for step, (images, masks) in enumerate(batches):
        if step == WARMUP_STEPS:
            started = time.perf_counter()
        loss = loss_fn(model(images), masks)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return BATCH * TRAIN_STEPS / (time.perf_counter() - started)


def default_training(config: TrainConfig, num_workers: int) -> float:
    """Images/s of the Trainer's own epoch loop on the project's default loader."""
    dataset = train_dataset(config, BATCH * (TRAIN_STEPS + WARMUP_STEPS), cache_in_ram=True)
    model, _ = build_model(config.arch, config.encoder, len(config.channels))
    model = prepare_model(model, CPU)
    loss_fn = make_loss(config.loss, config.dice_weight, config.image_loss_weight)
    optimizer = make_optimizer(config.optimizer, model, config.lr, config.weight_decay)
    scheduler = torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    dtype = autocast_dtype(CPU)

    def epoch(subset):
        loader = DataLoader(Subset(dataset, subset), batch_size=BATCH, shuffle=True, num_workers=num_workers)
        train_one_epoch(model, loss_fn, optimizer, scheduler, loader, CPU, dtype, scaler)

    epoch(range(BATCH * WARMUP_STEPS))
    started = time.perf_counter()
    epoch(range(BATCH * WARMUP_STEPS, len(dataset)))
    return BATCH * TRAIN_STEPS / (time.perf_counter() - started)


def loader_throughput(config: TrainConfig, num_workers: int, batches: int = 40) -> float:
    """Images/s the cached, augmenting DataLoader delivers on its own."""
    dataset = train_dataset(config, BATCH * batches, cache_in_ram=True)
    loader = DataLoader(dataset, batch_size=BATCH, shuffle=True, num_workers=num_workers)
    started = time.perf_counter()
    count = sum(len(images) for images, _ in loader)
    return count / (time.perf_counter() - started)


def inference_rows(config: TrainConfig, workdir: Path) -> list[tuple[str, float, str]]:
    """Images/s of the model alone (batch 8, 224 px) along every prediction path."""
    model, _ = build_model(config.arch, config.encoder, len(config.channels))
    checkpoint = workdir / "bench.pth"
    save_checkpoint(checkpoint, model.eval(), config, {}, None)
    images = [np.random.default_rng(i).integers(0, 255, (200, 200, 3), dtype=np.uint8) for i in range(BATCH)]

    predictor = Predictor(checkpoint, backend="torch")
    openvino = Predictor(checkpoint)  # the default backend where openvino is installed
    batch = predictor.preprocess(images)
    fast_batch = batch.to(predictor.input_dtype, memory_format=torch.channels_last)
    autocast_model = prepare_model(load_checkpoint(checkpoint)[0], CPU)

    @torch.inference_mode()
    def plain():
        model(batch)

    @torch.inference_mode()
    def autocast_only():
        with autocast(CPU, torch.bfloat16):
            autocast_model(fast_batch.float())

    @torch.inference_mode()
    def default():
        predictor.model(fast_batch)

    started = time.perf_counter()
    compiled = torch.compile(predictor.model)
    with torch.inference_mode():
        compiled(fast_batch)
    compile_seconds = time.perf_counter() - started

    @torch.inference_mode()
    def compiled_call():
        compiled(fast_batch)

    onnx_path = export_onnx(checkpoint, workdir / "bench.onnx")
    session = onnx_session(onnx_path)
    int8 = onnx_session(quantize_int8(onnx_path, [batch.numpy()], workdir / "bench.int8.onnx"))
    calls = {
        "inference, plain float32 eager (baseline)": plain,
        "inference, bf16 autocast + channels-last": autocast_only,
        "inference, default (conv+BN folded, bf16 weights, channels-last)": default,
        "inference, default + torch.compile": compiled_call,
        f"inference, {openvino.backend} backend (Predictor's default)": lambda: openvino.model(batch),
        "inference, ONNX Runtime float32": lambda: onnx_predict(session, batch),
        "inference, ONNX Runtime int8 (static, QDQ)": lambda: onnx_predict(int8, batch),
        "prediction end to end (Predictor.predict, 200x200 in and out), PyTorch": lambda: predictor.predict(images),
        f"prediction end to end (Predictor.predict, 200x200 in and out), default ({openvino.backend})":
            lambda: openvino.predict(images),
    }
    rates = medians(default_model.interleaved_rates(calls, BATCH, INFER_CALLS_PER_ROUND, warmup=1))
    return [(name, rate, "img/s") for name, rate in rates.items()] + [("torch.compile time (one-off)", compile_seconds, "s")]


def inference_accuracy(checkpoint: Path) -> list[tuple[str, float, str]]:
    """Test Dice of a trained checkpoint along the float32, PyTorch and default (OpenVINO) paths; int8 has its
    own command, ``python -m benchmarks.openvino_int8`` (run inside this benchmark, NNCF crashed the process)."""
    rows = []
    source, test_names = held_out_set(config_for())
    for name, options in (("float32 PyTorch", dict(precision="float32", backend="torch")),
                          ("bfloat16 PyTorch", dict(precision="bfloat16", backend="torch")),
                          ("default PyTorch", dict(backend="torch")),
                          ("default backend, float32", dict(precision="float32")),
                          ("default backend, bfloat16", dict(precision="bfloat16")), ("default backend", {})):
        meter = evaluate_source(Predictor(checkpoint, **options), source, test_names)
        rows.append((f"trained model, test Dice, {name}", meter.compute()["dice"], "Dice"))
    reference = rows[0][1]
    rows.append(("trained model: largest test Dice difference from float32 PyTorch (target within 0.002)",
                 max(abs(dice - reference) for _, dice, _ in rows[1:]), "Dice"))
    return rows


def memory_probe() -> None:
    """Cache all of NEU-DET, train 20 steps at 224 px, print this process's peak RSS in MB."""
    config = config_for()
    train_loader, _ = make_loaders(config)
    model = prepare_model(build_model(config.arch, config.encoder, len(config.channels))[0], CPU)
    optimizer = make_optimizer(config.optimizer, model, config.lr, config.weight_decay)
    train_one_epoch(
        model, make_loss(config.loss, config.dice_weight, config.image_loss_weight), optimizer, torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0),
        list(itertools.islice(train_loader, 20)), CPU, autocast_dtype(CPU), torch.amp.GradScaler("cpu", enabled=False),
    )
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def peak_training_memory_mb() -> float:
    """Peak RSS of a fresh process running ``memory_probe``, so nothing else here counts."""
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.speed", "--memory-probe"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def precision_check(precision: str, epochs: int = PRECISION_EPOCHS) -> tuple[float, float]:
    """Final validation Dice and minutes of a short run of the default model in ``precision``.

    The whole one-cycle schedule runs, so both precisions end annealed: three epochs
    on a subset (the first version of this check) ended mid-descent, where bf16 and
    float32 differed by 0.02.
    """
    with tempfile.TemporaryDirectory() as tmp:
        config = replace(TrainConfig(root=ROOT), epochs=epochs, precision=precision, run_name=f"bench_{precision}")
        train, val = make_loaders(config)
        config.root = Path(tmp)  # checkpoints go to a scratch folder
        model, _ = model_for(config)
        started = time.perf_counter()
        history = fit(model, train, val, config)
        return float(history["val_dice"].iloc[-1]), (time.perf_counter() - started) / 60


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    return (f"{cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads, torch {torch.__version__}, "
            f"{platform.python_implementation()} {platform.python_version()}")


def ceiling_rows() -> list[tuple[str, float, str]]:
    return [(f"ceiling: 3x3 conv, {name}", conv_ceiling(dtype) / 1e12, "TFLOP/s")
            for name, dtype in (("bfloat16", torch.bfloat16), ("float32", None))]


def precision_report() -> list[tuple[str, float, str]]:
    """The rows of ``make bench`` about precision (``python -m benchmarks.speed --precision``, a few minutes): the
    convolution ceilings, the measured choice, the default model's training step, inference and prediction end
    to end in float32, bfloat16 and the default, and the trained model's test Dice in each precision."""
    rows = ceiling_rows() + default_model.precision_rows() + default_model.speed_rows() + default_model.prediction_rows()
    return rows + (inference_accuracy(TRAINED) if TRAINED.exists() else [])


def write_report(rows: list[tuple[str, float, str]], name: str, started: float) -> None:
    """Print ``rows`` as a markdown table under a header naming the machine, and write them to ``RESULTS``."""
    table = pd.DataFrame(rows, columns=["measurement", "value", "unit"])
    table["value"] = table["value"].map(lambda v: f"{v:.3f}")
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    header = f"Measured {stamp} on {machine()}; benchmark took {(time.perf_counter() - started) / 60:.1f} min."
    RESULTS.mkdir(parents=True, exist_ok=True)
    table.to_csv(RESULTS / f"{name}.csv", index=False)
    (RESULTS / f"{name}.md").write_text(header + "\n\n" + table.to_markdown(index=False) + "\n")
    print(header)
    print(table.to_markdown(index=False))


def main() -> None:
    config = config_for()
    started = time.perf_counter()
    rows = ceiling_rows()
    bf16, fp32 = (value * 1e12 for _, value, _ in rows)
    fwd = forward_flops(build_model(config.arch, config.encoder, 6)[0].eval())
    rows.append(("forward pass, one 224x224 image", fwd / 1e9, "GFLOP"))

    train_base = baseline_training(config)
    train_default = default_training(config, num_workers=0)
    train_worker = default_training(config, num_workers=1)
    rows += [
        ("training, plain baseline", train_base, "img/s"),
        ("training, default (num_workers=0)", train_default, "img/s"),
        ("training, default with 1 DataLoader worker", train_worker, "img/s"),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        infer = inference_rows(config, Path(tmp))
        rows += infer
        if TRAINED.exists():
            rows += inference_accuracy(TRAINED)
    loader0, loader1 = loader_throughput(config, 0), loader_throughput(config, 1)
    rows += [("DataLoader alone, num_workers=0", loader0, "img/s"), ("DataLoader alone, num_workers=1", loader1, "img/s")]
    rows.append(("peak RSS, NEU-DET cached in RAM, training at 224 px", peak_training_memory_mb(), "MB"))
    default = TrainConfig()
    dice32, minutes32 = precision_check("float32")
    dice_auto, minutes_auto = precision_check("auto")
    rows += [
        (f"short run ({PRECISION_EPOCHS} epochs, default {default.arch}/{default.encoder}, {default.image_size} px): "
         "final val Dice, float32", dice32, "Dice"),
        ("short run: final val Dice, default precision", dice_auto, "Dice"),
        ("short run: minutes, float32", minutes32, "min"),
        ("short run: minutes, default precision", minutes_auto, "min"),
    ]

    best_train = max(train_default, train_worker)
    speeds = {name: value for name, value, unit in infer if unit == "img/s"}
    plain_infer = speeds["inference, plain float32 eager (baseline)"]
    best_infer = max(speeds.values())
    ratios = [
        ("training speed-up over baseline (target >= 3.5)", best_train / train_base, "x"),
        ("training share of bf16 ceiling (3x forward FLOPs)", best_train * 3 * fwd / bf16, "share"),
        ("inference speed-up over baseline, fastest path (target >= 4)", best_infer / plain_infer, "x"),
        ("inference share of bf16 ceiling", best_infer * fwd / bf16, "share"),
        ("DataLoader (workers=0) over training consumption (target >= 5)", loader0 / best_train, "x"),
        ("val Dice difference default - float32 (target within 0.01)", dice_auto - dice32, "Dice"),
    ]
    rows += default_model.precision_rows()
    rows += default_model.speed_rows()
    rows += default_model.prediction_rows()
    rows += default_model.step_breakdown_rows()
    rows += default_model.time_to_quality_rows(default_model.quality_histories(ROOT / "Models"))
    write_report(rows + ratios, "speed", started)


if __name__ == "__main__":
    if "--memory-probe" in sys.argv:
        memory_probe()
    elif "--precision" in sys.argv:
        began = time.perf_counter()
        write_report(precision_report(), "precision", began)
    else:
        main()

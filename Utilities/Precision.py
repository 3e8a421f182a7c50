"""Precision chosen by measurement: the faster of float32 and bfloat16 on this machine, for each purpose.

CPU flags do not tell which is faster: on an Intel Xeon whose flags list
avx512_bf16 but no AMX, bfloat16 convolutions ran at 0.16 TFLOP/s against
float32's 0.25 (docs/speed.md). So the first time a purpose (training,
prediction with PyTorch, prediction with OpenVINO) asks for a precision on a
machine, layers like the models' (an EfficientNet block and a decoder
convolution, ``representative_layers``) run in each candidate, taking turns,
for a second or two, and the faster wins; float32 unless bfloat16 is faster
by ``MARGIN``. The choice is cached in the user cache folder
(``Files.user_cache_dir``) under a key naming the machine (CPU model and
flags, cores, threads, library versions), so nothing is measured again until
one of them changes. ``precision=`` in the config or on the command line
forces a choice instead.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import torch

from Utilities.Fast_layers import for_cpu_training
from Utilities.Files import atomic_write, user_cache_dir

CANDIDATES = ("float32", "bfloat16")
MARGIN = 1.02  # bfloat16 must be this much faster: float32 is the exact one, and rates vary by about 2% between rounds
ROUNDS = 3
BATCH, SIDE, CHANNELS = 2, 48, 32  # the representative layers' input and width: a few seconds for every purpose together


@dataclass(frozen=True)
class Choice:
    """A precision for one purpose, and why: the measured rates (images/s per candidate), or what forced it."""

    purpose: str
    precision: str
    how: str
    rates: dict[str, float] = field(default_factory=dict)

    def describe(self) -> str:
        if not self.rates:
            return f"{self.purpose} in {self.precision} ({self.how})"
        if len(self.rates) == 1:
            return (f"{self.purpose} in {self.precision}, the only candidate that runs differently here "
                    f"({self.rates[self.precision]:.1f}/s on representative layers; {self.how})")
        rates = " against ".join(f"{rate:.1f}/s in {name}" for name, rate in self.rates.items())
        return f"{self.purpose} in {self.precision}, the faster on representative layers ({rates}; {self.how})"


def interleaved_rates(calls: dict[str, Callable[[], object]], images_per_call: int, calls_per_round: int,
                      rounds: int = ROUNDS, warmup: int = 1, clock: Callable[[], float] = time.perf_counter,
                      ) -> dict[str, list[float]]:
    """Images/s of each of ``calls`` in each of ``rounds`` rounds that take turns, after ``warmup`` untimed calls
    each. A machine's speed drifts by 10-30% within minutes; timed one after the other, the drift would land in
    the ratios. Each round starts one call later than the one before, so no call always follows the same one
    (on a 2-core virtual machine the call after a long bf16 one ran up to 14% slower)."""
    for call in calls.values():
        for _ in range(warmup):
            call()
    rates: dict[str, list[float]] = {name: [] for name in calls}
    order = list(calls.items())
    for round_ in range(rounds):
        for name, call in order[round_ % len(order):] + order[: round_ % len(order)]:
            started = clock()
            for _ in range(calls_per_round):
                call()
            rates[name].append(images_per_call * calls_per_round / (clock() - started))
    return rates


def medians(rates: dict[str, list[float]]) -> dict[str, float]:
    return {name: statistics.median(values) for name, values in rates.items()}


def machine_key() -> dict:
    """What the measured choices hold for: a change in any of these measures again."""
    cpu, flags = platform.processor(), ""
    if Path("/proc/cpuinfo").exists():
        lines = (line.split(":", 1) for line in Path("/proc/cpuinfo").read_text().splitlines() if ":" in line)
        info = {key.strip(): value.strip() for key, value in lines}
        cpu = info.get("model name", cpu)
        flags = " ".join(sorted(info.get("flags", "").split()))
    versions = {}
    for library in ("torch", "openvino"):
        try:
            versions[library] = metadata.version(library)
        except metadata.PackageNotFoundError:
            versions[library] = None
    return {"cpu": cpu, "flags": hashlib.sha1(flags.encode()).hexdigest()[:12], "cores": os.cpu_count(),
            "threads": torch.get_num_threads(), **versions}


def cache_file() -> Path:
    return user_cache_dir() / "precision.json"


def _cached_choices() -> dict:
    """The choices measured on this machine as it is now; none when the file is missing, unreadable or another
    machine's (or this one's before an upgrade)."""
    try:
        cached = json.loads(cache_file().read_text())
    except (OSError, ValueError):
        return {}
    return cached.get("choices", {}) if cached.get("machine") == machine_key() else {}


def measured_choice(purpose: str, make_calls: Callable[[], dict[str, Callable[[], object]]], images_per_call: int,
                    calls_per_round: int = 1, clock: Callable[[], float] = time.perf_counter) -> Choice:
    """The cached choice for ``purpose``, or else ``make_calls()``'s candidates (``{precision: call}``; float32
    alone where bfloat16 would run the same) timed in turns, the faster chosen and cached."""
    if cached := _cached_choices().get(purpose):
        return Choice(purpose, cached["precision"], f"measured {cached['date']}, cached in {cache_file()}",
                      cached["rates"])
    rates = medians(interleaved_rates(make_calls(), images_per_call, calls_per_round, clock=clock))
    precision = "bfloat16" if rates.get("bfloat16", 0) > MARGIN * rates["float32"] else "float32"
    choices = _cached_choices() | {purpose: {"precision": precision, "rates": rates,
                                             "date": datetime.date.today().isoformat()}}
    try:
        atomic_write(cache_file(), lambda partial: partial.write_text(
            json.dumps({"machine": machine_key(), "choices": choices}, indent=1)))
    except OSError as problem:  # a read-only home: measured again next time, nothing else lost
        return Choice(purpose, precision, f"measured now, not cached: {problem}", rates)
    return Choice(purpose, precision, f"measured now, cached in {cache_file()}", rates)


def representative_layers() -> torch.nn.Sequential:
    """A stem convolution of RGB images, an EfficientNet-Lite inverted residual block (1x1 expansion, 3x3
    depthwise, 1x1 projection) and a decoder's 3x3 convolution, with BatchNorms: the layer types most of our
    models' time goes to."""
    conv, norm = torch.nn.Conv2d, torch.nn.BatchNorm2d
    wide = 3 * CHANNELS
    return torch.nn.Sequential(
        conv(3, CHANNELS, 3, padding=1, bias=False), norm(CHANNELS), torch.nn.ReLU6(),
        conv(CHANNELS, wide, 1, bias=False), norm(wide), torch.nn.ReLU6(),
        conv(wide, wide, 3, padding=1, groups=wide, bias=False), norm(wide), torch.nn.ReLU6(),
        conv(wide, CHANNELS, 1, bias=False), norm(CHANNELS),
        conv(CHANNELS, 2 * CHANNELS, 3, padding=1, bias=False), norm(2 * CHANNELS), torch.nn.ReLU(),
    ).to(memory_format=torch.channels_last)


def example_input() -> torch.Tensor:
    """A batch of images for ``representative_layers``."""
    generator = torch.Generator().manual_seed(0)
    return torch.randn(BATCH, 3, SIDE, SIDE, generator=generator).contiguous(memory_format=torch.channels_last)


def training_calls() -> dict[str, Callable[[], None]]:
    """A training step (forward and backward) of ``representative_layers`` per candidate, as the Trainer runs it:
    under bf16 autocast with the layers ``Fast_layers`` keeps in float32."""
    images = example_input()

    def step_of(precision: str) -> Callable[[], None]:
        bfloat16 = precision == "bfloat16"
        layers = for_cpu_training(representative_layers().train(), bfloat16=bfloat16)

        def step() -> None:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bfloat16):
                loss = layers(images).float().square().mean()
            loss.backward()

        return step

    return {precision: step_of(precision) for precision in CANDIDATES}


def torch_prediction_calls() -> dict[str, Callable[[], None]]:
    """A forward pass of ``representative_layers`` per candidate, as the PyTorch prediction path runs it: weights
    and inputs in the precision itself (``Fast_inference.optimise_for_inference``)."""

    def forward_of(precision: str) -> Callable[[], None]:
        dtype = getattr(torch, precision)
        layers, images = representative_layers().eval().to(dtype), example_input().to(dtype)
        return torch.inference_mode()(lambda: layers(images))

    return {precision: forward_of(precision) for precision in CANDIDATES}

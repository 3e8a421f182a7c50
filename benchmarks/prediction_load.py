"""Prediction under load, end to end through the command line: folders of 200 and 2,000 images, and very
large images predicted window by window.

Prints a table and writes ``benchmarks/results/prediction_load.md``: img/s and peak resident memory of
``python -m Utilities.Inference`` (each in its own process, memory read with ``wait4``) on copies of
NEU-DET's test images, ``Predictor.predict`` on the same images already in memory and ``predict_folder`` on
their files in the same process (without the process start), and seconds and peak
memory for one 4000x5000 and one 8000x8000 image with a full-resolution U-Net/EfficientNet-Lite2 (random
weights: time and memory do not depend on them).

Usage::

    python -m benchmarks.prediction_load --checkpoint Models/fpn_lite2_best.pth
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import pandas as pd

from Utilities.Checkpoint import save_checkpoint
from Utilities.Config import TrainConfig
from Utilities.Images import read_image
from Utilities.Inference import Predictor
from Utilities.Predict_folder import predict_folder
from Utilities.Resnet_Unet import build_model

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "prediction_load.md"


def run_command(checkpoint: Path, images: Path, out: Path) -> tuple[float, float]:
    """Seconds and peak resident MB of one ``python -m Utilities.Inference`` run."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TQDM_DISABLE": "1"}
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "Utilities.Inference", "--checkpoint", str(checkpoint),
                                "--images", str(images), "--out", str(out)], env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"prediction of {images} failed")
    return time.perf_counter() - started, usage.ru_maxrss / 1024


def folder_of_copies(source: list[Path], count: int, folder: Path) -> Path:
    folder.mkdir()
    for i in range(count):
        shutil.copyfile(source[i % len(source)], folder / f"{i:05d}_{source[i % len(source)].name}")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, default=ROOT / "Models" / f"{TrainConfig.run_name}_best.pth")
    parser.add_argument("--sizes", type=int, nargs="+", default=[200, 2000])
    args = parser.parse_args()
    tests = sorted((ROOT / "Validation_Images").glob("*.jpg"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for count in args.sizes:
            seconds, peak = run_command(args.checkpoint, folder_of_copies(tests, count, tmp / f"in{count}"), tmp / f"out{count}")
            rows += [(f"folder of {count} images, command end to end", count / seconds, "img/s"),
                     (f"folder of {count} images, peak resident memory", peak, "MB")]
        predictor = Predictor(args.checkpoint)
        images = [read_image(p) for p in tests]
        predictor.predict(images[:16])  # warm-up
        started = time.perf_counter()
        for start in range(0, len(images), 16):
            predictor.predict(images[start : start + 16])
        rows.append((f"Predictor.predict, {len(images)} images in memory", len(images) / (time.perf_counter() - started), "img/s"))
        started = time.perf_counter()
        predict_folder(predictor, tests, tmp / "in_process")
        rows.append((f"predict_folder, the same {len(images)} images from their files, in this process",
                     len(images) / (time.perf_counter() - started), "img/s"))

        config = TrainConfig(arch="Unet", binary=True, full_resolution=True, image_size=256)
        model, _ = build_model(config.arch, config.encoder, 1, config.encoder_weights)
        save_checkpoint(tmp / "full_resolution.pth", model.eval(), config, {}, None)
        tile = read_image(next((ROOT.parent / "shared" / "datasets" / "Magnetic-Tile" / "MT_Break" / "Imgs").glob("*.jpg")))
        for height, width in ((4000, 5000), (8000, 8000)):
            folder = tmp / f"large{height}"
            folder.mkdir()
            cv2.imwrite(str(folder / "large.png"), cv2.resize(tile, (width, height)))
            seconds, peak = run_command(tmp / "full_resolution.pth", folder, tmp / f"large_out{height}")
            rows += [(f"one {width}x{height} image, full-resolution U-Net/Lite2, 1024 px windows", seconds, "s"),
                     (f"one {width}x{height} image, peak resident memory", peak, "MB")]
    table = pd.DataFrame(rows, columns=["measurement", "value", "unit"])
    report = (f"Measured {datetime.datetime.now():%Y-%m-%d %H:%M} with {args.checkpoint.name}, "
              f"{os.cpu_count()} cores.\n\n{table.to_markdown(index=False, floatfmt='.1f')}\n")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(report)
    print(report)


if __name__ == "__main__":
    main()

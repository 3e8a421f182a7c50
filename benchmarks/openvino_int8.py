"""OpenVINO int8 for the trained default model (``python -m benchmarks.openvino_int8``): tried, not the default.

NNCF's post-training quantisation of notebook 03's model, calibrated on 48
train images (8 per class), against the default OpenVINO bf16 path: test
Dice and ``Predictor.predict`` img/s. Not the default because it needs
calibration images where the model is converted, and it changes the masks.
ONNX Runtime's int8 (``Onnx_export.quantize_int8``) fails on this FPN: its
quantised top-down Add cannot broadcast.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.default_model import interleaved_rates
from benchmarks.speed import ROOT, TRAINED
from Utilities.Checkpoint import load_checkpoint
from Utilities.Data_Retriever_Seg import split_table
from Utilities.Evaluate import evaluate_source, held_out_set
from Utilities.Fast_inference import convert_for_openvino
from Utilities.Images import read_image
from Utilities.Inference import Predictor
from Utilities.Precision import medians
from Utilities.Resnet_Unet import padded_side


def openvino_int8(checkpoint: Path, calibration: list[np.ndarray]) -> Predictor:
    """The default predictor with its OpenVINO model quantised to int8 by NNCF on ``calibration`` batches."""
    import nncf
    import openvino

    predictor = Predictor(checkpoint, backend="openvino")
    model, _ = load_checkpoint(checkpoint)
    converted = convert_for_openvino(model, padded_side(predictor.config.image_size))
    quantised = nncf.quantize(converted, nncf.Dataset(calibration), subset_size=len(calibration))
    predictor.model.compiled = openvino.Core().compile_model(quantised, "CPU")
    return predictor


def main(checkpoint: Path = TRAINED) -> None:
    default = Predictor(checkpoint, backend="openvino")
    table = split_table(default.config)
    train = table[table["split"] == "train"].groupby("class").sample(n=8, random_state=0)  # every class, 48 images
    paths = [ROOT / "IMAGES" / name for name in train["image"]]
    calibration = [default.preprocess([read_image(p) for p in paths[i : i + 8]]).numpy() for i in range(0, len(paths), 8)]
    images = [read_image(path) for path in paths[:32]]
    source, test_names = held_out_set(default.config)
    predictors = {"OpenVINO bf16 (default)": default,
             "OpenVINO int8 (NNCF, 48 train images)": openvino_int8(checkpoint, calibration)}
    rows = [(f"test Dice, {name}", evaluate_source(predictor, source, test_names).compute()["dice"], "Dice")
            for name, predictor in predictors.items()]
    calls = {name: functools.partial(predictor.predict, images) for name, predictor in predictors.items()}
    rates = medians(interleaved_rates(calls, len(images), calls_per_round=1, warmup=1))
    rows += [(f"Predictor.predict of 32 NEU images, {name}", rate, "img/s") for name, rate in rates.items()]
    print(pd.DataFrame(rows, columns=["measurement", "value", "unit"]).to_markdown(index=False, floatfmt=".4f"))


if __name__ == "__main__":
    main()

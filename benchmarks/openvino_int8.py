"""OpenVINO int8 for the trained default model on NEU-DET's test split (``python -m benchmarks.openvino_int8``).

What ``Utilities.Tune`` decides on val (``Utilities.Int8``: int8 kept only
within 0.002 of the float model's val score, and faster), shown on the test
images for the record: test Dice of the float model (the measured precision)
and of its int8 form (NNCF, calibrated on 64 train images), and
``Predictor.predict`` img/s of both, taking turns. Run alone (NNCF crashed
``make bench``'s process when run inside it).
"""

from __future__ import annotations

import copy
from pathlib import Path

import pandas as pd

from benchmarks.speed import TRAINED
from Utilities import Int8
from Utilities.Checkpoint import load_checkpoint
from Utilities.Evaluate import evaluate_source, held_out_set, split_names
from Utilities.Fast_inference import OpenVinoModel
from Utilities.Images import read_image
from Utilities.Inference import Predictor


def main(checkpoint: Path = TRAINED) -> None:
    default = Predictor(checkpoint, backend="openvino", precision="float32")
    source, test_names = held_out_set(default.config)
    model, _ = load_checkpoint(checkpoint)
    stored = Int8.quantised_model(model, default.input_side, default.preprocess, source,
                                  split_names(default.config, "train"))
    int8 = copy.copy(default)
    int8.model = OpenVinoModel(Int8.compiled_model(stored))
    predictors = {f"OpenVINO {default.precision.precision} (the float model)": default, "OpenVINO int8": int8}
    rows = [(f"test Dice, {name}", evaluate_source(predictor, source, test_names).compute()["dice"], "Dice")
            for name, predictor in predictors.items()]
    images = [read_image(source.sample(name).image) for name in test_names[:32]]
    rates = Int8.prediction_rates(default, int8, images)
    rows += [(f"Predictor.predict of 32 NEU images ({default.setup.describe().split(' (')[0]}), {name}", rate, "img/s")
             for name, rate in zip(predictors, rates)]
    print(pd.DataFrame(rows, columns=["measurement", "value", "unit"]).to_markdown(index=False, floatfmt=".4f"))


if __name__ == "__main__":
    main()

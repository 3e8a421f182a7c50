"""OpenVINO int8 for prediction: offered to ``Utilities.Tune``, kept only where its masks agree with the float ones.

NNCF quantises the OpenVINO model after training, calibrated on up to
``CALIBRATION_IMAGES`` training images. Quantised weights and activations
change the probabilities, so int8 is never assumed: Tune scores the chosen
setup on val with both models, and keeps int8 (``InferenceSetup.precision``)
only when its score is within ``AGREEMENT`` of the float model's and it
predicts faster on this machine. The quantised model is stored in the
checkpoint itself (OpenVINO's IR, a few MB), so what Tune scored is exactly
what ``Predictor``, ``Utilities.Evaluate`` and ``Utilities.Inference`` run.
Models of one input size on a CPU only (the OpenVINO backend).
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import numpy as np

from Utilities.Fast_inference import convert_for_openvino
from Utilities.Formats import DataSource
from Utilities.Images import read_image
from Utilities.Precision import interleaved_rates, medians

AGREEMENT = 0.002  # largest val score int8 may lose against the float model
CALIBRATION_IMAGES = 64


def quantised_model(model, side: int, preprocess, source: DataSource, train_names: list[str]) -> dict[str, bytes]:
    """``model`` (PyTorch, for ``side`` x ``side`` inputs) quantised to int8 by NNCF on up to
    ``CALIBRATION_IMAGES`` training images, evenly spread, as ``preprocess`` prepares them; as OpenVINO IR
    bytes, ``{"xml": ..., "bin": ...}``."""
    import nncf
    import openvino

    picked = train_names[:: max(1, len(train_names) // CALIBRATION_IMAGES)][:CALIBRATION_IMAGES]
    batches = [preprocess([read_image(source.sample(name).image)]).numpy() for name in picked]
    quantised = nncf.quantize(convert_for_openvino(model, side), nncf.Dataset(batches), subset_size=len(batches))
    with tempfile.TemporaryDirectory() as folder:
        openvino.save_model(quantised, Path(folder) / "int8.xml", compress_to_fp16=False)
        return {part: (Path(folder) / f"int8.{part}").read_bytes() for part in ("xml", "bin")}


def compiled_model(stored: dict[str, bytes]):
    """Stored IR bytes compiled for this CPU."""
    import openvino

    core = openvino.Core()
    weights = openvino.Tensor(np.frombuffer(stored["bin"], np.uint8).copy())
    return core.compile_model(core.read_model(model=stored["xml"].decode(), weights=weights), "CPU")


def keeps_int8(float_score: float, int8_score: float, float_rate: float, int8_rate: float) -> bool:
    """Int8 only when it loses at most ``AGREEMENT`` of the val score and is faster."""
    return int8_score >= float_score - AGREEMENT and int8_rate > float_rate


def prediction_rates(float_predictor, int8_predictor, images: list[np.ndarray]) -> tuple[float, float]:
    """Images/s of ``predict`` on ``images`` with the float and the int8 predictor, taking turns."""
    calls = {"float": functools.partial(float_predictor.predict, images),
             "int8": functools.partial(int8_predictor.predict, images)}
    rates = medians(interleaved_rates(calls, len(images), calls_per_round=1))
    return rates["float"], rates["int8"]

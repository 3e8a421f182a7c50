"""Choose the inference setup on val and store it in the checkpoint, as a library and a command.

Usage::

    python -m Utilities.Tune --checkpoint Models/fpn_lite2_best.pth

Everything between probabilities and masks is chosen at once, on the val
split only: flip TTA on or off, the dominant class only on or off (several
classes), and the post-processing (``Utilities.Postprocess``). For the
``area`` score family each channel's threshold, smallest blob and image gate
come from ``choose_postprocessing`` (pooled Dice and image-level detection),
and that candidate competes with the plain threshold on the config's
``monitor`` score; for ``thin`` (cracks) the threshold with the best tolerant
F1 is taken. The best candidate is stored (``Checkpoint.store_inference_setup``);
on a tie the cheaper one wins (no flips before flips, plain before tuned).
For a model OpenVINO runs, the chosen setup is then scored with the model
quantised to int8 (``Utilities.Int8``), kept only if it agrees on val and is
faster. ``Predictor``, ``Utilities.Evaluate`` and ``Utilities.Inference`` then use it.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from Utilities import Int8
from Utilities.Checkpoint import load_checkpoint, store_inference_setup
from Utilities.Cli import checkpoint_command
from Utilities.Config import TrainConfig
from Utilities.Crack_metrics import THRESHOLDS as CRACK_THRESHOLDS
from Utilities.Crack_metrics import TOLERANCE, CrackMeter
from Utilities.Data_Retriever_Seg import source_of
from Utilities.Errors import run_command
from Utilities.Evaluate import predictions, predictor_for, split_names
from Utilities.Fast_inference import OpenVinoModel
from Utilities.Formats import DataSource
from Utilities.Images import read_image
from Utilities.Inference import Predictor
from Utilities.Meter import Meter, score_names
from Utilities.Postprocess import InferenceSetup, PostProcessing, choose_postprocessing, keep_dominant_class


def choose_setup(predictor: Predictor, source: DataSource, names: list[str], flip_tta=(False, True),
                 dominant_class_only=(False, True)) -> tuple[InferenceSetup, pd.DataFrame]:
    """The best inference setup on the named (val) samples, and every candidate's score.

    Holds the val probabilities in memory (float32, as the predictor gives them: thresholds decide exactly as
    they will in evaluation), for one flip choice at a time.

    Args:
        flip_tta, dominant_class_only: the choices to try (the second only for several classes).

    Returns:
        The chosen setup (``chosen_on`` says on what, with its score) and one
        row per candidate: ``flip_tta``, ``dominant_class_only``, ``rule``, the
        setup and ``score``.
    """
    config, channels = predictor.config, len(predictor.classes)
    score_name = _score_name(predictor)
    rows, candidates = [], []
    for flips in flip_tta:
        seen = _probabilities(predictor, source, names, flips)
        for dominant in dominant_class_only if channels > 1 else (False,):
            probabilities = [(keep_dominant_class(p) if dominant else p, t, i) for p, t, i in seen]
            for rule, postprocessing in _postprocessing_candidates(config, probabilities, predictor.classes):
                score = _score(config, postprocessing, probabilities, predictor.classes, score_name)
                candidates.append(InferenceSetup(postprocessing, flips, dominant))
                rows.append({"flip_tta": flips, "dominant_class_only": dominant, "rule": rule,
                             "setup": candidates[-1].describe().split(" (")[0], "score": score})
    table = pd.DataFrame(rows)
    best = int(table["score"].idxmax())  # the first of equals: the cheaper
    chosen = candidates[best]
    chosen = InferenceSetup(chosen.postprocessing, chosen.flip_tta, chosen.dominant_class_only,
                            f"val: {len(names)} images, {score_name} {table.loc[best, 'score']:.4f}")
    predictor.use(chosen)
    return chosen, table


def score_setup(predictor: Predictor, source: DataSource, names: list[str], setup: InferenceSetup) -> float:
    """``setup``'s score on the named (val) samples, as ``choose_setup`` scores its candidates."""
    probabilities = [(keep_dominant_class(p) if setup.dominant_class_only else p, t, i)
                     for p, t, i in _probabilities(predictor, source, names, setup.flip_tta)]
    score = _score(predictor.config, setup.postprocessing, probabilities, predictor.classes, _score_name(predictor))
    predictor.use(setup)
    return score


def try_int8(checkpoint: str | Path, predictor: Predictor, source: DataSource, config: TrainConfig,
             chosen: InferenceSetup, float_score: float) -> tuple[InferenceSetup, dict | None, str]:
    """``chosen`` with the OpenVINO int8 model (``Utilities.Int8``) where it keeps the val score within
    ``Int8.AGREEMENT`` and predicts faster, else ``chosen`` as it is; the int8 model to store (or ``None``) and
    a line saying what was measured."""
    model, _ = load_checkpoint(checkpoint)  # the plain float module: the predictor's own may be converted or compiled
    stored = Int8.quantised_model(model, predictor.input_side, predictor.preprocess, source, split_names(config, "train"))
    int8 = copy.copy(predictor)
    int8.model = OpenVinoModel(Int8.compiled_model(stored))
    names = split_names(config, "val")
    int8_score = score_setup(int8, source, names, chosen)
    images = [read_image(source.sample(name).image) for name in names[:32]]
    float_rate, int8_rate = Int8.prediction_rates(predictor, int8, images)
    kept = Int8.keeps_int8(float_score, int8_score, float_rate, int8_rate)
    check = (f"int8 {_score_name(predictor)} {int8_score:.4f} against {float_score:.4f} "
             f"({predictor.precision.precision}), {int8_rate:.1f} against {float_rate:.1f} img/s")
    return (replace(chosen, precision="int8"), stored, check) if kept else (chosen, None, check)


def _score_name(predictor: Predictor) -> str:
    config = predictor.config
    if config.scores == "thin":
        return "tolerant F1"
    return config.monitor if config.monitor in score_names(predictor.classes) else "dice"  # loss, or a renamed score


def _probabilities(predictor: Predictor, source: DataSource, names: list[str], flips: bool) -> list[tuple]:
    """Each named sample's ``(probabilities, truth, image probabilities)`` as numpy arrays, with or without flips."""
    predictor.use(InferenceSetup(PostProcessing.neutral(len(predictor.classes), predictor.config.threshold),
                                 flip_tta=flips))
    return [(p[0].numpy(), t[0].numpy().astype(np.uint8), image) for _, p, t, image in predictions(predictor, source, names)]


def _postprocessing_candidates(config, probabilities, classes) -> list[tuple[str, PostProcessing]]:
    """The plain threshold and the post-processing chosen per channel (area), or every crack threshold (thin)."""
    if config.scores == "thin":
        return [(f"threshold {t:g}", PostProcessing((float(t),))) for t in CRACK_THRESHOLDS]
    chosen, _ = choose_postprocessing(probabilities, classes)
    return [("plain", PostProcessing.neutral(len(classes), config.threshold)), ("tuned", chosen)]


def _score(config, postprocessing: PostProcessing, probabilities, classes, score_name: str) -> float:
    """The candidate's val score: tolerant crack F1 (thin), or the config's monitor of the Meter (area)."""
    if config.scores == "thin":
        meter = CrackMeter(TOLERANCE, postprocessing.threshold)
        for p, t, _ in probabilities:
            meter.update(p[0], t[0])
        return float(meter.table()["f1"].iloc[0])
    meter, setup = Meter(classes, config.threshold), InferenceSetup(postprocessing)
    for p, t, i in probabilities:
        meter.update(torch.from_numpy(p)[None], torch.from_numpy(t)[None], torch.from_numpy(setup.masks(p, i))[None])
    return float(meter.compute()[score_name])


def main() -> None:
    parser = checkpoint_command(
        "Choose the inference setup on val (flip TTA, dominant class, thresholds, smallest blob, image gate) and "
        "store it in the checkpoint; Evaluate, Inference and Predictor then use it.",
        "Exit status: 0 stored, 2 bad arguments or data. Next: python -m Utilities.Evaluate --checkpoint M",
        "a Models/<run>_best.pth (rewritten in place)")
    parser.add_argument("--flip-tta", choices=("auto", "on", "off"), default="auto", help="auto: try both and keep "
                        "the better on val; on/off: fix it (default: auto)")
    parser.add_argument("--dominant-class", choices=("auto", "on", "off"), default="auto", help="the same for "
                        "keeping only the class with the largest predicted area (default: auto)")
    parser.add_argument("--int8", choices=("try", "off"), default="try", help="try: quantise the model to OpenVINO "
                        f"int8 on training images and keep it when its val score is within {Int8.AGREEMENT} of the "
                        "float model's and it predicts faster (models of one input size on a CPU); off: never "
                        "(default: try)")
    args = parser.parse_args()
    options = {"auto": (False, True), "on": (True,), "off": (False,)}
    predictor, config = predictor_for(args.checkpoint, args.root)
    source = source_of(config)
    chosen, table = choose_setup(predictor, source, split_names(config, "val"), options[args.flip_tta],
                                 options[args.dominant_class])
    with pd.option_context("display.width", 200, "display.max_colwidth", 120):
        print(table.to_string(float_format="%.4f", index=False))
    int8_model, check = None, None
    if args.int8 == "try" and predictor.backend == "openvino":
        chosen, int8_model, check = try_int8(args.checkpoint, predictor, source, config, chosen, table["score"].max())
        print(f"{check}: {'kept' if int8_model else 'not kept'} (int8 needs a val score within {Int8.AGREEMENT} "
              "and more speed)")
    store_inference_setup(args.checkpoint, chosen, int8_model, check)
    print(f"stored in {args.checkpoint}: {chosen.describe()}")


if __name__ == "__main__":
    run_command(main)

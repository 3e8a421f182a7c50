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
``Predictor``, ``Utilities.Evaluate`` and ``Utilities.Inference`` then use it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from Utilities.Checkpoint import store_inference_setup
from Utilities.Cli import checkpoint_command
from Utilities.Crack_metrics import THRESHOLDS as CRACK_THRESHOLDS
from Utilities.Crack_metrics import TOLERANCE, CrackMeter
from Utilities.Data_Retriever_Seg import source_of
from Utilities.Errors import run_command
from Utilities.Evaluate import predictions, predictor_for, split_names
from Utilities.Formats import DataSource
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
    score_name = "tolerant F1" if config.scores == "thin" else (
        config.monitor if config.monitor in score_names(predictor.classes) else "dice")  # loss, or a renamed score
    rows, candidates = [], []
    for flips in flip_tta:
        predictor.use(InferenceSetup(PostProcessing.neutral(channels, config.threshold), flip_tta=flips))
        seen = [(p[0].numpy(), t[0].numpy().astype(np.uint8), image)
                for _, p, t, image in predictions(predictor, source, names)]
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
    args = parser.parse_args()
    options = {"auto": (False, True), "on": (True,), "off": (False,)}
    predictor, config = predictor_for(args.checkpoint, args.root)
    chosen, table = choose_setup(predictor, source_of(config), split_names(config, "val"), options[args.flip_tta],
                                 options[args.dominant_class])
    store_inference_setup(args.checkpoint, chosen)
    with pd.option_context("display.width", 200, "display.max_colwidth", 120):
        print(table.to_string(float_format="%.4f", index=False))
    print(f"stored in {args.checkpoint}: {chosen.describe()}")


if __name__ == "__main__":
    run_command(main)

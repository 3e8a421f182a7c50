"""The inference setup chosen on val (Utilities.Tune): what it stores is what evaluation and prediction then run."""

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
from test_training import tiny_run

from Utilities.Checkpoint import read_checkpoint, store_inference_setup
from Utilities.Data_Retriever_Seg import source_of
from Utilities.Evaluate import evaluate_source, score_split, split_names
from Utilities.Inference import Predictor
from Utilities.Postprocess import DOMINANT_THRESHOLD, InferenceSetup, PostProcessing, keep_dominant_class
from Utilities.Predict_folder import predict_folder
from Utilities.Trainer import fit
from Utilities.Tune import choose_setup


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny NEU-like model, trained two epochs: six classes, a split with val and test."""
    from conftest import make_neu_like

    root = make_neu_like(tmp_path_factory.mktemp("tune") / "project", per_class=4)
    model, train_loader, val_loader, config, used = tiny_run(root, epochs=2)
    fit(model, train_loader, val_loader, config, used)
    return root / "Models" / "tiny_best.pth", config


def test_the_stored_setup_scores_on_val_exactly_what_tuning_reported(trained):
    checkpoint, config = trained
    predictor = Predictor(checkpoint, backend="torch")
    chosen, candidates = choose_setup(predictor, source_of(config), split_names(config, "val"))
    assert set(candidates["flip_tta"]) == {False, True} and set(candidates["dominant_class_only"]) == {False, True}
    assert set(candidates["rule"]) == {"plain", "tuned"} and len(candidates) == 8
    best = candidates.loc[candidates["score"].idxmax()]
    assert (chosen.flip_tta, chosen.dominant_class_only) == (best["flip_tta"], best["dominant_class_only"])
    store_inference_setup(checkpoint, chosen)
    assert InferenceSetup.from_dict(read_checkpoint(checkpoint)["inference_setup"]) == chosen
    again = Predictor(checkpoint, backend="torch")  # reads the stored setup
    assert again.setup == chosen
    rescored = evaluate_source(again, source_of(config), split_names(config, "val")).compute()[config.monitor]
    assert rescored == pytest.approx(best["score"], abs=1e-6)
    overridden = Predictor(checkpoint, backend="torch", flip_tta=not chosen.flip_tta, threshold=0.3)
    assert overridden.setup.flip_tta != chosen.flip_tta and set(overridden.postprocessing.threshold) == {0.3}


def test_a_tie_keeps_the_cheaper_setup(trained, monkeypatch):
    checkpoint, config = trained
    predictor = Predictor(checkpoint, backend="torch")
    # every probability 0.5: the flips change nothing, so flip TTA ties with one pass on every candidate
    monkeypatch.setattr(predictor, "_logits", lambda batch: torch.zeros(len(batch), 6, *batch.shape[2:]))
    chosen, candidates = choose_setup(predictor, source_of(config), split_names(config, "val"))
    by_flips = candidates.pivot_table(index=["dominant_class_only", "rule"], columns="flip_tta", values="score")
    assert (by_flips[False] == by_flips[True]).all()
    assert not chosen.flip_tta  # the tie went to the cheaper candidate
    first_best = candidates.loc[candidates["score"] == candidates["score"].max()].iloc[0]
    assert (chosen.dominant_class_only, chosen.flip_tta) == (first_best["dominant_class_only"], first_best["flip_tta"])


def test_the_dominant_class_is_decided_at_a_fixed_threshold_before_the_class_thresholds():
    probabilities = np.zeros((3, 4, 4), np.float32)
    probabilities[0, :1] = 0.9  # 4 pixels over 0.5
    probabilities[1, :2] = DOMINANT_THRESHOLD  # 8 pixels at 0.5: the dominant class
    probabilities[2] = 0.4  # 16 pixels, none over 0.5
    kept = keep_dominant_class(probabilities)
    assert kept[1].sum() == probabilities[1].sum() and not kept[0].any() and not kept[2].any()


def test_per_image_scores_of_evaluate_are_those_of_the_masks_the_folder_prediction_writes(trained, tmp_path):
    checkpoint, config = trained
    predictor = Predictor(checkpoint, backend="torch")
    predictor.use(InferenceSetup(PostProcessing((0.2,) * 6, {"min_area": (8,) * 6}), flip_tta=True))  # classes overlap
    source, names = source_of(config), split_names(config, "test")
    summary, per_image = score_split(predictor, source, names)
    assert list(summary.index)[-1] == "overall" and len(per_image) == len(names)
    predict_folder(predictor, [source.sample(n).image for n in names], tmp_path)
    for row in per_image.itertuples():
        labels = cv2.imread(str(tmp_path / f"{row.image.rsplit('.', 1)[0]}_mask.png"), cv2.IMREAD_UNCHANGED)
        truth = source.mask(source.sample(row.image), *labels.shape)
        written = (labels[None] == np.arange(1, 7)[:, None, None])  # the label map: one class per pixel
        overlap, total = (written & (truth > 0)).sum(), written.sum() + truth.sum()
        assert row.dice == pytest.approx(2 * overlap / total if total else 1.0, abs=1e-4), row.image
    assert per_image["true_pixels"].sum() == sum(source.mask(source.sample(n), 48, 48).sum() for n in names)


def test_an_older_checkpoints_post_processing_alone_still_predicts(trained, tmp_path):
    checkpoint, _ = trained
    old = read_checkpoint(checkpoint)
    old.pop("inference_setup", None)
    old["postprocessing"] = PostProcessing((0.7,) * 6).to_dict()
    torch.save(old, tmp_path / "old.pth")
    predictor = Predictor(tmp_path / "old.pth", backend="torch")
    assert predictor.postprocessing.threshold == (0.7,) * 6 and not predictor.setup.flip_tta
    assert pd.notna(predictor.setup.describe())


@pytest.mark.parametrize("int8_score, int8_rate, kept", [(0.799, 2.0, True), (0.797, 2.0, False), (0.81, 0.5, False)])
def test_int8_needs_the_val_score_within_the_agreement_and_more_speed(int8_score, int8_rate, kept):
    from Utilities.Int8 import keeps_int8

    assert keeps_int8(0.8, int8_score, 1.0, int8_rate) is kept


@pytest.mark.parametrize("agrees", [True, False])
def test_int8_kept_by_tuning_is_what_prediction_then_runs(trained, tmp_path, monkeypatch, agrees):
    """The int8 model Tune scored is stored in the checkpoint and run by a Predictor reading it, with the same val
    score; not kept, nothing of it stays."""
    import shutil

    from Utilities import Int8
    from Utilities.Tune import score_setup, try_int8

    pytest.importorskip("nncf")
    checkpoint, config = trained
    copy = shutil.copy(checkpoint, tmp_path / "tiny_best.pth")
    source, val = source_of(config), split_names(config, "val")
    predictor = Predictor(copy, backend="openvino")
    chosen, table = choose_setup(predictor, source, val, (False,), (False,))
    monkeypatch.setattr(Int8, "keeps_int8", lambda *scores: agrees)
    setup, model, check = try_int8(copy, predictor, source, config, chosen, table["score"].max())
    store_inference_setup(copy, setup, model, check)
    again = Predictor(copy)
    if not agrees:
        assert model is None and again.precision.precision != "int8" and "int8_model" not in read_checkpoint(copy)
        return
    assert setup.precision == "int8" and again.setup == setup and again.precision.precision == "int8"
    assert "int8" in again.setup.describe() and check in again.precision.describe()
    int8_score = float(check.split()[2])
    assert score_setup(again, source, val, again.setup) == pytest.approx(int8_score, abs=5e-5)
    for other in (Predictor(copy, precision="float32"), Predictor(copy, backend="torch")):  # the float model runs
        assert other.precision.precision != "int8" and other.setup.precision == "auto"
        assert "int8" not in other.setup.describe()

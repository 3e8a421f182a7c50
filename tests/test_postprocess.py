"""Post-processing (Utilities.Postprocess): the steps, the choice on val, and their use from the checkpoint."""

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from Utilities.Checkpoint import save_checkpoint, store_inference_setup
from Utilities.Config import TrainConfig
from Utilities.Inference import Predictor
from Utilities.Postprocess import (
    STEPS,
    InferenceSetup,
    PostProcessing,
    choose_postprocessing,
    dominant_class,
    drop_small_blobs,
    gate_by_image_probability,
    plain_and_chosen,
)
from Utilities.Predict_folder import predict_folder
from Utilities.Resnet_Unet import build_model


def blobs() -> np.ndarray:
    """A 3-pixel blob (diagonal: one blob under 8-connectivity) and a 3x3 one."""
    mask = np.zeros((8, 8), np.uint8)
    mask[0, 0] = mask[1, 1] = mask[2, 2] = 1
    mask[4:7, 4:7] = 1
    return mask


def test_small_blobs_are_dropped_by_their_8_connected_area():
    mask = blobs()
    probabilities = mask.astype(np.float32)
    np.testing.assert_array_equal(drop_small_blobs(mask, probabilities, 1.0, 4), np.pad(np.ones((3, 3)), ((4, 1), (4, 1))))
    np.testing.assert_array_equal(drop_small_blobs(mask, probabilities, 1.0, 3), mask)
    assert not drop_small_blobs(mask, probabilities, 1.0, 10).any()


def test_image_gate_empties_the_mask_of_an_image_judged_free_of_the_defect():
    mask, probabilities = blobs(), blobs() * 0.9
    np.testing.assert_array_equal(gate_by_image_probability(mask, probabilities, 0.9, 0.9), mask)
    assert not gate_by_image_probability(mask, probabilities, 0.9, 0.95).any()
    chosen = PostProcessing((0.5,), {"min_image_probability": (0.95,)})
    assert not chosen.channel_mask(probabilities, 0).any()  # no image head: the peak, 0.9, decides
    np.testing.assert_array_equal(chosen.channel_mask(probabilities, 0, image_probability=0.97), mask)


@pytest.mark.parametrize("name", list(STEPS))
def test_each_step_changes_nothing_at_its_neutral_value_which_is_always_a_candidate(name):
    step = STEPS[name]
    rng = np.random.default_rng(0)
    probabilities = rng.random((32, 32)).astype(np.float32)
    mask = (probabilities > 0.5).astype(np.uint8)
    np.testing.assert_array_equal(step.apply(mask, probabilities, 0.0, step.neutral), mask)
    assert step.neutral in step.grid


def test_masks_apply_threshold_and_steps_per_channel():
    probabilities = np.stack([blobs() * 0.7, blobs() * 0.99]).astype(np.float32)
    chosen = PostProcessing((0.5, 0.5), {"min_area": (0, 5), "min_image_probability": (0.8, 0.0)})
    masks = chosen.masks(probabilities)
    assert not masks[0].any()  # channel 0 never reaches its peak of 0.8
    assert masks[1].sum() == 9  # channel 1 keeps only the 3x3 blob
    assert PostProcessing.from_dict(chosen.to_dict()) == chosen
    np.testing.assert_array_equal(chosen.with_threshold(0.995).masks(probabilities), 0)


def test_dominant_class_keeps_the_class_with_most_pixels_over_threshold_per_image():
    counts = np.array([[3, 9, 9, 0], [0, 0, 0, 0], [1, 0, 0, 5], [2, 2, 0, 0]])
    peaks = np.array([[0.9, 0.6, 0.6, 0.2], [0.1, 0.4, 0.3, 0.2], [1.0, 0.1, 0.1, 0.8], [0.7, 0.9, 0.1, 0.1]])
    # most pixels wins; a tie in pixels goes to the higher peak, also when nothing reaches the threshold; the
    # very same (count, peak) goes to the first class
    expected = np.array([[0, 1, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1], [0, 1, 0, 0]], np.float32)
    np.testing.assert_array_equal(dominant_class(counts, peaks), expected)
    assert dominant_class(counts, peaks).dtype == np.float32  # multiplies float32 probabilities without promoting them
    np.testing.assert_array_equal(dominant_class(counts[2], peaks[2]), expected[2])  # one image, as Large_images has


def test_bad_post_processing_is_refused_with_the_known_names():
    with pytest.raises(KeyError, match="min_area"):
        PostProcessing((0.5,), {"closing": (3,)})
    with pytest.raises(ValueError, match="one value per channel"):
        PostProcessing((0.5, 0.5), {"min_area": (3,)})


def speckled_val_set(count: int = 12) -> list[tuple[np.ndarray, np.ndarray]]:
    """Defective images with a confident 6x6 defect, defect-free ones with 2-pixel speckles at 0.85."""
    rng = np.random.default_rng(1)
    predictions = []
    for index in range(count):
        probabilities, truth = np.full((1, 24, 24), 0.05, np.float32), np.zeros((1, 24, 24), np.uint8)
        y, x = rng.integers(0, 16, 2)
        if index % 2:
            truth[0, y : y + 6, x : x + 6] = 1
            probabilities[0, y : y + 6, x : x + 6] = 0.99
        else:
            probabilities[0, y, x : x + 2] = 0.85
        predictions.append((probabilities, truth, None))
    return predictions


def test_choice_on_val_removes_speckle_and_flags_only_defective_images():
    chosen, table = choose_postprocessing(speckled_val_set(), ("defect",))
    masks = [chosen.masks(p) for p, _, _ in speckled_val_set()]
    assert all(np.array_equal(m, t) for m, (_, t, _) in zip(masks, speckled_val_set()))
    best = table.loc[table["score"].idxmax()]
    assert (best["dice"], best["detection"]) == (1.0, 1.0)
    rows = plain_and_chosen(table)
    neutral = rows.loc[("defect", "plain")]
    assert neutral["detection"] == 0.5 and neutral["dice"] < 1  # speckle flags every defect-free image
    assert (neutral["min_area"], neutral["min_image_probability"]) == (0, 0)
    assert rows.loc[("defect", "chosen"), "score"] == 1.0


@pytest.fixture
def one_channel_checkpoint(tmp_path):
    torch.manual_seed(0)
    config = TrainConfig(image_size=64, data_format="magnetic_tile", binary=True, encoder="resnet18",
                         encoder_weights=None, full_resolution=True)
    model, _ = build_model(config.arch, config.encoder, 1, output_prior=0.5)
    path = tmp_path / "model.pth"
    save_checkpoint(path, model.eval(), config, {}, None, epoch=1)
    return path


def test_predictor_and_folder_prediction_use_the_checkpoints_post_processing(one_channel_checkpoint, tmp_path):
    images = tmp_path / "in"
    images.mkdir()
    rng = np.random.default_rng(2)
    for index in range(3):
        cv2.imwrite(str(images / f"{index}.png"), rng.integers(0, 255, (64, 96, 3), dtype=np.uint8))
    plain = predict_folder(Predictor(one_channel_checkpoint, threshold=0.0), images, tmp_path / "plain")
    assert (plain["defect"] == 1).all() and (plain["area_defect"] == 64 * 96).all()

    peak = float(plain["max_probability_defect"].max())
    store_inference_setup(one_channel_checkpoint, InferenceSetup(PostProcessing((0.0,), {"min_image_probability": (peak + 0.01,)})))
    predictor = Predictor(one_channel_checkpoint)
    assert predictor.postprocessing.steps == {"min_image_probability": (pytest.approx(peak + 0.01),)}
    gated = predict_folder(predictor, images, tmp_path / "gated")
    assert (gated["defect"] == 0).all() and (gated["area_defect"] == 0).all()
    pd.testing.assert_series_equal(gated["max_probability_defect"], plain["max_probability_defect"])

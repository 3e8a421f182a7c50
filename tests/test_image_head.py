"""The image head (TrainConfig.image_head): a classifier beside the masks that decides "defect present"."""

import numpy as np
import torch
from test_training import tiny_run

from Utilities.Architectures import split_image_logits
from Utilities.Checkpoint import store_inference_setup
from Utilities.Inference import Predictor
from Utilities.Losses import make_loss
from Utilities.Postprocess import InferenceSetup, PostProcessing
from Utilities.Resnet_Unet import build_model, model_for
from Utilities.Trainer import fit


def test_image_logits_ride_along_as_constant_channels():
    model, _ = build_model("Unet", "resnet18", classes=3, image_head=True)
    outputs = model.eval()(torch.randn(2, 3, 64, 96))
    assert outputs.shape == (2, 6, 64, 96)
    masks, image = split_image_logits(outputs, 3)
    assert masks.shape == (2, 3, 64, 96) and image.shape == (2, 3)
    assert torch.equal(outputs[:, 3:].amin(dim=(2, 3)), image)  # constant over the image
    plain, _ = build_model("Unet", "resnet18", classes=3)
    assert split_image_logits(plain.eval()(torch.randn(1, 3, 64, 64)), 3)[1] is None


def test_the_loss_adds_the_image_term_only_for_a_model_with_a_head():
    targets = torch.zeros(2, 1, 8, 8)
    targets[0, 0, 2:4, 2:4] = 1  # image 0 has a defect, image 1 none
    logits = 8 * (2 * targets - 1)
    loss = make_loss("bce_dice")
    right = torch.cat([logits, torch.tensor([8.0, -8.0]).view(2, 1, 1, 1).expand_as(logits)], 1)
    wrong = torch.cat([logits, torch.tensor([-8.0, 8.0]).view(2, 1, 1, 1).expand_as(logits)], 1)
    assert loss(right, targets) < loss(logits, targets) + 0.01 < loss(wrong, targets)


def test_a_model_with_a_head_trains_and_its_probability_decides_in_the_predictor(neu_like):
    _, train_loader, val_loader, config, _ = tiny_run(neu_like, epochs=1, run_name="head", image_head=True,
                                                      arch="Unet", encoder="resnet18", encoder_weights=None)
    model, used = model_for(config)
    history = fit(model, train_loader, val_loader, config, used)
    assert len(history) == 1 and np.isfinite(history["train_loss"]).all()
    checkpoint = neu_like / "Models" / "head_best.pth"
    image = np.full((48, 48, 3), 120, np.uint8)
    probabilities, image_probabilities = Predictor(checkpoint, precision="float32").predict_with_image([image])[0]
    assert probabilities.shape == (6, 48, 48) and image_probabilities.shape == (6,)
    assert not np.allclose(image_probabilities, probabilities.max(axis=(1, 2)))  # from the head, not the peak

    store_inference_setup(checkpoint, InferenceSetup(PostProcessing((0.0,) * 6, {"min_image_probability": tuple(
        float(p) + 1e-3 for p in image_probabilities)})))
    assert not Predictor(checkpoint, precision="float32").masks(probabilities, image_probabilities).any()
    store_inference_setup(checkpoint, InferenceSetup(PostProcessing((0.0,) * 6, {"min_image_probability": tuple(
        float(p) - 1e-3 for p in image_probabilities)})))
    kept = Predictor(checkpoint, precision="float32").masks(probabilities, image_probabilities)
    assert (kept.sum(axis=0) == 1).all()  # every class kept everywhere; each pixel goes to its most probable one
    np.testing.assert_array_equal(kept.argmax(axis=0), probabilities.argmax(axis=0))

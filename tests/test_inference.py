import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from Utilities.Checkpoint import load_checkpoint, save_checkpoint
from Utilities.Config import TrainConfig
from Utilities.Evaluate import evaluate_source
from Utilities.Fast_inference import fold_batch_norm
from Utilities.Formats import VocSource
from Utilities.Inference import Predictor
from Utilities.Onnx_export import export_onnx, onnx_config, onnx_predict, onnx_session
from Utilities.Postprocess import label_map
from Utilities.Predict_folder import predict_folder
from Utilities.Resnet_Unet import build_model, model_for


@pytest.fixture
def checkpoint(tmp_path):
    torch.manual_seed(0)
    config = TrainConfig(image_size=64)
    model, _ = build_model(config.arch, config.encoder, len(config.classes))
    path = tmp_path / "model.pth"
    save_checkpoint(path, model.eval(), config, {"val_dice": 0.5}, None, epoch=1)
    return path


def test_label_map_picks_the_most_probable_of_the_classes_predicted():
    probs = np.array([[[0.9, 0.2, 0.9]], [[0.6, 0.3, 0.6]]], dtype=np.float32)  # (C=2, H=1, W=3)
    masks = np.array([[[1, 0, 0]], [[1, 0, 1]]], dtype=np.uint8)  # at the last pixel post-processing kept class 2 only
    np.testing.assert_array_equal(label_map(masks, probs), [[1, 0, 2]])


@pytest.mark.parametrize("arch", ["Unet", "FPN"])  # FPN as a whole cannot be traced by torch.fx
def test_batch_norm_is_folded_without_changing_outputs(arch):
    model, _ = build_model(arch, "resnet34", classes=6)
    for module in model.modules():  # BatchNorm statistics that folding must carry over
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = model.eval()(images)
        folded = fold_batch_norm(model)
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
        torch.testing.assert_close(folded(images), expected, atol=1e-4, rtol=1e-4)


def test_predictions_come_back_at_each_image_size(checkpoint):
    predictor = Predictor(checkpoint)
    images = [np.zeros((50, 70, 3), np.uint8), np.full((200, 200, 3), 128, np.uint8)]
    probs = predictor.predict(images)
    assert [p.shape for p in probs] == [(6, 50, 70), (6, 200, 200)]
    assert all(((p >= 0) & (p <= 1)).all() for p in probs)


def test_folder_prediction_and_evaluation(checkpoint, neu_like, tmp_path):
    predictor = Predictor(checkpoint)
    report = predict_folder(predictor, neu_like / "IMAGES", tmp_path / "out", batch_size=5)
    assert len(report) == 24 and (report["status"] == "ok").all()
    first = Path(report["file"][0]).stem
    mask = cv2.imread(str(tmp_path / "out" / f"{first}_mask.png"), cv2.IMREAD_UNCHANGED)
    assert mask.shape == (48, 48) and mask.max() <= 6
    assert (tmp_path / "out" / f"{first}_overlay.jpg").exists()
    scores = evaluate_source(predictor, VocSource(neu_like), limit=7).compute()
    assert 0 <= scores["dice"] <= 1 and len(scores) > 10
    elsewhere = tmp_path / "other" / "xml"  # annotations need not sit beside the images
    shutil.copytree(neu_like / "ANNOTATIONS", elsewhere)
    moved = evaluate_source(predictor, VocSource(tmp_path, images=neu_like / "IMAGES", annotations=elsewhere,
                                                 held_out=None), limit=7).compute()
    assert (moved["images"], moved["dice"], moved["iou"]) == (7, scores["dice"], scores["iou"])


@pytest.mark.parametrize("backend", ["torch", "openvino"])
def test_fast_paths_agree_with_float32(checkpoint, neu_like, backend):
    images = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in sorted((neu_like / "IMAGES").glob("*.jpg"))[:4]]
    predictor = Predictor(checkpoint, backend=backend)
    if backend == "torch":
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in predictor.model.modules())  # folded into convs
    fast = np.stack(predictor.predict(images))
    exact = np.stack(Predictor(checkpoint, precision="float32", backend="torch").predict(images))
    assert np.abs(fast - exact).max() < 0.1
    assert ((fast > 0.5) == (exact > 0.5)).mean() > 0.98


def test_openvino_takes_any_size_and_the_image_head(tmp_path):
    """Converted once, the OpenVINO model predicts whole images of other sizes than its example, and windows."""
    config = TrainConfig(image_size=64, full_resolution=True, binary=True, arch="Unet", encoder="resnet18",
                         encoder_weights=None, image_head=True)
    model, _ = build_model(config.arch, config.encoder, 1, None, seed=3, image_head=True)
    save_checkpoint(tmp_path / "head.pth", model.eval(), config, {}, None)
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 255, (90, 150, 3), dtype=np.uint8), rng.integers(0, 255, (300, 200, 3), dtype=np.uint8)]
    for tile_size in (1024, 128):  # whole images, then windows of 128 px
        exact = Predictor(tmp_path / "head.pth", precision="float32", backend="torch", tile_size=tile_size)
        fast = Predictor(tmp_path / "head.pth", precision="float32", backend="openvino", tile_size=tile_size)
        assert fast.backend == "openvino"
        for (ours, our_image), (theirs, their_image) in zip(fast.predict_with_image(images), exact.predict_with_image(images)):
            assert ours.shape == theirs.shape and np.abs(ours - theirs).max() < 1e-3
            np.testing.assert_allclose(our_image, their_image, atol=1e-3)


def test_openvino_of_a_fixed_size_model_is_converted_for_its_padded_side(tmp_path):
    """A 72 px model sees 96 px inputs (padded to a multiple of 32); OpenVINO is converted for that side only."""
    config = TrainConfig(image_size=72, arch="FPN", encoder="resnet18", encoder_weights=None)
    model, _ = model_for(config)
    save_checkpoint(tmp_path / "fpn.pth", model.eval(), config, {}, None)
    images = [np.random.default_rng(k).integers(0, 255, (100 + 30 * k, 90, 3), dtype=np.uint8) for k in range(3)]
    fast = Predictor(tmp_path / "fpn.pth", precision="float32", backend="openvino")
    exact = Predictor(tmp_path / "fpn.pth", precision="float32", backend="torch")
    assert [str(i.partial_shape) for i in fast.model.compiled.inputs] == ["[?,3,96,96]"]
    for ours, theirs in zip(fast.predict(images), exact.predict(images)):
        assert ours.shape == theirs.shape and np.abs(ours - theirs).max() < 1e-3


def test_backends_are_checked():
    from Utilities.Fast_inference import choose_backend

    assert choose_backend("auto", torch.device("cpu")) == "openvino"  # installed with requirements.txt
    assert choose_backend("auto", torch.device("cpu"), full_resolution=True) == "torch"
    assert choose_backend("openvino", torch.device("cpu"), full_resolution=True) == "openvino"
    assert choose_backend("auto", torch.device("cuda")) == "torch"
    with pytest.raises(ValueError, match="known: auto, openvino, torch"):
        choose_backend("tensorrt", torch.device("cpu"))
    with pytest.raises(ValueError, match="runs on the CPU"):
        choose_backend("openvino", torch.device("cuda"))


def test_command_line(checkpoint, neu_like, tmp_path):
    out = tmp_path / "cli"
    result = subprocess.run(
        [sys.executable, "-m", "Utilities.Inference", "--checkpoint", str(checkpoint),
         "--images", str(neu_like / "IMAGES" / "crazing_1.jpg"), "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert (out / "crazing_1_mask.png").exists() and (out / "crazing_1_overlay.jpg").exists()


def test_onnx_runtime_matches_pytorch_float32(checkpoint, neu_like, tmp_path):
    onnx_path = export_onnx(checkpoint, tmp_path / "model.onnx")
    assert onnx_config(onnx_path).image_size == 64  # the preprocessing travels with the file
    model, _ = load_checkpoint(checkpoint)  # the plain float32 PyTorch model
    images = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in sorted((neu_like / "IMAGES").glob("*.jpg"))[:6]]
    batch = Predictor(checkpoint).preprocess(images)
    with torch.inference_mode():
        expected = torch.sigmoid(model(batch)).numpy()
    got = onnx_predict(onnx_session(onnx_path), batch)
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() < 1e-3
    assert ((got > 0.5) == (expected > 0.5)).mean() >= 0.999


def test_full_resolution_prediction_pads_for_the_network_and_crops_back(tmp_path):
    from Utilities.Resnet_Unet import pad_to_multiple

    torch.manual_seed(0)
    config = TrainConfig(image_size=32, full_resolution=True, binary=True)
    model, _ = build_model(config.arch, config.encoder, 1)
    save_checkpoint(tmp_path / "full.pth", model.eval(), config, {"val_dice": 0.5}, None, epoch=1)
    predictor = Predictor(tmp_path / "full.pth", precision="float32")
    image = np.random.default_rng(0).integers(0, 255, (45, 70, 3), dtype=np.uint8)  # 45x70: padded to 64x96
    probabilities = predictor.predict([image])[0]
    batch = predictor.preprocess([image])
    assert probabilities.shape == (1, 45, 70) and tuple(batch.shape[-2:]) == (45, 70)
    with torch.inference_mode():
        expected = torch.sigmoid(predictor.model(pad_to_multiple(batch)))[0, :, :45, :70].numpy()
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)


def test_a_compiled_predictor_agrees_with_the_eager_one_for_any_batch(checkpoint):
    """The compiled model always runs COMPILED_BATCH images: smaller and larger batches are padded and split."""
    from Utilities.Inference import COMPILED_BATCH

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (56, 72, 3), dtype=np.uint8) for _ in range(COMPILED_BATCH + 5)]
    eager = Predictor(checkpoint, backend="torch").predict(images)
    compiled = Predictor(checkpoint, backend="torch").compile()
    for batch in (images[:3], images):
        for ours, theirs in zip(compiled.predict(batch), eager):
            assert ours.shape == theirs.shape == (6, 56, 72)
            assert np.abs(ours - theirs).max() < 0.05 and ((ours >= 0.5) == (theirs >= 0.5)).mean() > 0.999


def test_a_full_resolution_model_is_not_compiled(tmp_path):
    config = TrainConfig(image_size=64, full_resolution=True)
    model, _ = build_model(config.arch, config.encoder, len(config.classes))
    save_checkpoint(tmp_path / "full.pth", model.eval(), config, {}, None)
    with pytest.raises(ValueError, match="one input size"):
        Predictor(tmp_path / "full.pth").compile()


def test_flip_tta_averages_the_probabilities_of_the_image_and_its_two_flips(checkpoint):
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (64, 64, 3), dtype=np.uint8) for _ in range(2)]  # the model's size: no resizing
    predictor = Predictor(checkpoint, precision="float32", backend="torch", flip_tta=True)
    model = load_checkpoint(checkpoint)[0].eval()
    batch = predictor.preprocess(images)
    with torch.no_grad():
        expected = sum(torch.sigmoid(model(batch.flip(dims)).flip(dims)) for dims in ((), (3,), (2,))) / 3
    ours = np.stack(predictor.predict(images))
    np.testing.assert_allclose(ours, expected.numpy(), atol=1e-4)
    plain = np.stack(Predictor(checkpoint, precision="float32", backend="torch").predict(images))
    assert np.abs(ours - plain).max() > 1e-3  # the flips change the result, so the comparison above means something

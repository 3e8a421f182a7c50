"""Images above the tile size: windows blended as MONAI blends them, and files streamed in bounded memory with the
same outputs as the in-memory prediction."""


import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from tests.test_predict_folder import ROOT, make_checkpoint, noise
from Utilities import Large_images
from Utilities.Checkpoint import store_inference_setup
from Utilities.Images import read_image
from Utilities.Inference import Predictor
from Utilities.Large_images import RowReader, open_rgb
from Utilities.Postprocess import InferenceSetup, PostProcessing, label_map
from Utilities.Predict_folder import REPORT, predict_folder
from Utilities.Sliding_window import GRID, window_rows, window_starts


def window_dependent(pixels: np.ndarray) -> np.ndarray:
    """Probabilities that depend on the whole window (its mean), so that the blending matters."""
    x = pixels.astype(np.float32).transpose(2, 0, 1) / 255
    return np.stack([x[0] * (0.5 + x.mean()), x[1] * x[2] * x.std()])


@pytest.mark.parametrize("height, width", [(704, 992), (320, 1088)])
def test_window_rows_blend_as_monai_does(height, width):
    from monai.inferers import sliding_window_inference

    image = noise(height, width, 0)
    tops = []

    def rows(top, bottom):
        tops.append(top)
        return image[top:bottom]

    blocks = list(window_rows(window_dependent, rows, height, width, 256, 0.25))
    ours = np.concatenate([block for _, block in blocks], axis=1)
    assert [top for top, _ in blocks] == sorted({top for top, _ in blocks}) and tops == sorted(tops)
    theirs = sliding_window_inference(
        torch.from_numpy(image).permute(2, 0, 1)[None].float(), (256, 256), 1, overlap=0.25, mode="gaussian",
        predictor=lambda batch: torch.from_numpy(window_dependent(batch[0].permute(1, 2, 0).numpy().astype(np.uint8)))[None],
    )[0].numpy()
    assert ours.shape == theirs.shape == (2, height, width)
    np.testing.assert_allclose(ours, theirs, atol=2e-3)


@pytest.mark.parametrize("height, width, window", [(650, 1000, 256), (33, 700, 64), (1000, 20, 128)])
def test_window_rows_cover_every_pixel_of_any_size(height, width, window):
    """With a pixel-wise prediction the blend is the prediction itself, whatever the sizes and the window."""
    image = noise(height, width, 1)
    blocks = window_rows(lambda p: p.transpose(2, 0, 1).astype(np.float32), lambda a, b: image[a:b],
                         height, width, window, 0.25)
    np.testing.assert_allclose(np.concatenate([b for _, b in blocks], axis=1), image.transpose(2, 0, 1), rtol=1e-5)


def test_window_starts_lie_on_the_grid_and_cover_the_side():
    for length, window in [(1024, 1024), (5024, 1024), (1184, 256), (320, 64)]:
        starts = window_starts(length, window, 0.25)
        assert all(s % GRID == 0 for s in starts) and starts[0] == 0 and starts[-1] == length - window
        assert all(b - a <= window for a, b in zip(starts, starts[1:]))


@pytest.mark.parametrize("kind", ["rgb", "grey", "sixteen_bit", "alpha"])
def test_open_rgb_decodes_as_read_image(tmp_path, kind):
    pixels = noise(90, 70, 2)
    image = {"rgb": pixels, "grey": pixels[..., 0], "sixteen_bit": pixels.astype(np.uint16) * 257,
             "alpha": np.dstack([pixels, pixels[..., :1]])}[kind]
    cv2.imwrite(str(tmp_path / "image.png"), image)
    np.testing.assert_array_equal(open_rgb(tmp_path / "image.png").numpy(), read_image(tmp_path / "image.png"))


def test_row_reader_serves_overlapping_rows_in_order(tmp_path, monkeypatch):
    monkeypatch.setattr(Large_images, "CHUNK", 16)  # reads end on multiples of 16 rows: several per request
    image = noise(100, 30, 3)
    cv2.imwrite(str(tmp_path / "image.png"), image)
    reader = RowReader(open_rgb(tmp_path / "image.png"))
    for top, bottom in [(0, 40), (24, 64), (24, 50), (48, 88), (90, 100)]:
        np.testing.assert_array_equal(reader(top, bottom), cv2.cvtColor(image[top:bottom], cv2.COLOR_BGR2RGB))


def test_a_large_file_is_streamed_to_the_outputs_of_the_in_memory_prediction(tmp_path, monkeypatch):
    """Post-processing with a smallest blob (needs rows of context around each band: bands of 16 rows here, so
    that many blobs cross one) and the dominant class."""
    monkeypatch.setattr(Large_images, "BAND", 16)
    checkpoint = make_checkpoint(tmp_path / "model.pth", full_resolution=True, arch="Unet", encoder="resnet18",
                                 encoder_weights=None)
    channels = len(Predictor(checkpoint).classes)
    store_inference_setup(checkpoint, InferenceSetup(PostProcessing((0.5,) * channels, {"min_area": (64,) * channels,
                                                                         "min_image_probability": (0.0,) * channels})))
    folder = tmp_path / "in"
    folder.mkdir()
    tile = ROOT.parent / "shared" / "datasets" / "Magnetic-Tile" / "MT_Break" / "Imgs" / "exp1_num_116934.jpg"
    image = cv2.resize(read_image(tile), (700, 1300))
    cv2.imwrite(str(folder / "large.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(folder / "small.png"), image[:100, :120])
    (folder / "truncated.png").write_bytes((folder / "large.png").read_bytes()[:200_000])

    predictor = Predictor(checkpoint, tile_size=256, dominant_class_only=True)
    report = predict_folder(predictor, folder, tmp_path / "out").set_index("file")
    probabilities, image_probabilities = predictor.predict_with_image([image])[0]
    masks = predictor.masks(probabilities, image_probabilities)
    expected = label_map(masks, probabilities)
    assert 0 < np.count_nonzero(expected) < expected.size  # something for the smallest-blob step to judge
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "out" / "large_mask.png"), cv2.IMREAD_UNCHANGED), expected)
    row = report.loc[str(folder / "large.png")]
    assert (row["height"], row["width"], row["defect"]) == (1300, 700, 1)
    assert [row[f"area_{name}"] for name in predictor.classes] == [int((expected == k + 1).sum()) for k in range(channels)]
    np.testing.assert_allclose([row[f"max_probability_{name}"] for name in predictor.classes],
                               probabilities.max(axis=(1, 2)), atol=1e-4)  # 0 for the classes dominance dropped
    overlay = cv2.imread(str(tmp_path / "out" / "large_overlay.jpg"))
    assert overlay.shape == (1300, 700, 3)
    assert report.loc[str(folder / "small.png"), "status"] == "ok"
    assert report.loc[str(folder / "truncated.png"), "status"] == "failed"
    assert "read error" in report.loc[str(folder / "truncated.png"), "reason"]
    assert not list((tmp_path / "out").glob(".*"))  # no scratch file left
    assert list(pd.read_csv(tmp_path / "out" / REPORT)["status"]) == ["ok", "ok", "failed"]

"""Folder prediction as a production line runs it: bad files skipped and named, kills resumed."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from Utilities.Checkpoint import save_checkpoint
from Utilities.Config import TrainConfig
from Utilities.Inference import Predictor
from Utilities.Predict_folder import EXIT_SOME_FAILED, REPORT, predict_folder
from Utilities.Resnet_Unet import build_model

ROOT = Path(__file__).resolve().parents[1]


def make_checkpoint(path: Path, full_resolution: bool = False, **settings) -> Path:
    config = TrainConfig(image_size=64, full_resolution=full_resolution, **settings)
    model, _ = build_model(config.arch, config.encoder, len(config.channels), seed=1)
    save_checkpoint(path, model.eval(), config, {"val_dice": 0.5}, None, epoch=1)
    return path


def noise(height: int, width: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)


def mixed_folder(folder: Path) -> dict[str, str]:
    """Broken files beside valid but unusual ones; returns the expected reason for each broken file."""
    folder.mkdir()
    cv2.imwrite(str(folder / "good.jpg"), noise(48, 56, 0))
    (folder / "notes.jpg").write_text("not an image")
    cv2.imwrite(str(folder / "whole.jpg"), noise(120, 120, 1))
    (folder / "truncated.jpg").write_bytes((folder / "whole.jpg").read_bytes()[:3000])
    (folder / "whole.jpg").unlink()
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "png_named.jpg").write_bytes(cv2.imencode(".png", noise(40, 40, 2))[1].tobytes())
    cv2.imwrite(str(folder / "sixteen_bit.png"), (noise(40, 48, 3)[..., 0].astype(np.uint16) * 257))
    cv2.imwrite(str(folder / "grey.png"), noise(36, 36, 4)[..., 0])
    cv2.imwrite(str(folder / "tiny.png"), noise(20, 24, 5))
    return {"notes.jpg": "not an image OpenCV can decode", "truncated.jpg": "truncated JPEG (no end-of-image marker)",
            "empty.jpg": "empty file"}


@pytest.mark.parametrize("full_resolution", [False, True], ids=["resized", "whole-image"])
def test_every_valid_image_is_predicted_and_every_broken_one_named(tmp_path, full_resolution):
    broken = mixed_folder(tmp_path / "in")
    predictor = Predictor(make_checkpoint(tmp_path / "model.pth", full_resolution))
    report = predict_folder(predictor, tmp_path / "in", tmp_path / "out", batch_size=3)
    saved = pd.read_csv(tmp_path / "out" / REPORT)
    assert len(report) == 8 and list(saved["file"]) == list(report["file"]) == sorted(report["file"])
    assert list(saved["status"]) == list(report["status"])
    by_name = {Path(f).name: row for f, row in zip(report["file"], report.to_dict("records"))}
    for name, reason in broken.items():
        assert by_name[name]["status"] == "failed" and by_name[name]["reason"] == reason
        assert not (tmp_path / "out" / f"{Path(name).stem}_mask.png").exists()
    for name in set(by_name) - set(broken):
        mask = cv2.imread(str(tmp_path / "out" / f"{Path(name).stem}_mask.png"), cv2.IMREAD_UNCHANGED)
        assert by_name[name]["status"] == "ok" and mask.shape == (by_name[name]["height"], by_name[name]["width"])
        assert 0 <= by_name[name]["max_probability_crazing"] <= 1 and by_name[name]["area_crazing"] == (mask == 1).sum()
    assert (by_name["tiny.png"]["height"], by_name["tiny.png"]["width"]) == (20, 24)


def run_command(checkpoint: Path, images: Path, out: Path, wait: bool = True) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "Utilities.Inference", "--checkpoint", str(checkpoint),
                                "--images", str(images), "--out", str(out), "--batch-size", "1"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if wait:
        process.wait(timeout=300)
    return process


def test_exit_status_says_whether_anything_failed(tmp_path):
    mixed_folder(tmp_path / "in")
    checkpoint = make_checkpoint(tmp_path / "model.pth")
    failed = run_command(checkpoint, tmp_path / "in", tmp_path / "out")
    assert failed.returncode == EXIT_SOME_FAILED and "notes.jpg: not an image" in failed.stdout.read()
    for name in ("notes.jpg", "truncated.jpg", "empty.jpg"):
        (tmp_path / "in" / name).unlink()
    assert run_command(checkpoint, tmp_path / "in", tmp_path / "out2").returncode == 0


def test_a_killed_run_resumes_to_the_outputs_of_an_uninterrupted_one(tmp_path):
    images = tmp_path / "in"
    images.mkdir()
    for i in range(40):
        cv2.imwrite(str(images / f"{i:02d}.png"), noise(320, 320, i))
    checkpoint = make_checkpoint(tmp_path / "model.pth", full_resolution=True)  # whole 320 px images: slow enough
    run_command(checkpoint, images, tmp_path / "straight")

    process = run_command(checkpoint, images, tmp_path / "resumed", wait=False)
    deadline = time.monotonic() + 120
    while len(list((tmp_path / "resumed").glob("*_mask.png"))) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done_before = len(list((tmp_path / "resumed").glob("*_mask.png")))
    assert 3 <= done_before < 40, "the kill should land mid-folder"
    resumed = run_command(checkpoint, images, tmp_path / "resumed")
    assert resumed.returncode == 0

    def files_in(folder):
        return sorted(p.relative_to(folder) for p in folder.rglob("*") if p.is_file())

    straight_files = files_in(tmp_path / "straight")
    assert files_in(tmp_path / "resumed") == straight_files
    assert len(straight_files) == 122  # 40 masks, 40 overlays, 40 thumbnails, the report, the review page
    for name in straight_files:
        if name.name != REPORT:
            assert (tmp_path / "resumed" / name).read_bytes() == (tmp_path / "straight" / name).read_bytes(), name
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "resumed" / REPORT), pd.read_csv(tmp_path / "straight" / REPORT))


def test_overwrite_predicts_again(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), noise(40, 40, 0))
    predictor = Predictor(make_checkpoint(tmp_path / "model.pth"))
    predict_folder(predictor, folder, tmp_path / "out")
    mask = tmp_path / "out" / "a_mask.png"
    stamp = mask.stat().st_mtime_ns
    predict_folder(predictor, folder, tmp_path / "out")
    assert mask.stat().st_mtime_ns == stamp  # done: skipped
    time.sleep(0.01)
    predict_folder(predictor, folder, tmp_path / "out", overwrite=True)
    assert mask.stat().st_mtime_ns != stamp
    shutil.rmtree(tmp_path / "out")


def test_windows_and_whole_image_agree_on_a_real_magnetic_tile(tmp_path):
    """A full-resolution model predicts an image above ``tile_size`` window by window (blended), else whole.

    U-Net/ResNet18, whose receptive field fits in a 256 px window: the agreement checks the tiling itself
    (windows on the image's stride-32 grid, blending, cropping). Models that see farther need larger windows
    (the default is 1024): U-Net/EfficientNet-Lite2 with ImageNet encoder weights and a random decoder agreed
    on 91% of pixels with 384 px windows here, and FPN's GroupNorm normalises over whatever extent it is given.
    """
    from Utilities.Images import read_image

    tile = read_image(ROOT.parent / "shared" / "datasets" / "Magnetic-Tile" / "MT_Break" / "Imgs" / "exp1_num_116934.jpg")
    image = cv2.resize(tile, None, fx=2, fy=2)  # 494x1184: several windows each way
    checkpoint = make_checkpoint(tmp_path / "model.pth", full_resolution=True, arch="Unet", encoder="resnet18",
                                 encoder_weights=None, binary=True)
    whole = Predictor(checkpoint).predict([image])[0]
    windows = Predictor(checkpoint, tile_size=256).predict([image])[0]
    assert windows.shape == whole.shape == (1, *image.shape[:2])
    assert ((windows >= 0.5) == (whole >= 0.5)).mean() >= 0.995
    assert np.abs(windows - whole).mean() < 0.02
    with pytest.raises(ValueError, match="multiple of 32"):
        Predictor(checkpoint, tile_size=100)

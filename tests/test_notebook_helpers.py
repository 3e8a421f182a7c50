"""What every notebook's first cells call: the set-up, quick mode's settings."""

import os

import pytest

from Utilities.Config import TrainConfig, quick_run
from Utilities.Notebook import setup_notebook


@pytest.mark.parametrize("quick", [False, True])
def test_setup_finds_the_project_folder_and_quick_mode(tmp_path, monkeypatch, capsys, quick):
    (tmp_path / "notebooks").mkdir()
    monkeypatch.setenv("SEG_QUICK", "1" if quick else "0")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    for folder in (tmp_path / "notebooks", tmp_path):  # run from notebooks/ or from the project folder
        monkeypatch.chdir(folder)
        assert setup_notebook() == (tmp_path, quick)
        assert capsys.readouterr().out == ("quick mode\n" if quick else "full run\n")
    assert os.environ["HF_HUB_OFFLINE"] == "1"


def test_importing_utilities_turns_off_albumentations_update_check():
    import subprocess
    import sys

    environment = {k: v for k, v in os.environ.items() if k != "NO_ALBUMENTATIONS_UPDATE"}
    done = subprocess.run([sys.executable, "-c", "import os, Utilities; print(os.environ['NO_ALBUMENTATIONS_UPDATE'])"],
                          env=environment, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "1"


def test_quick_mode_settings_go_through_the_constructor():
    full = TrainConfig.from_recipe("magnetic_tile")
    quick = quick_run(full, 64, 32)
    assert (full.run_name, full.epochs, full.image_size, full.max_train_images) == ("mt_unet_lite0_head", 24, 256, None)
    assert (quick.run_name, quick.epochs, quick.image_size) == ("mt_unet_lite0_head_quick", 1, 64)  # never a full run's
    assert quick.image_head and quick.full_resolution  # the recipe's other settings stay
    assert (quick.max_train_images, quick.max_val_images) == (64, 32)


def test_the_split_file_defaults_to_the_data_set_it_belongs_to():
    assert TrainConfig().split_file == "splits/NEU-DET.csv"  # NEU-DET sits in the project folder itself
    assert TrainConfig(data_format="magnetic_tile", data_root="data/Magnetic-Tile").split_file == "splits/Magnetic-Tile.csv"
    assert TrainConfig(data_format="folders", data_root="data/Tiles", split_file="splits/mine.csv").split_file == "splits/mine.csv"

"""The own-data path from the command line, as a user runs it: split, train, tune, evaluate, predict.

Each command runs as a subprocess on a tiny crack data set generated in the
``<split>/`` + ``<split>_lab/`` layout with JPEG masks, as public crack data
sets circulate; the masks ``Utilities.Inference`` writes must score exactly
what ``Utilities.Evaluate`` reported.
"""

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from Utilities.Checkpoint import read_checkpoint
from Utilities.Crack_metrics import TOLERANCE, CrackMeter
from Utilities.Formats import open_source
from Utilities.Sample_data import write_sample_cracks
from Utilities.Validation_split import names_in

REPOSITORY = Path(__file__).resolve().parents[1]


def command(project: Path, module: str, *args: str, expect: int = 0) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(REPOSITORY), "TQDM_DISABLE": "1", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-m", f"Utilities.{module}", *args], cwd=project, env=environment,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == expect, f"{module} {args}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


DATA = ("--data-format", "folders", "--data-root", "data/cracks")
TINY = ("--encoder", "tu-tf_efficientnet_lite0", "--encoder-weights", "none", "--epochs", "2", "--image-size", "32",
        "--batch-size", "4", "--run-name", "cracks")


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    project = tmp_path_factory.mktemp("own")
    write_sample_cracks(project / "data" / "cracks")
    return project


def test_mistakes_end_with_the_message_and_the_command_that_fixes_them_not_a_traceback(project):
    missing = command(project, "Train", "--recipe", "thin_structures", *DATA, *TINY, expect=2)
    assert "python -m Utilities.Validation_split --data-format folders --data-root data/cracks" in missing.stderr
    assert "Traceback" not in missing.stderr
    unknown = command(project, "Train", "--loss", "bce_dicee", expect=2)
    assert "unknown loss 'bce_dicee'; known: bce_dice" in unknown.stderr and "Traceback" not in unknown.stderr
    no_model = command(project, "Evaluate", "--checkpoint", "Models/none.pth", expect=2)
    assert "Models/none.pth: checkpoint not found" in no_model.stderr and "Traceback" not in no_model.stderr


def test_five_commands_take_own_folders_to_scored_and_predicted_masks(project):
    split = command(project, "Validation_split", *DATA)
    assert "the data set's own split" in split.stdout and "JPEG" in split.stdout  # the lossy masks are named
    table = pd.read_csv(project / "splits" / "cracks.csv")
    assert table["split"].value_counts().to_dict() == {"train": 8, "val": 4, "test": 4}
    assert set(names_in(table, "val")) == {f"valid/valid{k}.jpg" for k in range(4)}
    assert command(project, "Validation_split", *DATA, expect=2).stderr.startswith("error: ")  # written once

    command(project, "Train", "--recipe", "thin_structures", *DATA, *TINY)
    checkpoint = project / "Models" / "cracks_best.pth"
    config = read_checkpoint(checkpoint)["config"]
    assert (config["recipe"], config["scores"], config["full_resolution"], config["epochs"]) == ("thin_structures", "thin", True, 2)

    tuned = command(project, "Tune", "--checkpoint", str(checkpoint))
    stored = read_checkpoint(checkpoint)["inference_setup"]
    assert stored["chosen_on"].startswith("val: 4 images, tolerant F1") and "stored in" in tuned.stdout

    scored = command(project, "Evaluate", "--checkpoint", str(checkpoint), "--split", "test")
    assert stored["chosen_on"] in scored.stdout
    per_image = pd.read_csv(project / "Models" / "cracks_test_images.csv").set_index("image")
    summary = pd.read_csv(project / "Models" / "cracks_test_summary.csv")
    assert len(per_image) == 4 and {"f1", "strict_f1", "strict_iou"} <= set(summary.columns)

    command(project, "Inference", "--checkpoint", str(checkpoint), "--images", "data/cracks/test", "--out", "predicted")
    source = open_source("folders", project / "data" / "cracks")
    total = CrackMeter(TOLERANCE, (0.5,))
    for name, row in per_image.iterrows():
        written = cv2.imread(str(project / "predicted" / f"{Path(name).stem}_mask.png"), cv2.IMREAD_UNCHANGED)
        truth = source.mask(source.sample(name), *written.shape)[0]
        meter = CrackMeter(TOLERANCE, (0.5,))
        for each in (meter, total):
            each.update(written.astype(np.float32), truth)
        assert meter.table().iloc[0][["precision", "recall", "f1", "strict_f1"]].round(4).tolist() == \
            row[["precision", "recall", "f1", "strict_f1"]].round(4).tolist(), name
    assert total.table().iloc[0]["f1"].round(4) == summary["f1"].round(4).iloc[0]  # pooled over the images


def test_every_training_option_explains_itself_and_lists_its_valid_names(project):
    from Utilities.Architectures import DECODER_ATTENTIONS
    from Utilities.Config import TrainConfig
    from Utilities.Formats import FORMATS
    from Utilities.Losses import LOSSES
    from Utilities.Optim import OPTIMIZERS, SCHEDULERS
    from Utilities.Recipes import RECIPES
    from Utilities.Train import command_line

    helps = {action.dest: action.help for action in command_line()._actions}
    for name in (*TrainConfig.settings("option"), "recipe", "resume", "root"):
        assert len(helps[name].split()) >= 5, f"--{name} is not explained: {helps[name]!r}"
    listed = {"data_format": FORMATS, "loss": LOSSES, "optimizer": OPTIMIZERS, "scheduler": SCHEDULERS,
              "recipe": RECIPES, "arch": ("Unet", "FPN", "DeepLabV3Plus"), "monitor": ("mean_dice", "dice_<class>", "loss"),
              "scores": ("area", "thin"), "encoder": ("tu-tf_efficientnet_lite0",), "precision": ("float32", "bfloat16"),
              "decoder_attention": DECODER_ATTENTIONS}
    for name, names in listed.items():
        missing = [known for known in names if known not in helps[name]]
        assert not missing, f"--{name}'s help does not list {missing}"
    text = command(project, "Train", "--help").stdout
    assert all(f"  {name}  " in text for name in RECIPES)  # each recipe with its description

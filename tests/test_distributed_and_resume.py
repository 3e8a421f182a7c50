"""Real processes: a run killed with SIGKILL and resumed, and a 2-process torchrun run on Gloo."""

import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch

from Utilities.Checkpoint import load_checkpoint, read_checkpoint
from Utilities.Config import TrainConfig
from Utilities.Data_Retriever_Seg import make_loaders
from Utilities.Trainer import evaluate
from Utilities.Validation_split import all_image_names, make_split

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
COMMON = ["--image-size", "32", "--batch-size", "4", "--lr", "0.003", "--precision", "float32"]


@pytest.fixture
def project(neu_like):
    split = make_split(all_image_names(neu_like), test_per_class=1, val_per_class=1, seed=0)
    (neu_like / "splits").mkdir()
    split.to_csv(neu_like / "splits" / "NEU-DET.csv", index=False)
    return neu_like


def train_command(root, *args):
    return [sys.executable, "-m", "Utilities.Train", "--root", str(root), *COMMON, *args]


def test_sigkill_then_resume_matches_a_straight_run(project):
    subprocess.run(train_command(project, "--epochs", "3", "--run-name", "straight"), env=ENV, check=True, timeout=600)

    history = project / "Models" / "killed_history.csv"
    process = subprocess.Popen(train_command(project, "--epochs", "3", "--run-name", "killed"), env=ENV)
    deadline = time.time() + 600
    while not (history.exists() and len(pd.read_csv(history)) >= 1) and time.time() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    last = project / "Models" / "killed_last.pth"
    finished = len(read_checkpoint(last)["history"])
    assert 1 <= finished < 3, "the kill should land mid-run"

    subprocess.run(train_command(project, "--epochs", "3", "--run-name", "killed", "--resume", str(last)),
                   env=ENV, check=True, timeout=600)
    straight = pd.read_csv(project / "Models" / "straight_history.csv")
    resumed = pd.read_csv(history)
    columns = ["epoch", "train_loss", "val_loss", "val_dice", "val_iou", "lr"]
    # float32 on the CPU with one thread is deterministic: the match is exact
    pd.testing.assert_frame_equal(resumed[columns], straight[columns], check_exact=True)
    straight_weights = read_checkpoint(project / "Models" / "straight_last.pth")["state_dict"]
    resumed_weights = read_checkpoint(last)["state_dict"]
    for name, tensor in straight_weights.items():
        assert torch.equal(resumed_weights[name], tensor), name


def test_torchrun_two_processes_on_gloo(project):
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master-port=29531",
               "-m", "Utilities.Train", "--root", str(project), *COMMON, "--epochs", "1", "--run-name", "ddp"]
    result = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("best epoch") == 1  # only rank 0 reports
    saved = read_checkpoint(project / "Models" / "ddp_best.pth")

    # one process over the same val images with the same weights gives the same Dice
    model, _ = load_checkpoint(project / "Models" / "ddp_best.pth")
    config = TrainConfig(root=project, image_size=32, batch_size=4)
    _, val_loader = make_loaders(config)
    single = evaluate(model.to(memory_format=torch.channels_last), val_loader, torch.device("cpu"), config.classes)
    assert saved["metrics"]["val_images"] == single["images"] == 6  # each val image scored exactly once
    assert saved["metrics"]["val_dice"] == pytest.approx(single["dice"], abs=1e-4)
    assert len(pd.read_csv(project / "Models" / "ddp_history.csv")) == 1

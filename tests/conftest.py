"""Shared fixtures: tiny NEU-DET style data sets made on the fly."""

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from Utilities.Extract_masks import NEU_DET_CLASSES

torch.set_num_threads(2)


def pytest_configure(config):
    """No network in tests: the hub client reads this when first imported, which the test modules do later."""
    os.environ["HF_HUB_OFFLINE"] = "1"


def write_voc_xml(path: Path, filename: str, width: int, height: int, boxes: list[tuple]) -> None:
    """Write a NEU-DET style XML; ``boxes`` are ``(name, xmin, ymin, xmax, ymax)``."""
    objects = "".join(
        f"<object><name>{n}</name><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>"
        for n, x0, y0, x1, y1 in boxes
    )
    path.write_text(
        f"<annotation><filename>{filename}</filename><size><width>{width}</width><height>{height}</height>"
        f"<depth>1</depth></size>{objects}</annotation>"
    )


def make_neu_like(root: Path, per_class: int = 4, size: int = 48, seed: int = 0) -> Path:
    """``root/IMAGES`` and ``root/ANNOTATIONS`` with ``per_class`` images of each NEU-DET class.

    Each image is noise with a bright box where its annotation says the defect is,
    so a model can learn something in a few steps.
    """
    rng = np.random.default_rng(seed)
    (root / "IMAGES").mkdir(parents=True, exist_ok=True)
    (root / "ANNOTATIONS").mkdir(parents=True, exist_ok=True)
    for name in NEU_DET_CLASSES:
        for i in range(1, per_class + 1):
            x0, y0 = rng.integers(1, size // 2, size=2)
            x1, y1 = x0 + rng.integers(4, size // 2), y0 + rng.integers(4, size // 2)
            image = rng.integers(0, 80, size=(size, size), dtype=np.uint8)
            image[y0 - 1 : y1, x0 - 1 : x1] = 220
            cv2.imwrite(str(root / "IMAGES" / f"{name}_{i}.jpg"), cv2.merge([image] * 3))
            write_voc_xml(root / "ANNOTATIONS" / f"{name}_{i}.xml", f"{name}_{i}.jpg", size, size, [(name, x0, y0, x1, y1)])
    return root


@pytest.fixture
def neu_like(tmp_path) -> Path:
    return make_neu_like(tmp_path / "project")

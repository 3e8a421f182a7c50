"""Parsers of the annotation files some formats come with: CrackForest's ``.mat`` and Berkeley ``.seg``
region maps (and which of their regions are cracks), Severstal's run-length CSV (and its submission CSV). Each
names the file when it cannot be read."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import scipy.io

from Utilities.Errors import MissingFile
from Utilities.Rle import mask_to_rle


def read_mat_segmentation(path: Path) -> np.ndarray:
    """The ``Segmentation`` array of a CFD ``.mat`` (a struct, or a cell holding one)."""
    try:
        truth = scipy.io.loadmat(path, squeeze_me=True, struct_as_record=False)["groundTruth"]
        while isinstance(truth, np.ndarray) and truth.dtype == object:  # a cell array of structs
            truth = truth.flat[0]
        return np.asarray(truth.Segmentation).astype(np.int64)
    except (ValueError, KeyError, AttributeError, OSError, TypeError, IndexError, NotImplementedError,
            scipy.io.matlab.MatReadError) as error:  # NotImplementedError: MATLAB v7.3 (HDF5) files
        raise ValueError(f"{path.name}: not a CrackForest ground truth ({error})") from error


def crack_regions(segmentation: np.ndarray) -> np.ndarray:
    """The crack pixels of a CrackForest region map. Region 1 is the background and region 2 the drawn crack;
    a further region is either another drawn crack, which borders the background, or pavement that a closed crack
    loop cut off from the background, which borders the crack all round (CFD 093, 097 and 101 hold islands of
    24,000-45,000 px). A region is a crack where at least half the pixels just outside it are background."""
    crack = segmentation == 2
    ring = np.ones((3, 3), np.uint8)
    for region in np.unique(segmentation[segmentation > 2]):
        inside = segmentation == region
        outside = segmentation[cv2.dilate(inside.astype(np.uint8), ring).astype(bool) & ~inside]
        if outside.size and (outside == 1).mean() >= 0.5:
            crack |= inside
    return crack


def read_seg_file(path: Path) -> np.ndarray:
    """Region ids of a Berkeley ``.seg`` text file (``width``/``height`` header, then ``data`` rows of
    ``region row first_column last_column``); pixels no row covers are -1."""
    try:
        lines = path.read_text().splitlines()
        data = lines.index("data")
        header = dict(line.split(maxsplit=1) for line in lines[:data] if " " in line)
        segmentation = np.full((int(header["height"]), int(header["width"])), -1, np.int64)
        rows = np.array([line.split() for line in lines[data + 1 :] if line.strip()], dtype=np.int64).reshape(-1, 4)
        for region, row, first, last in rows:
            segmentation[row, first : last + 1] = region
        return segmentation
    except (OSError, UnicodeDecodeError, ValueError, KeyError, IndexError) as error:
        raise ValueError(f"{path.name}: not a Berkeley .seg file ({error})") from error


def read_severstal_csv(path: str | Path) -> pd.DataFrame:
    """A Severstal ``train.csv`` in either column style as ``ImageId, ClassId, EncodedPixels``."""
    path = Path(path)
    if not path.exists():
        raise MissingFile(f"{path}: Severstal train.csv not found")
    table = pd.read_csv(path, dtype={"EncodedPixels": str})
    if "ImageId_ClassId" in table.columns:  # the competition's first format: 0002cc93b.jpg_1
        parts = table["ImageId_ClassId"].str.rsplit("_", n=1, expand=True)
        table = pd.DataFrame({"ImageId": parts[0], "ClassId": parts[1], "EncodedPixels": table["EncodedPixels"]})
    missing = {"ImageId", "ClassId", "EncodedPixels"} - set(table.columns)
    if missing:
        raise ValueError(f"{path}: columns {sorted(missing)} missing; expected ImageId,ClassId,EncodedPixels "
                         "or ImageId_ClassId,EncodedPixels")
    table["ClassId"] = pd.to_numeric(table["ClassId"], errors="coerce").fillna(0).astype(int)
    return table[["ImageId", "ClassId", "EncodedPixels"]]


def write_severstal_submission(predictions, path: str | Path) -> pd.DataFrame:
    """Write predicted masks as the competition's submission CSV (``ImageId,EncodedPixels,ClassId``).

    Args:
        predictions: ``(ImageId, mask)`` pairs, ``mask`` ``(4, H, W)`` 0/1 (e.g. probabilities at a threshold).

    Returns:
        The table written, one row per image and class (an empty string where a class is absent).
    """
    rows = [
        {"ImageId": image_id, "EncodedPixels": mask_to_rle(channel), "ClassId": class_id}
        for image_id, mask in predictions
        for class_id, channel in enumerate(mask, start=1)
    ]
    table = pd.DataFrame(rows, columns=["ImageId", "EncodedPixels", "ClassId"])
    table.to_csv(path, index=False)
    return table

"""Colour-coded masks and their label map: CVAT's "Segmentation mask" export (``labelmap.txt``, one
``name:r,g,b:parts:actions`` line per label), read by the ``folders`` format."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from Utilities.Validate_data import DataError

LABELMAP = "labelmap.txt"
LABELMAP_NOT_CLASSES = ("background", "ignored", "void")  # entries read as background (VOC's border: ignored)


def read_labelmap(path: Path) -> list[tuple[str, tuple[int, int, int]]]:
    """``labelmap.txt`` as ``(name, colour)`` in file order; ``DataError`` naming the file and line."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: cannot read the label map ({error})") from error
    entries = []
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.startswith("#"):
            continue
        try:
            name, colour = line.split(":")[:2]
            rgb = tuple(int(c) for c in colour.split(","))
        except ValueError as error:
            raise DataError(f"{path} line {number}: expected name:r,g,b:: ({error})") from error
        if len(rgb) != 3:
            raise DataError(f"{path} line {number}: a colour needs 3 numbers (r,g,b)")
        entries.append((name.strip(), rgb))
    return entries


def labelmap_classes(entries) -> tuple[str, ...]:
    """The classes of a label map: every entry but black and those named as background or ignored."""
    return tuple(name for name, colour in entries if colour != (0, 0, 0) and name.lower() not in LABELMAP_NOT_CLASSES)


def colour_indices(rgb: np.ndarray, entries, classes: tuple[str, ...]) -> np.ndarray:
    """An ``(H, W, 3)`` colour mask to class indices (0 background, k the k-th of ``classes``);
    ``ValueError`` naming a colour the label map lacks or a label the classes lack."""
    indices = np.zeros(rgb.shape[:2], np.uint16)
    known = np.zeros(rgb.shape[:2], bool)
    named = labelmap_classes(entries)
    for name, colour in entries:
        where = (rgb == colour).all(axis=2)
        known |= where
        if name not in named or not where.any():  # background
            continue
        if name not in classes:
            raise ValueError(f"{where.sum()} pixels of {name} ({LABELMAP}), which is not among the classes "
                             f"{', '.join(classes)}")
        indices[where] = classes.index(name) + 1
    if not known.all():
        colour = rgb[~known][0].tolist()
        raise ValueError(f"{(~known).sum()} pixels of colour {colour}, which {LABELMAP} does not name")
    return indices

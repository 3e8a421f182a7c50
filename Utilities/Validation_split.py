"""Train / val / test splits, written once and committed.

Any data set: ``split_source`` writes a seeded split stratified by each
sample's label; the files stay where they are and the split file decides.
NEU-DET (``make_split``): ``test`` images are moved with their XML into
``Validation_Images/`` and ``Validation_Annotations/``, held out from
training and model selection; ``val`` images stay in ``IMAGES/`` and drive
model selection; ``train`` is the rest. Moving is idempotent and can be undone.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from Utilities.Data_Retriever_Seg import stratified_split
from Utilities.Extract_masks import NEU_DET_CLASSES, class_of
from Utilities.Formats import DataSource

FOLDER_PAIRS = (("IMAGES", "Validation_Images", ".jpg"), ("ANNOTATIONS", "Validation_Annotations", ".xml"))


def make_split(
    image_names: list[str],
    test_per_class: int = 50,
    val_per_class: int = 40,
    seed: int = 42,
    classes: tuple[str, ...] = NEU_DET_CLASSES,
) -> pd.DataFrame:
    """Seeded split stratified by the class in each file name.

    Returns:
        DataFrame ``image, class, split`` sorted by image, split in {train, val, test}.
    """
    names = sorted(image_names)
    return split_by_label(names, [class_of(name, classes) for name in names], test_per_class, val_per_class, seed)


def split_source(source: DataSource, test: int | float = 0.2, val: int | float = 0.15, seed: int = 42) -> pd.DataFrame:
    """Seeded split of any data set, stratified by sample label (e.g. Magnetic Tile's class folders).

    Args:
        test: share of all samples for test (a ``float``), or samples per label (an ``int``).
        val: the same, taken from what test leaves.
    """
    samples = source.samples()
    return split_by_label([s.name for s in samples], [s.label for s in samples], test, val, seed)


def split_by_label(names: list[str], labels: list[str], test: int | float, val: int | float, seed: int) -> pd.DataFrame:
    """``image, class, split`` with test, then val, drawn per label; the rest is train."""
    table = pd.DataFrame({"image": names, "class": labels})
    rest, test_rows = stratified_split(table, test, seed)
    _, val_rows = stratified_split(rest, val, seed)
    table["split"] = "train"
    table.loc[val_rows.index, "split"] = "val"
    table.loc[test_rows.index, "split"] = "test"
    return table


def all_image_names(root: str | Path) -> list[str]:
    """Every image of the data set, wherever the split has put it."""
    root = Path(root)
    return sorted(p.name for folder in ("IMAGES", "Validation_Images") for p in (root / folder).glob("*.jpg"))


def move_test_images(split: pd.DataFrame, root: str | Path) -> int:
    """Move the ``test`` images and their XML out of the training folders.

    Returns:
        Number of files moved; 0 when run again.
    """
    return _move(split.loc[split["split"] == "test", "image"], root, to_held_out=True)


def undo_test_split(root: str | Path) -> int:
    """Move every held-out image and XML back into ``IMAGES/`` and ``ANNOTATIONS/``."""
    root = Path(root)
    return _move([p.name for p in (root / "Validation_Images").glob("*.jpg")], root, to_held_out=False)


def _move(image_names, root: str | Path, to_held_out: bool) -> int:
    root = Path(root)
    moved = 0
    for train_folder, held_folder, suffix in FOLDER_PAIRS:
        source, target = (train_folder, held_folder) if to_held_out else (held_folder, train_folder)
        (root / target).mkdir(exist_ok=True)
        for name in image_names:
            path = root / source / (Path(name).stem + suffix)
            if path.exists():
                shutil.move(path, root / target / path.name)
                moved += 1
    return moved


def held_out_counts(root: str | Path) -> pd.Series:
    """Images per class in ``Validation_Images/``."""
    names = [p.name for p in Path(root, "Validation_Images").glob("*.jpg")]
    return pd.Series([class_of(n) for n in names], dtype=str).value_counts().sort_index()

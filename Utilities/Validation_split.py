"""The train / val / test split of NEU-DET, written once and committed.

``test`` images are moved with their XML into ``Validation_Images/`` and
``Validation_Annotations/``, held out from training and model selection;
``val`` images stay in ``IMAGES/`` and drive model selection; ``train`` is
the rest. Moving is idempotent and can be undone.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from Utilities.Data_Retriever_Seg import stratified_split
from Utilities.Extract_masks import NEU_DET_CLASSES, class_of

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
    table = pd.DataFrame({"image": sorted(image_names)})
    table["class"] = [class_of(name, classes) for name in table["image"]]
    rest, test = stratified_split(table, test_per_class, seed)
    train, val = stratified_split(rest, val_per_class, seed)
    table["split"] = "train"
    table.loc[val.index, "split"] = "val"
    table.loc[test.index, "split"] = "test"
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

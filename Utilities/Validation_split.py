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
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from Utilities.Data_Retriever_Seg import stratified_split
from Utilities.Extract_masks import NEU_DET_CLASSES, class_of
from Utilities.Formats import DataSource, VocSource


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


def load_or_write_split(path: str | Path, make: Callable[[], pd.DataFrame]) -> pd.DataFrame:
    """The split file at ``path``; the first time, ``make()``'s split written there (to be committed), so
    that every later run, and everyone else, uses the same one."""
    path = Path(path)
    if path.exists():
        return pd.read_csv(path)
    split = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    split.to_csv(path, index=False)
    return split


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
    """Every NEU-DET image with its XML, wherever the split has put it."""
    return [sample.name for sample in VocSource(root).samples()]


def move_test_images(split: pd.DataFrame, root: str | Path) -> int:
    """Move the ``test`` images and their XML out of the training folders, into the held-out ones.

    Returns:
        Number of files moved; 0 when run again.
    """
    source = VocSource(root)
    return _move(source, split.loc[split["split"] == "test", "image"], source.held_out_dirs)


def undo_test_split(root: str | Path) -> int:
    """Move every held-out image and XML back into ``IMAGES/`` and ``ANNOTATIONS/``."""
    source = VocSource(root)
    held_images = source.held_out_dirs[0]
    return _move(source, [s.name for s in source.samples() if s.image.parent == held_images],
                 (source.images_dir, source.annotations_dir))


def _move(source: VocSource, names, folders: tuple[Path, Path]) -> int:
    """Move the named samples' image and XML files into ``folders`` (images, annotations); count the files moved."""
    moved = 0
    for folder in folders:
        folder.mkdir(exist_ok=True)
    for name in names:
        sample = source.sample(name)
        for path, folder in zip((sample.image, sample.truth), folders):
            if path.parent != folder:
                shutil.move(path, folder / path.name)
                moved += 1
    return moved


def held_out_counts(root: str | Path) -> pd.Series:
    """Images per class in the held-out folder (``Validation_Images/``)."""
    source = VocSource(root)
    names = [s.name for s in source.samples() if s.image.parent == source.held_out_dirs[0]]
    return pd.Series([class_of(n) for n in names], dtype=str).value_counts().sort_index()

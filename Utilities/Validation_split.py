"""Train / val / test splits, written once and committed; ``python -m Utilities.Validation_split`` writes one.

Any data set: ``split_source`` writes a seeded split stratified by each
sample's label, or keeps the data set's own where it comes split into folders
(drawing from train what it lacks); the files stay where they are and the
split file decides.
NEU-DET (``make_split``): ``test`` images are moved with their XML into
``Validation_Images/`` and ``Validation_Annotations/``, held out from
training and model selection; ``val`` images stay in ``IMAGES/`` and drive
model selection; ``train`` is the rest. Moving is idempotent and can be undone.
"""

from __future__ import annotations

import argparse
import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

from Utilities.Cli import add_config_options, config_from_args
from Utilities.Errors import UserError, run_command
from Utilities.Extract_masks import NEU_DET_CLASSES, class_of
from Utilities.Formats import DataSource, VocSource, open_source

RARE_LABELS = "(labels of a single image)"


def stratified_split(
    table: pd.DataFrame, size: int | float, seed: int, label_column: str = "class"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split rows into (rest, held_out), the same share of every class in each.

    Args:
        table: one row per image with a class column.
        size: images per class held out when an ``int``, a fraction when a ``float``.
        seed: the same seed always gives the same split.
    """
    if isinstance(size, int):
        held = table.groupby(label_column, group_keys=False).sample(n=size, random_state=seed)
        return table.drop(held.index), held
    rest, held = train_test_split(table, test_size=size, stratify=_strata(table[label_column]), random_state=seed)
    return rest, held


def _strata(labels: pd.Series) -> pd.Series:
    """``labels`` with those held by a single image pooled (stratification needs two of each), into the most
    common label where the pool itself is a single image: e.g. the one defect-free image of a COCO export."""
    labels = labels.fillna("").astype(str)
    counts = labels.value_counts()
    single = labels.map(counts) == 1
    return labels.mask(single, RARE_LABELS if single.sum() > 1 else counts.index[0])


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
    """Seeded split of any data set, stratified by sample label (e.g. Magnetic Tile's class folders); where the
    data set comes split (``Sample.split``), its own split, with test and val drawn from train if it lacks them.

    Args:
        test: share of all samples for test (a ``float``), or samples per label (an ``int``).
        val: the same, taken from what test leaves.
    """
    samples = source.samples()
    if not any(s.split for s in samples):
        return split_by_label([s.name for s in samples], [s.label for s in samples], test, val, seed)
    table = pd.DataFrame({"image": [s.name for s in samples], "class": [s.label for s in samples],
                          "split": [s.split or "train" for s in samples]})
    for part, share in (("test", test), ("val", val)):
        if not (table["split"] == part).any():
            _, drawn = stratified_split(table[table["split"] == "train"], share, seed)
            table.loc[drawn.index, "split"] = part
    return table


def names_in(split: pd.DataFrame, part: str) -> list[str]:
    """The image names of one part (``train``, ``val``, ``test``) of a split table."""
    return list(split.loc[split["split"] == part, "image"])


def cross_validation_splits(split: pd.DataFrame, folds: int, seed: int = 42) -> list[pd.DataFrame]:
    """``folds`` splits of the train and val images pooled, fold k's images as val and the others as train, each
    image in exactly one val fold, stratified by label; the test rows stay test in every split (never scored in
    cross-validation)."""
    pool = split[split["split"] != "test"]
    labels = pool["class"].fillna("").astype(str)
    counts = labels.value_counts()
    folder = StratifiedKFold(folds, shuffle=True, random_state=seed) if counts.min() >= folds else \
        KFold(folds, shuffle=True, random_state=seed)
    result = []
    for _, val in folder.split(pool, labels):
        fold = split.copy()
        fold.loc[pool.index, "split"] = "train"
        fold.loc[pool.index[val], "split"] = "val"
        result.append(fold)
    return result


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
    try:
        rest, test_rows = stratified_split(table, test, seed)
        _, val_rows = stratified_split(rest, val, seed)
    except ValueError as problem:  # a label with too few images for its share
        counts = ", ".join(f"{label or '(no label)'} {n}" for label, n in table["class"].value_counts().items())
        raise UserError(f"cannot draw test {test} and val {val} from every label ({counts}): {problem}") from problem
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
    return _move(source, names_in(split, "test"), source.held_out_dirs)


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


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Write the split file (image, class, split) that training, tuning and evaluation read: the data "
                    "set's own split where its folders are split (train/, valid/ or val/, test/), else a seeded "
                    "split stratified by image label.",
        epilog="Exit status: 0 written, 2 bad arguments, bad data or a split file already there.")
    add_config_options(parser, ("data_format", "data_root", "classes", "binary", "split_file", "seed"))
    parser.add_argument("--test", type=_share, default=0.2, help="test share of all images (0.2), or images per "
                        "label (50); where the data set's folders are split but have no test folder, a share of "
                        "train (default: 0.2)")
    parser.add_argument("--val", type=_share, default=0.15, help="val share of what test leaves, or images per label; "
                        "only where the data set has no val folder (default: 0.15)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing split file (every model "
                        "trained on the old one is then scored on other images)")
    args = parser.parse_args()
    config = config_from_args(args)
    if config.split_path.exists() and not args.overwrite:
        raise UserError(f"{config.split_path} exists; every run reads it. --overwrite replaces it")
    source = open_source(config.data_format, config.data_path, config.classes, config.binary)
    print(source.check().raise_if_errors())
    split = split_source(source, args.test, args.val, config.seed)
    config.split_path.parent.mkdir(parents=True, exist_ok=True)
    split.to_csv(config.split_path, index=False)
    kept = "the data set's own split" if any(s.split for s in source.samples()) else f"seed {config.seed}"
    print(f"{config.split_path}: {split['split'].value_counts().reindex(['train', 'val', 'test']).fillna(0).astype(int).to_dict()} "
          f"({kept})\nnext: python -m Utilities.Train --data-format {config.data_format}"
          + (f" --data-root {config.data_root}" if config.data_root else "") + " --recipe <recipe>")


def _share(text: str) -> int | float:
    """``0.2`` -> a share, ``50`` -> images per label."""
    return int(text) if text.isdigit() else float(text)


if __name__ == "__main__":
    run_command(main)

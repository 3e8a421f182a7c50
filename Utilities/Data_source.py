"""The interface every data set format implements, and the helpers readers share.

A ``DataSource`` lists its samples (an image and where its truth lives),
turns a sample's truth into a ``(C, H, W)`` uint8 0/1 mask with one channel
per class (the layout models, metrics and post-processing use), and checks every file before a run. The readers of each layout
live in ``Utilities.Formats`` and ``Utilities.Labelling_formats``.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from Utilities.Errors import MissingFile
from Utilities.Images import IMAGE_SUFFIXES, image_size
from Utilities.Validate_data import DataReport

NO_DEFECT = "free"
BINARY_CLASSES = ("defect",)
SPLIT_FOLDERS = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}  # folder: split


@dataclass(frozen=True)
class Sample:
    """One labelled image.

    Attributes:
        name: the image path relative to the source's root; split files list samples by it.
        image: the image file.
        label: image-level label for stratified splits, where the layout gives one: the class
            folder (Magnetic Tile), the most frequent box class (VOC), the lowest class id
            (Severstal), ``"free"`` for images known to be defect-free; else one label for all.
        truth: where the mask comes from (a file, or run-length rows), as the format needs.
        split: ``train``, ``val`` or ``test`` where the data set comes split into folders, else ``None``
            (``Validation_split.split_source`` keeps it).
    """

    name: str
    image: Path
    label: str
    truth: Any = None
    split: str | None = None


class DataSource:
    """A data set on disk in one format.

    Args:
        root: the data set's folder.
        classes: class names, one channel each (default: those the data set names, ``classes_in``).
        binary: merge every class into one ``defect`` channel.
    """

    format: ClassVar[str]
    default_classes: ClassVar[tuple[str, ...]]
    default_name: ClassVar[str] = "dataset"  # names its split file when it sits in the project folder itself

    def __init__(self, root: str | Path, classes: tuple[str, ...] | None = None, binary: bool = False):
        self.root = Path(root)
        self.source_classes = tuple(classes or self.classes_in(self.root))
        self.binary = binary
        self._samples: list[Sample] | None = None
        self._by_name: dict[str, Sample] = {}
        self._listing = DataReport()
        self._sound: set[str] = set()  # samples a check found without a problem: not read again by the next one

    @classmethod
    def classes_in(cls, root: Path) -> tuple[str, ...]:
        """The classes a data set in this format names itself (a COCO file's categories), else the format's own."""
        return cls.default_classes

    @property
    def classes(self) -> tuple[str, ...]:
        """The mask channels this source gives."""
        return BINARY_CLASSES if self.binary else self.source_classes

    def samples(self) -> list[Sample]:
        """Every labelled sample, sorted by name (listed once, then kept)."""
        if self._samples is None:
            if not self.root.is_dir():
                raise MissingFile(f"{self.root}: {self.format} data set folder not found")
            self._samples = sorted(self._list(self._listing), key=lambda s: s.name)
            self._by_name = {s.name: s for s in self._samples}
        return self._samples

    def sample(self, name: str) -> Sample:
        """The sample listed as ``name``; ``KeyError`` naming it if absent."""
        self.samples()
        if name not in self._by_name:
            raise KeyError(f"{name}: not a labelled sample of {self.root} ({self.format})")
        return self._by_name[name]

    def mask(self, sample: Sample, height: int, width: int) -> np.ndarray:
        """``(C, H, W)`` uint8 0/1 truth of ``sample`` for an image of that size; ``ValueError`` naming it."""
        try:
            mask = self._class_masks(sample, height, width)
        except ValueError as error:
            raise ValueError(f"{sample.name}: {error}") from error
        return np.ascontiguousarray(mask.max(axis=0, keepdims=True) if self.binary else mask)

    def check(self, names: list[str] | None = None, strict: bool = False) -> DataReport:
        """Read every image and its truth once and report every problem by file name. Samples an earlier check
        of this source found sound are not read again (evaluation checks before every pass over a split); a file
        changed since is read when it is used.

        Args:
            names: only these samples' files (default: all); unpaired files are errors either way.
            strict: raise ``DataError`` at the first error instead of collecting them all.
        """
        report = DataReport(strict=strict)
        if not self.root.is_dir() or not any(self.root.iterdir()):
            report.error(f"{self.root}: folder is missing or empty")
            return report
        try:
            samples = self.samples()
        except (OSError, ValueError) as problem:  # e.g. a missing or malformed Severstal train.csv
            report.error(str(problem))
            return report
        report.extend(self._listing)  # unpaired files, also when only some samples are checked
        if names is not None:
            for name in sorted(set(names) - self._by_name.keys()):
                report.error(f"{name}: not found among the labelled samples of {self.root}")
            samples = [self._by_name[n] for n in dict.fromkeys(names) if n in self._by_name]
        if not samples:
            report.error(f"{self.root}: no labelled samples ({self.format} layout expected)")
        report.images += len(samples)
        for sample in tqdm([s for s in samples if s.name not in self._sound], desc="checking data", leave=False):
            size = image_size(sample.image)
            if size is None:
                report.error(f"{sample.name}: unreadable or truncated image")
                continue
            problems = len(report.errors) + len(report.warnings)
            try:
                self._check_truth(sample, *size, report)
            except ValueError as problem:
                report.error(f"{sample.name}: {problem}")
            if len(report.errors) + len(report.warnings) == problems:  # a warning is repeated by every check
                self._sound.add(sample.name)
        return report

    @classmethod
    def default_destination(cls, root: Path, source_name: str) -> Path:
        """Where ``Setup_data`` copies a data set of this format by default: ``<root>/data/<source folder name>``."""
        return root / "data" / source_name

    @classmethod
    def copy_in(cls, folder: Path, destination: Path) -> int:
        """Copy a data set found in ``folder`` into ``destination`` for reading; the number of files copied.

        By default the layout is kept as it is, without an archive's single top folder (``CrackForest-master/``).
        """
        while len(entries := [p for p in folder.iterdir() if not p.name.startswith(".")]) == 1 and entries[0].is_dir():
            folder = entries[0]
        return sum(copy_if_changed(path, destination / path.relative_to(folder))
                   for path in tqdm(files_below(folder), desc="copying", leave=False))

    def _list(self, report: DataReport) -> list[Sample]:
        """The samples; unpaired files go into ``report``."""
        raise NotImplementedError

    def _class_masks(self, sample: Sample, height: int, width: int) -> np.ndarray:
        """``(len(source_classes), H, W)`` uint8 0/1; ``ValueError`` naming the file when unreadable."""
        raise NotImplementedError

    def _check_truth(self, sample: Sample, height: int, width: int, report: DataReport) -> None:
        """Report what is wrong with the truth of one readable image; by default, that it does not load."""
        self._class_masks(sample, height, width)


def files_below(folder: Path) -> list[Path]:
    """Every file below ``folder``, hidden ones left out, sorted."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))


def copy_if_changed(path: Path, target: Path) -> bool:
    """Copy (never link: a split may move files later) ``path`` to ``target`` unless a file of the same size is
    there; True if copied."""
    if target.exists() and target.stat().st_size == path.stat().st_size:
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, target)
    return True


def images_by_stem(folder: Path) -> dict[str, Path]:
    """The image files of ``folder`` by stem (none if it does not exist)."""
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES} if folder.is_dir() else {}


def pair_by_stem(images: dict[str, Path], truths: dict[str, Path], report: DataReport, truth_folder: Path,
          image_folder: Path, truth_optional: bool = False, suffixes: tuple[str, ...] = (".*",)) -> list[str]:
    """Stems with both files; the others reported by name (``suffixes``: what a truth file may end in)."""
    if not truth_optional:
        for stem in sorted(images.keys() - truths.keys()):
            looked_for = " or ".join(f"{stem}{suffix}" for suffix in suffixes)
            report.error(f"{images[stem].name}: no annotation {looked_for} in {truth_folder}")
    for stem in sorted(truths.keys() - images.keys()):
        report.error(f"{truths[stem].name}: no image in {image_folder}")
    return sorted(images.keys() & truths.keys())


def read_mask_file(path: Path, height: int, width: int, grey: bool = False, rgb: bool = False) -> np.ndarray:
    """A mask image of the expected size: one channel as stored (8 or 16 bit, palette indices), or colours.

    Grey masks saved as RGB (three equal channels) count as single-channel;
    ``grey`` converts any mask to 8-bit grey (for lossy files, whose channels differ slightly),
    ``rgb`` to ``(H, W, 3)`` colours (for colour-coded masks).
    """
    try:
        with Image.open(path) as picture:  # palette PNGs give indices, 16-bit uint16
            mask = np.array(picture.convert("L") if grey else picture.convert("RGB") if rgb else picture)
    except (OSError, ValueError) as error:
        raise ValueError(f"{path.name}: unreadable mask") from error
    if not rgb and mask.ndim == 3 and (mask == mask[..., :1]).all():
        mask = mask[..., 0]
    if not rgb and mask.ndim == 3:
        raise ValueError(f"{path.name}: mask has {mask.shape[2]} different channels, expected one")
    if mask.shape[:2] != (height, width):
        raise ValueError(f"{path.name}: mask is {mask.shape[1]}x{mask.shape[0]}, its image {width}x{height}")
    return mask


def is_palette_image(path: Path) -> bool:
    """Whether an image file stores palette indices (Pascal VOC's masks), from its header."""
    try:
        with Image.open(path) as picture:
            return picture.mode == "P"
    except OSError:
        return False


def one_hot(indices: np.ndarray, classes: int) -> np.ndarray:
    """``(H, W)`` class indices (0 background, k the k-th class) to ``(classes, H, W)`` uint8 0/1."""
    return (indices[None] == np.arange(1, classes + 1)[:, None, None]).astype(np.uint8)

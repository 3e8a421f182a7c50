"""Readers for the data set layouts the field uses, behind one interface (``Utilities.Data_source``).

Splitting, training, evaluation and prediction only see that interface, so a
new layout is one new ``DataSource`` class here, registered in ``FORMATS``.

Layouts (``root`` is the data set's folder):

- ``voc``: ``IMAGES/<stem>.jpg`` with Pascal VOC boxes in ``ANNOTATIONS/<stem>.xml`` (NEU-DET);
  images set aside in ``Validation_Images/`` with their XML in ``Validation_Annotations/``
  (where notebook 02 moves the test split) are samples too: the split file decides.
- ``folders``: ``images/<stem>.*`` with ``masks/<stem>.*`` (any image format) holding class
  indices (8 or 16 bit; 0 background, k the k-th class), or 0/255 for one class (JPEG masks
  of one class are thresholded at 128); or the same already split, as public data sets
  circulate: ``<split>/images`` + ``<split>/masks``, ``<split>/`` + ``<split>_lab/`` or
  ``<split>_img/`` + ``<split>_lab/``, for ``<split>`` in train, val, valid, validation, test.
  Colour masks with a ``labelmap.txt`` (``name:r,g,b::`` lines) at the root: CVAT's
  "Segmentation mask" export (``JPEGImages/`` + ``SegmentationClass/``), classes in its order.
  Pascal VOC's palette PNGs read as their indices, its 255 border (void) as background.
- ``coco``, ``yolo_seg``, ``labelme``: what labelling tools export (``Utilities.Labelling_formats``).
- ``magnetic_tile``: ``MT_<Class>/Imgs/<stem>.jpg`` with ``<stem>.png`` (0/255, grey edges
  thresholded at 128); the class comes from the folder, ``MT_Free`` has no defect.
- ``crackforest``: ``image/<nnn>.jpg`` with ``groundTruth/<nnn>.mat`` (struct ``groundTruth``,
  field ``Segmentation``: 1 background, 2 the crack, further ids cracks or enclosed pavement) or ``seg/<nnn>.seg``
  (the same regions, ids from 0); images with neither are unlabelled.
- ``severstal``: ``train_images/<ImageId>`` with run-length masks in ``train.csv``
  (``ImageId,ClassId,EncodedPixels`` or ``ImageId_ClassId,EncodedPixels``); images not in
  the CSV have no defect.

With ``binary=True`` every source gives one channel, ``defect``: any class.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from Utilities.Annotation_files import crack_regions, read_mat_segmentation, read_seg_file, read_severstal_csv
from Utilities.Colour_masks import LABELMAP, colour_indices, labelmap_classes, read_labelmap
from Utilities.Data_source import (
    BINARY_CLASSES,
    NO_DEFECT,
    SPLIT_FOLDERS,
    DataSource,
    Sample,
    copy_if_changed,
    files_below,
    images_by_stem,
    is_palette_image,
    one_hot,
    pair_by_stem,
    read_mask_file,
)
from Utilities.Errors import UnknownName
from Utilities.Extract_masks import NEU_DET_CLASSES, boxes_to_mask, parse_voc_xml
from Utilities.Images import IMAGE_SUFFIXES
from Utilities.Labelling_formats import CocoSource, LabelmeSource, YoloSegSource
from Utilities.Rle import rle_to_mask
from Utilities.Validate_data import DataReport


class VocSource(DataSource):
    """Pascal VOC boxes (NEU-DET): boxes painted as filled rectangles.

    Args:
        images, annotations: folders, relative to ``root`` or absolute.
        held_out: the folders of images and XML set aside for testing (listed
            as samples too), or ``None``.
    """

    format = "voc"
    default_classes = NEU_DET_CLASSES
    default_name = "NEU-DET"

    def __init__(self, root, classes=None, binary=False, images: str | Path = "IMAGES",
                 annotations: str | Path = "ANNOTATIONS",
                 held_out: tuple[str | Path, str | Path] | None = ("Validation_Images", "Validation_Annotations")):
        super().__init__(root, classes, binary)
        self.images_dir, self.annotations_dir = self.root / images, self.root / annotations
        self.held_out_dirs = tuple(self.root / folder for folder in held_out) if held_out else None

    @classmethod
    def default_destination(cls, root: Path, source_name: str) -> Path:
        """The project folder itself, whose ``IMAGES/`` and ``ANNOTATIONS/`` the notebooks read."""
        return root

    @classmethod
    def copy_in(cls, folder: Path, destination: Path) -> int:
        """Every image below ``folder`` into ``IMAGES/``, every ``.xml`` into ``ANNOTATIONS/`` (archives already
        split into train and validation folders are merged), except those the split moved to the held-out folders."""
        source = cls(destination)
        copied = 0
        for path in tqdm(files_below(folder), desc="copying", leave=False):
            is_image, is_xml = path.suffix.lower() in IMAGE_SUFFIXES, path.suffix.lower() == ".xml"
            if is_image or is_xml:
                target, held = (source.images_dir, source.held_out_dirs[0]) if is_image else (
                    source.annotations_dir, source.held_out_dirs[1])
                if not (held / path.name).exists():
                    copied += copy_if_changed(path, target / path.name)
        return copied

    def check(self, names=None, strict=False) -> DataReport:
        report = DataReport(strict=strict)
        for folder in (self.images_dir, self.annotations_dir):
            if not folder.is_dir() or not any(folder.iterdir()):
                report.error(f"{folder}: folder is missing or empty")
        return report if report.errors else super().check(names, strict)

    def _list(self, report):
        samples = self._pairs(self.images_dir, self.annotations_dir, report)
        return samples + (self._pairs(*self.held_out_dirs, report) if self.held_out_dirs else [])

    def _pairs(self, image_dir: Path, annotation_dir: Path, report: DataReport) -> list[Sample]:
        images = images_by_stem(image_dir)
        xmls = {p.stem: p for p in sorted(annotation_dir.glob("*.xml"))} if annotation_dir.is_dir() else {}
        report.annotations += len(xmls)
        pairs = pair_by_stem(images, xmls, report, annotation_dir, image_dir)
        return [Sample(images[s].name, images[s], self._label(xmls[s]), xmls[s]) for s in pairs]

    @staticmethod
    def _label(xml: Path) -> str:
        try:
            names = Counter(box.name for box in parse_voc_xml(xml).boxes)
        except ValueError:
            return "unreadable"
        return names.most_common(1)[0][0] if names else NO_DEFECT

    def _class_masks(self, sample, height, width):
        annotation = parse_voc_xml(sample.truth)
        if (annotation.height, annotation.width) != (height, width):
            raise ValueError(f"image is {width}x{height}, its XML says {annotation.width}x{annotation.height}")
        return boxes_to_mask(annotation.boxes, height, width, self.source_classes)

    def _check_truth(self, sample, height, width, report):
        annotation = parse_voc_xml(sample.truth)
        if (height, width) != (annotation.height, annotation.width):
            report.error(f"{sample.name}: image is {width}x{height}, its XML says {annotation.width}x{annotation.height}")
        xml = sample.truth.name  # boxes are checked here rather than painted, to report every bad one
        for box in annotation.boxes:
            where = f"{xml}: box {box.name} ({box.xmin},{box.ymin})-({box.xmax},{box.ymax})"
            if box.name not in self.source_classes:
                report.error(f"{xml}: unknown class {box.name!r}; known: {', '.join(self.source_classes)}")
            elif box.xmax < box.xmin or box.ymax < box.ymin:
                report.error(f"{where} is empty")
            elif box.xmin < 1 or box.ymin < 1 or box.xmax > annotation.width or box.ymax > annotation.height:
                report.warnings.append(f"{where} reaches outside the {annotation.width}x{annotation.height} image; clipped")


SPLIT_LAYOUTS = (("{split}/images", "{split}/masks"), ("{split}", "{split}_lab"), ("{split}_img", "{split}_lab"))


VOID = 255  # Pascal VOC's border around objects in its palette PNGs: neither class nor background


class FolderSource(DataSource):
    """Images and index masks matched by file stem; masks in any image format, or colours named by a ``labelmap.txt``.

    Masks saved lossily (JPEG, as many public crack data sets circulate) hold
    0-255 along the edges of a 0/255 mask, often in three slightly different
    channels; for one class they are read as grey and thresholded at 128, and
    ``check`` says in one warning how many needed it.

    Args:
        images, masks: folder names under ``root``.
    """

    format = "folders"
    default_classes = BINARY_CLASSES
    lossy_suffixes = (".jpg", ".jpeg")

    def __init__(self, root, classes=None, binary=False, images: str = "images", masks: str = "masks"):
        super().__init__(root, classes, binary)
        self.images_dir, self.masks_dir = self.root / images, self.root / masks
        if not self.images_dir.is_dir() and (self.root / "SegmentationClass").is_dir():  # Pascal VOC, CVAT
            self.images_dir, self.masks_dir = self.root / "JPEGImages", self.root / "SegmentationClass"
        self.colours = read_labelmap(self.root / LABELMAP) if (self.root / LABELMAP).is_file() else None

    @classmethod
    def classes_in(cls, root: Path) -> tuple[str, ...]:
        """The classes of ``labelmap.txt`` where there is one."""
        labelmap = Path(root) / LABELMAP
        return labelmap_classes(read_labelmap(labelmap)) if labelmap.is_file() else cls.default_classes

    def folder_pairs(self) -> list[tuple[str | None, Path, Path]]:
        """``(split, images folder, masks folder)``: one pair with split ``None``, or one per split folder found."""
        if self.images_dir.is_dir() or not self.root.is_dir():
            return [(None, self.images_dir, self.masks_dir)]
        found = []
        for folder, split in SPLIT_FOLDERS.items():
            for images, masks in SPLIT_LAYOUTS:
                image_dir, mask_dir = self.root / images.format(split=folder), self.root / masks.format(split=folder)
                if image_dir.is_dir() and mask_dir.is_dir():
                    found.append((split, image_dir, mask_dir))
                    break
        return found

    def check(self, names=None, strict=False) -> DataReport:
        if not self.folder_pairs():
            report = DataReport(strict=strict)
            layouts = ", ".join(f"{images}/ + {masks}/" for images, masks in (("images", "masks"), *SPLIT_LAYOUTS))
            report.error(f"{self.root}: no image and mask folders; expected {layouts} (split: "
                         f"{', '.join(SPLIT_FOLDERS)})")
            return report
        report = super().check(names, strict)
        checked = [self._by_name[n] for n in (names or self._by_name) if n in self._by_name]
        lossy = sum(self._is_lossy_binary(s) for s in checked)
        if lossy:
            report.warnings.append(f"{lossy} masks are JPEG (lossy); read as grey and thresholded at 128")
        return report

    def _list(self, report):
        samples = []
        for split, image_dir, mask_dir in self.folder_pairs():
            images, masks = images_by_stem(image_dir), images_by_stem(mask_dir)
            report.annotations += len(masks)
            for stem in pair_by_stem(images, masks, report, mask_dir, image_dir, suffixes=IMAGE_SUFFIXES):
                name = images[stem].name if split is None else images[stem].relative_to(self.root).as_posix()
                samples.append(Sample(name, images[stem], "", masks[stem], split))
        return samples

    def _is_lossy_binary(self, sample) -> bool:
        return sample.truth.suffix.lower() in self.lossy_suffixes and (self.binary or len(self.source_classes) == 1)

    def _indices(self, sample, height, width) -> np.ndarray:
        if self.colours:
            mask = colour_indices(read_mask_file(sample.truth, height, width, rgb=True), self.colours, self.source_classes)
        elif self._is_lossy_binary(sample):
            return (read_mask_file(sample.truth, height, width, grey=True) >= 128).astype(np.uint8)
        else:
            mask = read_mask_file(sample.truth, height, width)
            if is_palette_image(sample.truth) and ((mask != 0) & (mask != VOID)).any():  # objects in a void border
                mask = np.where(mask == VOID, 0, mask)
            elif len(self.source_classes) == 1 and mask.dtype == np.uint8:
                mask = np.where(mask == 255, 1, mask)
        return (mask > 0).astype(np.uint8) if self.binary else mask

    def _class_masks(self, sample, height, width):
        return one_hot(self._indices(sample, height, width), len(self.source_classes))

    def _check_truth(self, sample, height, width, report):
        values = np.unique(self._indices(sample, height, width))
        unexpected = values[values > (1 if self.binary else len(self.source_classes))]
        if unexpected.size:
            allowed = "0/1 or 0/255" if len(self.source_classes) == 1 else f"0..{len(self.source_classes)}"
            report.error(f"{sample.truth.name}: unexpected mask values {unexpected[:5].tolist()}; expected {allowed}")


class MagneticTileSource(DataSource):
    """Magnetic Tile: one folder per class, 0/255 masks beside the images."""

    format = "magnetic_tile"
    default_classes = ("Blowhole", "Break", "Crack", "Fray", "Uneven")
    free_folder = "MT_Free"

    def _list(self, report):
        samples = []
        for folder in sorted(self.root.glob("MT_*/Imgs")):
            label = folder.parent.name.removeprefix("MT_")
            if folder.parent.name != self.free_folder and label not in self.source_classes:
                report.error(f"{folder.parent.name}: folder of an unknown class; known: {', '.join(self.source_classes)}")
                continue
            images = {p.stem: p for p in folder.glob("*.jpg")}
            masks = {p.stem: p for p in folder.glob("*.png")}
            report.annotations += len(masks)
            for stem in pair_by_stem(images, masks, report, folder, folder):
                name = images[stem].relative_to(self.root).as_posix()
                samples.append(Sample(name, images[stem], NO_DEFECT if folder.parent.name == self.free_folder else label, masks[stem]))
        return samples

    def _class_masks(self, sample, height, width):
        defect = read_mask_file(sample.truth, height, width) >= 128
        mask = np.zeros((len(self.source_classes), height, width), np.uint8)
        if sample.label != NO_DEFECT:
            mask[self.source_classes.index(sample.label)] = defect
        return mask

    def _check_truth(self, sample, height, width, report):
        mask = read_mask_file(sample.truth, height, width)
        if mask.dtype != np.uint8:
            report.error(f"{sample.truth.name}: {mask.dtype} mask; expected 8-bit 0/255")
        elif sample.label == NO_DEFECT and (mask >= 128).any():
            report.error(f"{sample.truth.name}: defect pixels in a defect-free ({self.free_folder}) image")


class CrackForestSource(DataSource):
    """CrackForest (CFD): one region id per pixel in the Berkeley segmentation convention.

    ``groundTruth/<nnn>.mat`` (struct ``groundTruth``, field ``Segmentation``)
    holds 1 for the background region, 2 for the drawn crack, and 3, 4...
    for further drawn cracks or for pavement enclosed by a crack loop
    (``Annotation_files.crack_regions`` tells them apart). Copies without the
    ``.mat`` files have ``seg/<nnn>.seg`` text files with the same regions, ids
    from 0. An id of 0 in a ``.mat`` (or a pixel no ``.seg`` row covers) can
    only be a broken file.
    """

    format = "crackforest"
    default_classes = ("crack",)

    def __init__(self, root, classes=None, binary=False):
        super().__init__(root, classes, binary)
        if len(self.source_classes) != 1:
            raise ValueError(f"CrackForest has one class (crack), not {list(self.source_classes)}")

    def _list(self, report):
        images = images_by_stem(self.root / "image")
        truths = {p.stem: p for p in sorted((self.root / "seg").glob("*.seg"))}
        truths |= {p.stem: p for p in sorted((self.root / "groundTruth").glob("*.mat"))}  # .mat where both exist
        report.annotations = len(truths)
        unlabelled = len(images.keys() - truths.keys())
        if unlabelled:
            report.warnings.append(f"{unlabelled} images have neither groundTruth/.mat nor seg/.seg; "
                                   "they are unlabelled and left out")
        pairs = pair_by_stem(images, truths, report, self.root / "groundTruth", self.root / "image", truth_optional=True)
        return [Sample(images[s].name, images[s], "crack", truths[s]) for s in pairs]

    @staticmethod
    def segmentation(path: Path) -> np.ndarray:
        """Region ids of a ``.mat`` or ``.seg`` file, background 1 (``.seg`` ids shifted by one)."""
        return read_seg_file(path) + 1 if path.suffix == ".seg" else read_mat_segmentation(path)

    def _segmentation(self, sample, height, width) -> np.ndarray:
        segmentation = self.segmentation(sample.truth)
        if segmentation.shape != (height, width):
            raise ValueError(f"{sample.truth.name}: Segmentation is {segmentation.shape[1]}x{segmentation.shape[0]}, "
                             f"its image {width}x{height}")
        if (segmentation < 1).any():
            raise ValueError(f"{sample.truth.name}: {(segmentation < 1).sum()} pixels without a region "
                             "(id 0 in a .mat, or not covered by a .seg); regions start at 1 (background)")
        return segmentation

    def _class_masks(self, sample, height, width):
        return crack_regions(self._segmentation(sample, height, width)).astype(np.uint8)[None]


class SeverstalSource(DataSource):
    """Severstal steel defects: run-length masks in ``train.csv``, images in ``train_images/``.

    Args:
        csv, images: file and folder names under ``root``.
    """

    format = "severstal"
    default_classes = ("1", "2", "3", "4")

    def __init__(self, root, classes=None, binary=False, csv: str = "train.csv", images: str = "train_images"):
        super().__init__(root, classes, binary)
        self.csv_path, self.images_dir = self.root / csv, self.root / images

    def runs(self) -> pd.DataFrame:
        """The CSV as ``ImageId, ClassId (int), EncodedPixels``, rows without runs dropped."""
        table = read_severstal_csv(self.csv_path)
        return table[table["EncodedPixels"].fillna("").str.strip() != ""]

    def _list(self, report):
        images = images_by_stem(self.images_dir)
        names = {p.name: p for p in images.values()}
        runs = self.runs()
        bad_class = ~runs["ClassId"].isin(range(1, len(self.source_classes) + 1))
        for row in runs[bad_class].itertuples():
            report.error(f"{self.csv_path.name}: {row.ImageId} has ClassId {row.ClassId}; expected 1..{len(self.source_classes)}")
        runs = runs[~bad_class]
        report.annotations = runs["ImageId"].nunique()
        for image_id in sorted(set(runs["ImageId"]) - names.keys()):
            report.error(f"{self.csv_path.name}: {image_id} has runs but no image in {self.images_dir}")
        by_image = {image_id: tuple(zip(rows["ClassId"], rows["EncodedPixels"])) for image_id, rows in runs.groupby("ImageId")}
        return [
            Sample(name, path, str(min(c for c, _ in by_image[name])) if name in by_image else NO_DEFECT, by_image.get(name, ()))
            for name, path in names.items()
        ]

    def _class_masks(self, sample, height, width):
        mask = np.zeros((len(self.source_classes), height, width), np.uint8)
        for class_id, rle in sample.truth:
            try:
                mask[class_id - 1] |= rle_to_mask(rle, height, width)
            except ValueError as error:
                raise ValueError(f"class {class_id}: {error}") from error
        return mask


FORMATS: dict[str, type[DataSource]] = {
    source.format: source for source in (VocSource, FolderSource, MagneticTileSource, CrackForestSource, SeverstalSource,
                                         CocoSource, YoloSegSource, LabelmeSource)
}


def open_source(format: str, root: str | Path, classes: tuple[str, ...] | None = None, binary: bool = False,
                **options) -> DataSource:
    """The ``DataSource`` for a short spec, e.g. ``open_source("magnetic_tile", "data/Magnetic-Tile", binary=True)``.

    Args:
        options: layout options of that format (e.g. ``images="IMAGES"`` for ``voc``).
    """
    if format not in FORMATS:
        raise UnknownName(f"unknown data set format {format!r}; known: {', '.join(FORMATS)}")
    return FORMATS[format](root, classes, binary, **options)

"""One pass over a box-annotated data set that names every bad file before training.

Errors stop a run: unreadable or truncated images, malformed XML, unknown
class names, images whose size differs from their XML, images without XML
and XML without image, empty folders, empty boxes. Warnings do not: boxes
reaching outside the image (they are clipped when masks are made).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm.auto import tqdm

from Utilities.Extract_masks import parse_voc_xml

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


class DataError(ValueError):
    """Raised when a data set has errors; the message lists every one by file name."""


@dataclass
class DataReport:
    """What a check found, file by file."""

    images: int = 0
    annotations: int = 0
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"{self.images} images, {self.annotations} annotations, {len(self.errors)} errors, {len(self.warnings)} warnings"]
        lines += [f"  error: {e}" for e in self.errors] + [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    def raise_if_errors(self) -> DataReport:
        if self.errors:
            raise DataError(f"the data set has errors; nothing was trained:\n{self}")
        return self


def image_size(path: Path) -> tuple[int, int] | None:
    """``(height, width)``, or ``None`` for a file that does not decode or a JPEG cut short.

    OpenCV decodes a truncated JPEG with a grey bottom and only a warning, so
    JPEGs must also end with their end-of-image marker.
    """
    data = path.read_bytes()
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None or (path.suffix.lower() in (".jpg", ".jpeg") and data.rstrip(b"\0")[-2:] != b"\xff\xd9"):
        return None
    return image.shape[:2]


def check_voc_dataset(
    images_dir: str | Path,
    annotations_dir: str | Path,
    classes: tuple[str, ...],
    names: list[str] | None = None,
    ignore_missing: set[str] | frozenset[str] = frozenset(),
    strict: bool = False,
) -> DataReport:
    """Check images against their VOC XML.

    Args:
        images_dir, annotations_dir: the two folders.
        classes: the class names a box may have.
        names: only these image file names (default: every image in the folder).
        ignore_missing: stems whose image may be absent (e.g. moved to the test folder).
        strict: raise ``DataError`` at the first error instead of collecting them all.

    Returns:
        The report; call ``.raise_if_errors()`` to stop on errors.
    """
    images_dir, annotations_dir = Path(images_dir), Path(annotations_dir)
    report = DataReport()

    def error(message: str) -> None:
        report.errors.append(message)
        if strict:
            raise DataError(message)

    for folder in (images_dir, annotations_dir):
        if not folder.is_dir() or not any(folder.iterdir()):
            error(f"{folder}: folder is missing or empty")
    if report.errors:
        return report
    images = {p.stem: p for p in images_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
    if names is not None:
        images = {Path(n).stem: images_dir / n for n in names}
    xmls = {p.stem: p for p in annotations_dir.glob("*.xml")}
    report.images, report.annotations = len(images), len(xmls)
    for stem in sorted(images.keys() - xmls.keys()):
        error(f"{images[stem].name}: no annotation {stem}.xml in {annotations_dir}")
    if names is None:
        for stem in sorted(xmls.keys() - images.keys() - set(ignore_missing)):
            error(f"{xmls[stem].name}: no image in {images_dir}")

    for stem in tqdm(sorted(images.keys() & xmls.keys()), desc="checking data", leave=False):
        image_path = images[stem]
        if not image_path.exists():
            error(f"{image_path.name}: image not found in {images_dir}")
            continue
        try:
            annotation = parse_voc_xml(xmls[stem])
        except ValueError as problem:
            error(str(problem))
            continue
        size = image_size(image_path)
        if size is None:
            error(f"{image_path.name}: unreadable or truncated image")
            continue
        height, width = size
        if (height, width) != (annotation.height, annotation.width):
            error(f"{image_path.name}: image is {width}x{height}, its XML says {annotation.width}x{annotation.height}")
        for box in annotation.boxes:
            where = f"{xmls[stem].name}: box {box.name} ({box.xmin},{box.ymin})-({box.xmax},{box.ymax})"
            if box.name not in classes:
                error(f"{xmls[stem].name}: unknown class {box.name!r}; known: {', '.join(classes)}")
            elif box.xmax < box.xmin or box.ymax < box.ymin:
                error(f"{where} is empty")
            elif box.xmin < 1 or box.ymin < 1 or box.xmax > annotation.width or box.ymax > annotation.height:
                report.warnings.append(f"{where} reaches outside the {annotation.width}x{annotation.height} image; clipped")
    return report

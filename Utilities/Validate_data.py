"""The report of a data check, which names every bad file before training.

Each format in ``Utilities.Formats`` fills it (``DataSource.check``).
Errors stop a run: unreadable or truncated images, malformed annotations,
unknown class names, images whose size differs from their annotation,
images without annotation and annotations without image, empty folders,
empty boxes, masks with unexpected values. Warnings do not: boxes reaching
outside the image (they are clipped when masks are made), unlabelled images.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from Utilities.Errors import UserError


class DataError(UserError, ValueError):
    """Raised when a data set has errors; the message lists every one by file name."""


@dataclass
class DataReport:
    """What a check found, file by file. ``annotations`` counts what the format annotates in: files (VOC XML,
    masks, YOLO label files, labelme JSON, CrackForest ground truths), run-length images (Severstal), or COCO's
    own annotations (one per object)."""

    images: int = 0
    annotations: int = 0
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    strict: bool = False

    def error(self, message: str) -> None:
        """Record an error; in strict mode, stop at once."""
        self.errors.append(message)
        if self.strict:
            raise DataError(message)

    def extend(self, other: DataReport) -> None:
        """Take over another report's findings and counts."""
        self.annotations = max(self.annotations, other.annotations)
        for message in other.errors:
            self.error(message)
        self.warnings += other.warnings

    def __str__(self) -> str:
        lines = [f"{self.images} images, {self.annotations} annotations, {len(self.errors)} errors, {len(self.warnings)} warnings"]
        lines += [f"  error: {e}" for e in self.errors] + [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    def raise_if_errors(self) -> DataReport:
        if self.errors:
            raise DataError(f"the data set has errors:\n{self}")
        return self

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
from pathlib import Path

import cv2
import numpy as np

from Utilities.Errors import UserError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


class DataError(UserError, ValueError):
    """Raised when a data set has errors; the message lists every one by file name."""


@dataclass
class DataReport:
    """What a check found, file by file."""

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
            raise DataError(f"the data set has errors; nothing was trained:\n{self}")
        return self


def decode_image(path: str | Path) -> np.ndarray:
    """The image as stored (OpenCV's BGR order, 8 or 16 bit, 1, 3 or 4 channels); ``ValueError`` naming the
    file and the reason if it does not decode.

    The content decides, not the name (a PNG named ``.jpg`` reads). A JPEG
    without its end-of-image marker is refused: OpenCV decodes a truncated
    JPEG with a grey bottom and only a warning.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ValueError(f"{path}: cannot read the file ({error.strerror})") from error
    if not data:
        raise ValueError(f"{path}: empty file")
    if data[:2] == b"\xff\xd8" and data.rstrip(b"\0")[-2:] != b"\xff\xd9":
        raise ValueError(f"{path}: truncated JPEG (no end-of-image marker)")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ValueError(f"{path}: not an image OpenCV can decode")
    return image


def image_size(path: Path) -> tuple[int, int] | None:
    """``(height, width)``, or ``None`` for a file that does not decode or a JPEG cut short."""
    try:
        return decode_image(path).shape[:2]
    except ValueError:
        return None

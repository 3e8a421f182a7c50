"""Decoding image files: the one place every reader, loader, prediction and check decodes through.

Needs OpenCV and NumPy only, so prediction and data checks decode without
importing albumentations, the DataLoader code or matplotlib.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def decode_image(path: str | Path) -> np.ndarray:
    """The image as stored (OpenCV's BGR order, 8 or 16 bit, 1, 3 or 4 channels); ``ValueError`` naming the
    file and the reason if it does not decode.

    The content decides, not the name (a PNG named ``.jpg`` reads). A JPEG
    without its end-of-image marker is refused: OpenCV decodes a truncated
    JPEG with a grey bottom and only a warning.
    """
    path = Path(path)
    image = cv2.imdecode(np.frombuffer(_checked_bytes(path), np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ValueError(f"{path}: not an image OpenCV can decode")
    return image


_REDUCED = ((4, cv2.IMREAD_REDUCED_COLOR_4), (2, cv2.IMREAD_REDUCED_COLOR_2), (1, cv2.IMREAD_COLOR))


def decode_reduced(path: str | Path, at_least: int) -> np.ndarray:
    """The image in 8-bit BGR colour at 1/8, 1/4 or 1/2 of its size where its longer side stays at least
    ``at_least`` (else whole): a JPEG decodes only what that scale needs, for thumbnails of large images.
    ``ValueError`` as ``decode_image``.

    The 1/8 scale is decoded first (for a JPEG, 1/64 of the work); its size
    then picks the scale to decode, if 1/8 is too small (rarely the next
    finer one too: it tells the size to within 7 pixels).
    """
    path = Path(path)
    data = np.frombuffer(_checked_bytes(path), np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_REDUCED_COLOR_8)
    if image is not None and max(image.shape[:2]) < at_least:
        longer = 8 * max(image.shape[:2])  # the whole image's longer side, to within 7 pixels
        for factor, flag in _REDUCED:
            if longer // factor >= at_least or factor == 1:
                image = cv2.imdecode(data, flag)
                if image is None or max(image.shape[:2]) >= at_least:
                    break
    if image is None:
        raise ValueError(f"{path}: not an image OpenCV can decode")
    return image


def _checked_bytes(path: Path) -> bytes:
    """The file's bytes; ``ValueError`` naming it where it cannot be read, is empty or is a truncated JPEG."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ValueError(f"{path}: cannot read the file ({error.strerror})") from error
    if not data:
        raise ValueError(f"{path}: empty file")
    if data[:2] == b"\xff\xd8" and data.rstrip(b"\0")[-2:] != b"\xff\xd9":
        raise ValueError(f"{path}: truncated JPEG (no end-of-image marker)")
    return data


def image_size(path: Path) -> tuple[int, int] | None:
    """``(height, width)``, or ``None`` for a file that does not decode or a JPEG cut short."""
    try:
        return decode_image(path).shape[:2]
    except ValueError:
        return None


def read_image(path: str | Path) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB from any image file; ``ValueError`` naming the file and the reason if it cannot be.

    16-bit images are scaled to 8 bits, grey ones repeated into three
    channels, an alpha channel dropped (see ``decode_image`` for what is refused).
    """
    image = decode_image(path)
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB if image.shape[2] == 4 else cv2.COLOR_BGR2RGB)

"""Run-length encoding as the Severstal steel-defect competition writes masks.

Pixels are numbered from 1, top to bottom, then left to right (column-major,
``order="F"``); a mask is written as ``"start length start length ..."`` of its
runs of 1s, and an empty mask as an empty string.
"""

from __future__ import annotations

import numpy as np


def mask_to_rle(mask: np.ndarray) -> str:
    """``(H, W)`` 0/1 mask to the competition's run-length string."""
    pixels = np.concatenate([[0], (mask.flatten(order="F") > 0).astype(np.int8), [0]])
    edges = np.flatnonzero(pixels[1:] != pixels[:-1]) + 1  # 1-based starts and ends of runs
    starts, ends = edges[::2], edges[1::2]
    return " ".join(f"{start} {length}" for start, length in zip(starts, ends - starts))


def rle_to_mask(rle: str | float | None, height: int, width: int) -> np.ndarray:
    """The competition's run-length string (empty or NaN for none) to a ``(H, W)`` uint8 0/1 mask.

    Raises:
        ValueError: for an odd number of values or runs outside the image.
    """
    mask = np.zeros(height * width, dtype=np.uint8)
    if isinstance(rle, str) and rle.strip():
        values = np.asarray(rle.split(), dtype=np.int64)
        if len(values) % 2:
            raise ValueError(f"run-length string has an odd number of values ({len(values)})")
        for start, length in zip(values[::2] - 1, values[1::2]):
            if start < 0 or length < 0 or start + length > mask.size:
                raise ValueError(f"run {start + 1} {length} lies outside a {height}x{width} image")
            mask[start : start + length] = 1
    return mask.reshape((height, width), order="F")

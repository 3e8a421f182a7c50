"""Probabilities of an image of any size, one row of overlapping windows at a time.

The windows are placed and blended as MONAI's ``sliding_window_inference``
places and blends them (a stride of three quarters of the window, the last
window flush with the image's end, Gaussian weights with a sigma of an eighth
of the window), but MONAI keeps the whole normalised image and whole-image
output and weight maps in memory, 12 + 4 x (channels + 1) bytes per pixel. The
Gaussian weight is a product of a row weight and a column weight, so the
blended value of a row of pixels only needs the rows of windows that cover it:
``window_rows`` keeps one window's height of running sums and hands finished
rows on, so memory depends on the window and the image's width, not its height.
Where a side (padded to a multiple of 32) is shorter than the window, the
window shrinks to it; MONAI would pad the image up to the window instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

SIGMA_SCALE = 0.125  # MONAI's default for its Gaussian importance map
GRID = 32  # windows start on the image's stride-32 grid (encoders with five poolings; TensorFlow's SAME padding)


def window_starts(length: int, window: int, overlap: float) -> list[int]:
    """Where windows of ``window`` pixels start along a side of ``length`` (a multiple of ``GRID``)."""
    if length <= window:
        return [0]
    stride = max(GRID, int(window * (1 - overlap)) // GRID * GRID)
    return [*range(0, length - window, stride), length - window]


def gaussian_weights(window: int) -> np.ndarray:
    """``(window,)`` float32 blending weights: 1 at the centre, a floor at the edges so every pixel has weight."""
    distance = (np.arange(window) - (window - 1) / 2) / (SIGMA_SCALE * window)
    return np.maximum(np.exp(-0.5 * distance**2), 1e-6).astype(np.float32)


def window_rows(
    predict: Callable[[np.ndarray], np.ndarray],
    rows: Callable[[int, int], np.ndarray],
    height: int,
    width: int,
    window: int,
    overlap: float,
) -> Iterator[tuple[int, np.ndarray]]:
    """Blended probabilities of an image, as consecutive blocks of finished rows.

    Args:
        predict: ``(h, w, 3)`` uint8 pixels to ``(C, h, w)`` float32 probabilities.
        rows: ``rows(top, bottom)`` gives the image's ``(bottom - top, width, 3)``
            uint8 rows; it is called with increasing ``top``, so a reader may
            stream the file.
        height, width: the image's size.
        window: the window's side, a multiple of ``GRID``.
        overlap: the fraction by which neighbouring windows overlap.

    Yields:
        ``(top, probabilities (C, h, width))`` covering rows 0 to ``height`` in order.
    """
    padded = [-(-side // GRID) * GRID for side in (height, width)]
    tall, wide = (min(window, side) for side in padded)
    row_weight, column_weight = gaussian_weights(tall), gaussian_weights(wide)
    columns = window_starts(padded[1], wide, overlap)
    column_total = np.zeros(width, np.float32)
    for left in columns:
        column_total[left : left + wide] += column_weight[: width - left]
    total = sums = None  # running sums over the rows [top, top + tall)
    top = 0
    for start in window_starts(padded[0], tall, overlap):
        if start > top:  # rows above this row of windows are finished
            yield top, _finished(sums, total, column_total, start - top)
            sums = np.concatenate([sums[:, start - top :], np.zeros_like(sums[:, : start - top])], axis=1)
            total = np.concatenate([total[start - top :], np.zeros_like(total[: start - top])])
            top = start
        pixels = rows(start, min(start + tall, height))
        for left in columns:
            probabilities = predict(pixels[:, left : left + wide])
            if sums is None:
                sums, total = np.zeros((len(probabilities), tall, width), np.float32), np.zeros(tall, np.float32)
            h, w = probabilities.shape[1:]
            sums[:, :h, left : left + w] += probabilities * row_weight[:h, None] * column_weight[None, :w]
        total[: len(pixels)] += row_weight[: len(pixels)]
    yield top, _finished(sums, total, column_total, height - top)


def _finished(sums: np.ndarray, total: np.ndarray, column_total: np.ndarray, count: int) -> np.ndarray:
    return sums[:, :count] / (total[:count, None] * column_total[None, :])

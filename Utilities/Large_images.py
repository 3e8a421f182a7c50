"""Prediction of image files too large to hold whole, in memory that does not grow with the image's height.

A full-resolution model predicts an image with a side above its tile size
window by window (``Sliding_window``). For a file, the whole pipeline streams:
libvips (``pyvips``) decodes the rows in order as the windows need them, the
blended probabilities go to a scratch file beside the outputs, the
post-processing runs on bands of rows with the context its steps need
(``PostProcessing.context_rows``) once the image-level probabilities are
known, and libvips composes the overlay from the file and the label map.
What stays whole is the label map, one byte per pixel.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import pyvips

from Utilities.Overlay import COLOURS, OVERLAY_ALPHA
from Utilities.Postprocess import DOMINANT_THRESHOLD, defect_present, dominant_class, label_map
from Utilities.Sliding_window import window_rows

BAND = 512  # rows post-processed at a time
CHUNK = 256  # rows decoded at a time


def header_size(path: Path) -> tuple[int, int] | None:
    """``(height, width)`` from the file's header, or ``None`` where libvips cannot read it (``read_image`` then
    names the problem)."""
    try:
        header = pyvips.Image.new_from_file(str(path))
    except pyvips.Error:
        return None
    return header.height, header.width


def open_rgb(path: Path) -> pyvips.Image:
    """The file as 8-bit RGB, decoded lazily top to bottom, converted as ``read_image`` converts (16 bits to 8,
    grey to three channels, alpha dropped); reading pixels of a truncated file raises ``pyvips.Error``."""
    image = pyvips.Image.new_from_file(str(path), access="sequential", fail_on="truncated")
    if image.interpretation == "cmyk":
        image = image.colourspace("srgb")
    if image.format == "ushort":
        image = (image >> 8).cast("uchar")
    colour_bands = image.bands - int(image.hasalpha())
    image = image.extract_band(0, n=min(colour_bands, 3))
    return image.bandjoin([image, image]) if colour_bands == 1 else image


class RowReader:
    """``reader(top, bottom)``: an image's rows as ``(bottom - top, width, 3)`` uint8, for increasing ``top``.

    Each row is decoded once; the rows a later call can ask for again (windows overlap) are kept.
    """

    def __init__(self, image: pyvips.Image):
        self.image = image
        self.first = 0  # the image row of kept[0]
        self.kept = np.empty((0, image.width, 3), np.uint8)

    def __call__(self, top: int, bottom: int) -> np.ndarray:
        end = self.first + len(self.kept)
        if bottom > end:
            # each read starts where the last one stopped and ends on a multiple of CHUNK rows: libvips's sequential
            # loaders decode strips of rows (8, 16 or more) and refuse to go back into a strip already passed
            stop = min(self.image.height, -(-bottom // CHUNK) * CHUNK)
            new = self.image.crop(0, end, self.image.width, stop - end).numpy().reshape(stop - end, self.image.width, 3)
            self.kept = np.concatenate([self.kept, new])
        self.kept, self.first = self.kept[top - self.first :], top
        return self.kept[: bottom - top]


class LargePrediction(NamedTuple):
    labels: np.ndarray  # (H, W) uint8, as Inference writes it: 0 background, k = k-th class
    areas: np.ndarray  # (C,) pixels of each class in ``labels``
    max_probability: np.ndarray  # (C,) the highest pixel probability of each class
    defect: bool  # any post-processed mask pixel: the image-level decision


def predict_large_image(predictor, path: Path, scratch: Path) -> LargePrediction:
    """What ``predict_folder`` writes for an image file above ``predictor.tile_size``, streamed (see above).

    ``scratch`` holds the float32 probabilities between the two passes (``C x H x W x 4`` bytes on disk); it is
    removed at the end. Raises ``pyvips.Error`` for a file that cannot be decoded to its end.
    """
    image = open_rgb(path)
    try:
        peak, image_values, over_threshold = _probabilities_to_file(predictor, image, scratch)
        keep = dominant_class(over_threshold, peak) if predictor.dominant_class_only else np.ones(len(peak), np.float32)
        image_probabilities = peak if image_values is None else image_values
        return _labels_from_file(predictor, scratch, (image.height, image.width), image_probabilities, keep, peak * keep)
    finally:
        scratch.unlink(missing_ok=True)


def _probabilities_to_file(predictor, image: pyvips.Image, scratch: Path):
    """First pass: blended probabilities to ``scratch`` as rows of ``(C, W)`` float32, and the whole image's
    per-class peak, image-head values (``None`` without a head) and pixels over threshold."""
    channels = len(predictor.classes)
    peak, over_threshold, image_values = np.zeros(channels, np.float32), np.zeros(channels, np.int64), None
    blocks = window_rows(predictor.window_probabilities, RowReader(image), image.height, image.width,
                         predictor.tile_size, predictor.tile_overlap)
    with open(scratch, "wb") as file:
        for _, block in blocks:
            probabilities, extra = block[:channels], block[channels:]
            peak = np.maximum(peak, probabilities.max(axis=(1, 2)))
            over_threshold += (probabilities >= DOMINANT_THRESHOLD).sum(axis=(1, 2))
            if len(extra):  # image-head channels: each image value is its map's maximum (split_image_logits)
                values = extra.max(axis=(1, 2))
                image_values = values if image_values is None else np.maximum(image_values, values)
            file.write(np.ascontiguousarray(probabilities.transpose(1, 0, 2)).tobytes())
    return peak, image_values, over_threshold


def _labels_from_file(predictor, scratch: Path, size: tuple[int, int], image_probabilities: np.ndarray,
                      keep: np.ndarray, peak: np.ndarray) -> LargePrediction:
    """Second pass: the post-processed label map, band by band, from the probabilities in ``scratch``."""
    (height, width), channels = size, len(keep)
    context = predictor.postprocessing.context_rows()
    labels, areas, defect = np.zeros((height, width), np.uint8), np.zeros(channels, np.int64), False
    with open(scratch, "rb") as file:
        for top in range(0, height, BAND):
            bottom = min(top + BAND, height)
            first, last = max(0, top - context), min(height, bottom + context)
            file.seek(first * channels * width * 4)
            rows = np.fromfile(file, np.float32, (last - first) * channels * width).reshape(last - first, channels, width)
            probabilities = rows.transpose(1, 0, 2) * keep[:, None, None]
            masks = predictor.masks(probabilities, image_probabilities)[:, top - first : bottom - first]
            labels[top:bottom] = label_map(masks, probabilities[:, top - first : bottom - first])
            areas += np.bincount(labels[top:bottom].ravel(), minlength=channels + 1)[1:]
            defect |= defect_present(masks)
    return LargePrediction(labels, areas, peak, defect)


def overlay_jpeg(path: Path, labels: np.ndarray) -> bytes:
    """The file's image with each labelled pixel tinted in its class colour (as ``Overlay.overlay``), as JPEG bytes,
    composed by libvips from the file row by row."""
    image = open_rgb(path)
    palette = np.zeros((1, 256, 3), np.uint8)
    palette[0, 1 : len(COLOURS) + 1] = COLOURS
    label_image = pyvips.Image.new_from_memory(labels.data, labels.shape[1], labels.shape[0], 1, "uchar")
    colours = label_image.maplut(pyvips.Image.new_from_array(palette))
    tinted = image * (1 - OVERLAY_ALPHA) + colours * OVERLAY_ALPHA
    return (label_image > 0).ifthenelse(tinted, image).cast("uchar").write_to_buffer(".jpg", Q=95)

"""Predicted masks as one COCO instances file, for CVAT or Label Studio to import as pre-annotations.

Each connected region of a class in an image's label mask is one annotation:
its category, its pixels as compressed RLE (``iscrowd`` 1, as COCO stores
masks; exact, so the ``coco`` reader gives back the predicted masks), its box
and area, and a ``score``: the image's highest probability of that class
(``predictions.csv``'s ``max_probability_<class>``). Corrected labels exported
by the tool come back through the same ``coco`` reader as training data.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
from pycocotools import mask as coco_mask

from Utilities.Files import atomic_write
from Utilities.Images import decode_image

COCO_PREDICTIONS = "predictions_coco.json"


def instances(labels: np.ndarray, classes: tuple[str, ...]) -> Iterator[tuple[int, np.ndarray]]:
    """``(class index, region mask)`` for every 8-connected region of each class of a label mask (0 background),
    one region at a time."""
    for k in range(len(classes)):
        count, regions = cv2.connectedComponents((labels == k + 1).astype(np.uint8), connectivity=8)
        for region in range(1, count):
            yield k, (regions == region).astype(np.uint8)


def coco_annotation(region: np.ndarray, category_id: int, image_id: int, annotation_id: int, score: float) -> dict:
    """One region as a COCO annotation with compressed RLE."""
    rle = coco_mask.encode(np.asfortranarray(region))
    return {"id": annotation_id, "image_id": image_id, "category_id": category_id, "iscrowd": 1,
            "segmentation": {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")},
            "area": int(coco_mask.area(rle)), "bbox": [float(v) for v in coco_mask.toBbox(rle)], "score": round(score, 4)}


def coco_predictions(images: list[dict], classes: tuple[str, ...]) -> dict:
    """The COCO document of predicted images.

    Args:
        images: per image ``file_name`` (as the tool will find it), ``mask`` (its label-mask PNG) and
            ``scores`` (one per class).
    """
    document = {"info": {"description": "predicted masks (Utilities.Inference)"}, "images": [], "annotations": [],
                "categories": [{"id": k + 1, "name": name, "supercategory": ""} for k, name in enumerate(classes)]}
    for image_id, image in enumerate(images, 1):
        labels = decode_image(image["mask"])
        document["images"].append({"id": image_id, "file_name": image["file_name"], "height": int(labels.shape[0]),
                                   "width": int(labels.shape[1])})
        for k, region in instances(labels, classes):
            document["annotations"].append(coco_annotation(region, k + 1, image_id, len(document["annotations"]) + 1,
                                                           float(image["scores"][k])))
    return document


def write_coco_predictions(images: list[dict], classes: tuple[str, ...], out: Path) -> Path:
    """``coco_predictions`` written to ``out/predictions_coco.json``."""
    path = Path(out) / COCO_PREDICTIONS
    text = json.dumps(coco_predictions(images, classes))
    atomic_write(path, lambda partial: partial.write_text(text))
    return path

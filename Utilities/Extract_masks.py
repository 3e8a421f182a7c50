"""Pascal VOC box annotations (NEU-DET style) to label tables and masks.

Box edge convention: VOC coordinates are 1-based and inclusive, so a box
``xmin=2, xmax=4`` covers the pixel columns 1, 2 and 3 of a 0-based array, i.e.
the slice ``[xmin - 1 : xmax]``. Boxes reaching outside the image are clipped
to it.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

NEU_DET_CLASSES = (
    "crazing",
    "inclusion",
    "patches",
    "pitted_surface",
    "rolled-in_scale",
    "scratches",
)


@dataclass(frozen=True)
class Box:
    """One annotated defect; coordinates as written in the XML (1-based, inclusive)."""

    name: str
    xmin: int
    ymin: int
    xmax: int
    ymax: int


@dataclass(frozen=True)
class Annotation:
    """The content of one VOC XML file."""

    filename: str
    width: int
    height: int
    boxes: tuple[Box, ...]


def parse_voc_xml(path: str | Path) -> Annotation:
    """Read one Pascal VOC XML file.

    Raises:
        ValueError: naming the file, when the XML is malformed or lacks
            ``<size>`` or a box coordinate.
    """
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
        size = root.find("size")
        width = int(size.findtext("width"))
        height = int(size.findtext("height"))
        boxes = tuple(
            Box(
                name=obj.findtext("name").strip(),
                **{k: int(float(obj.find("bndbox").findtext(k))) for k in ("xmin", "ymin", "xmax", "ymax")},
            )
            for obj in root.iter("object")
        )
    except (ET.ParseError, AttributeError, TypeError, ValueError) as error:
        raise ValueError(f"{path}: not a valid Pascal VOC annotation ({error})") from error
    filename = root.findtext("filename") or path.with_suffix(".jpg").name
    return Annotation(filename=filename.strip(), width=width, height=height, boxes=boxes)


def boxes_to_mask(boxes: tuple[Box, ...] | list[Box], height: int, width: int, classes: tuple[str, ...]) -> np.ndarray:
    """Paint boxes into one binary channel per class.

    Args:
        boxes: boxes in VOC coordinates (1-based, inclusive).
        height, width: size of the image.
        classes: class names; a box whose name is not among them raises.

    Returns:
        ``(len(classes), height, width)`` uint8 mask of 0/1.
    """
    mask = np.zeros((len(classes), height, width), dtype=np.uint8)
    for box in boxes:
        if box.name not in classes:
            raise KeyError(f"unknown class {box.name!r}; known classes: {', '.join(classes)}")
        x0, y0 = max(box.xmin - 1, 0), max(box.ymin - 1, 0)
        x1, y1 = min(max(box.xmax, 0), width), min(max(box.ymax, 0), height)  # never a negative slice end
        mask[classes.index(box.name), y0:y1, x0:x1] = 1
    return mask


def class_of(image_name: str, classes: tuple[str, ...] = NEU_DET_CLASSES) -> str:
    """The class that NEU-DET encodes in a file name (``rolled-in_scale_12.jpg``)."""
    stem = Path(image_name).stem.rsplit("_", 1)[0]
    if stem not in classes:
        raise KeyError(f"{image_name}: no known class in the name; known classes: {', '.join(classes)}")
    return stem


def label_table(annotation_dir: str | Path, classes: tuple[str, ...] = NEU_DET_CLASSES) -> pd.DataFrame:
    """One row per XML file: image name, a 0/1 column per class, number of defects.

    Returns:
        DataFrame with columns ``image``, one per class, ``n_defects``,
        ``width``, ``height``; sorted by image name.
    """
    rows = []
    for xml_path in sorted(Path(annotation_dir).glob("*.xml")):
        annotation = parse_voc_xml(xml_path)
        present = {box.name for box in annotation.boxes}
        rows.append(
            {
                "image": xml_path.with_suffix(".jpg").name,
                **{name: int(name in present) for name in classes},
                "n_defects": len(annotation.boxes),
                "width": annotation.width,
                "height": annotation.height,
            }
        )
    counts = {name: int for name in (*classes, "n_defects", "width", "height")}
    return pd.DataFrame(rows, columns=["image", *classes, "n_defects", "width", "height"]).astype(counts)


def box_table(annotation_dir: str | Path) -> pd.DataFrame:
    """One row per box, for exploring sizes and shapes.

    Returns:
        DataFrame with ``image``, ``class``, the four coordinates, ``box_width``,
        ``box_height``, ``area_fraction`` (box area over image area) and ``aspect``
        (width over height).
    """
    rows = []
    for xml_path in sorted(Path(annotation_dir).glob("*.xml")):
        annotation = parse_voc_xml(xml_path)
        for box in annotation.boxes:
            box_width, box_height = box.xmax - box.xmin + 1, box.ymax - box.ymin + 1
            rows.append(
                {
                    "image": xml_path.with_suffix(".jpg").name,
                    "class": box.name,
                    "xmin": box.xmin,
                    "ymin": box.ymin,
                    "xmax": box.xmax,
                    "ymax": box.ymax,
                    "box_width": box_width,
                    "box_height": box_height,
                    "area_fraction": box_width * box_height / (annotation.width * annotation.height),
                    "aspect": box_width / box_height,
                }
            )
    return pd.DataFrame(rows)


def mask_from_xml(xml_path: str | Path, classes: tuple[str, ...] = NEU_DET_CLASSES) -> np.ndarray:
    """``(C, H, W)`` uint8 mask of the boxes in one XML file."""
    annotation = parse_voc_xml(xml_path)
    return boxes_to_mask(annotation.boxes, annotation.height, annotation.width, classes)

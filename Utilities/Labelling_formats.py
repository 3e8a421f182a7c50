"""Readers of what labelling tools (CVAT, Label Studio, labelme, Roboflow) export, behind ``DataSource``.

- ``coco``: COCO instance annotations: ``<split>/_annotations.coco.json`` (Roboflow), else
  ``annotations/*.json`` (CVAT, COCO itself), else a JSON at the root (Label Studio's
  ``result.json``); images beside the JSON, at the root, in ``images/`` or in the folder the
  JSON is named after (``instances_train2017.json``: ``train2017/``). Polygons and RLE
  (``iscrowd``, compressed or not) decoded by ``pycocotools``; an annotation with only a box is
  painted as a filled box; images without annotations are defect-free; classes are the
  categories by id (unused placeholders left out: Roboflow's supercategory of the others,
  labelme2coco's ``_background_``).
- ``yolo_seg``: Ultralytics segmentation labels: ``.../images/.../<stem>.jpg`` with
  ``.../labels/.../<stem>.txt``, one ``class x1 y1 x2 y2 ...`` polygon per line in coordinates
  normalised to 0..1 (a 5-number line is a ``class cx cy w h`` box); class names from
  ``data.yaml``; an image without a label file is a background image, as Ultralytics reads it.
- ``labelme``: one labelme JSON per image (``imagePath`` relative to the JSON): polygons,
  rectangles and circles; classes are the labels, sorted (``__ignore__`` and ``_background_``,
  labelme2voc's, read as background); images without a JSON are unlabelled.

Every reader names the file, and the annotation or line, that it cannot read.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from pathlib import Path, PureWindowsPath
from typing import NamedTuple

import cv2
import numpy as np
import yaml
from PIL import Image, ImageDraw
from pycocotools import mask as coco_mask

from Utilities.Data_source import NO_DEFECT, SPLIT_FOLDERS, DataSource, Sample
from Utilities.Images import IMAGE_SUFFIXES


def split_of(*folder_names: str) -> str | None:
    """The split a folder name stands for (``train2017``, ``valid``: train, val), or ``None``."""
    for name in folder_names:
        split = SPLIT_FOLDERS.get(re.sub(r"\d+$", "", name.lower()))
        if split:
            return split
    return None


def _load_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path.name}: not readable JSON ({error})") from error


def paint_polygon(mask: np.ndarray, polygon: np.ndarray) -> None:
    """Fill a pixel-coordinate ``(N, 2)`` polygon into ``mask`` with 1."""
    cv2.fillPoly(mask, [np.round(polygon).astype(np.int32)], 1)


def paint_box(mask: np.ndarray, x: float, y: float, width: float, height: float) -> None:
    """Fill the pixels of a box given by its top-left corner and size."""
    x0, y0 = max(int(round(x)), 0), max(int(round(y)), 0)
    mask[y0 : max(int(round(y + height)), y0 + 1), x0 : max(int(round(x + width)), x0 + 1)] = 1


# --- COCO ------------------------------------------------------------------------------------


class CocoImage(NamedTuple):
    """Where a COCO image's truth lives: its JSON, its size there, and its annotations."""

    json: Path
    height: int
    width: int
    annotations: tuple[tuple[str, dict], ...]  # (class name, annotation)


def coco_files(root: Path) -> list[Path]:
    """The COCO JSON files of a data set folder: Roboflow's split folders, else ``annotations/`` (its
    ``instances_*.json`` where there are), else the folder's own JSON files (the first of these places that
    has any, so copies elsewhere are not read twice)."""
    roboflow = [root / folder / "_annotations.coco.json" for folder in SPLIT_FOLDERS
                if (root / folder / "_annotations.coco.json").is_file()]
    annotations = sorted((root / "annotations").glob("instances_*.json")) or sorted((root / "annotations").glob("*.json"))
    return roboflow or annotations or sorted(root.glob("*.json"))  # COCO's captions_*.json are not instances


def coco_classes(coco: dict) -> list[dict]:
    """The categories by id, without an unused placeholder: the others' supercategory (Roboflow's) or a
    background category (labelme2coco's ``_background_``)."""
    used = {a.get("category_id") for a in coco.get("annotations", [])}
    parents = {c.get("supercategory") for c in coco.get("categories", []) if c.get("supercategory") != c["name"]}

    def placeholder(category: dict) -> bool:
        return category["name"] in parents or category["name"].strip("_").lower() == "background"

    return sorted((c for c in coco.get("categories", []) if c["id"] in used or not placeholder(c)), key=lambda c: c["id"])


def coco_annotation_mask(annotation: dict, height: int, width: int) -> np.ndarray:
    """One annotation as an ``(H, W)`` uint8 0/1 mask: polygons, RLE (compressed or not), or else its box."""
    segmentation = annotation.get("segmentation")
    if isinstance(segmentation, dict):
        if list(segmentation.get("size", [])) != [height, width]:
            raise ValueError(f"RLE of size {segmentation.get('size')}, its image is {height}x{width} (height x width)")
        rle = coco_mask.frPyObjects(segmentation, height, width) if isinstance(segmentation["counts"], list) else segmentation
        return coco_mask.decode(rle)
    if segmentation:
        if any(len(polygon) < 6 or len(polygon) % 2 for polygon in segmentation):
            raise ValueError("a polygon with fewer than 3 points or an odd number of coordinates")
        return coco_mask.decode(coco_mask.merge(coco_mask.frPyObjects(segmentation, height, width)))
    mask = np.zeros((height, width), np.uint8)
    if len(annotation.get("bbox", [])) != 4:
        raise ValueError("neither a segmentation nor a bbox")
    paint_box(mask, *annotation["bbox"])
    return mask


class CocoSource(DataSource):
    """COCO instance annotations, as CVAT, Label Studio and Roboflow export them (see the module docstring)."""

    format = "coco"
    default_classes = ("defect",)

    @classmethod
    def classes_in(cls, root: Path) -> tuple[str, ...]:
        names: dict[str, int] = {}  # every file's classes, by their lowest category id
        for path in coco_files(Path(root)):
            try:
                for category in coco_classes(_load_json(path)):
                    names[category["name"]] = min(names.get(category["name"], category["id"]), category["id"])
            except (ValueError, KeyError, TypeError):
                continue
        return tuple(sorted(names, key=lambda name: (names[name], name))) or cls.default_classes

    def _list(self, report):
        files = coco_files(self.root)
        if not files:
            report.error(f"{self.root}: no COCO JSON in annotations/, <split>/_annotations.coco.json or the folder itself")
        samples, listed_in = [], {}
        for path in files:
            try:
                found = self._samples_of(path, _load_json(path), report)
            except (ValueError, KeyError, TypeError) as problem:
                report.error(f"{path.name}: not COCO instance annotations ({problem})")
                continue
            for sample in found:
                if sample.name in listed_in:
                    report.error(f"{sample.name}: listed in {listed_in[sample.name].relative_to(self.root)} and in "
                                 f"{path.relative_to(self.root)}; keep it in one of them")
                else:
                    listed_in[sample.name] = path
                    samples.append(sample)
        return samples

    def _samples_of(self, path: Path, coco: dict, report) -> list[Sample]:
        names = {c["id"]: c["name"] for c in coco["categories"]}
        by_image: dict[int, list[tuple[str, dict]]] = {image["id"]: [] for image in coco["images"]}
        report.annotations += len(coco["annotations"])
        for annotation in coco["annotations"]:
            where = f"{path.name}: annotation {annotation.get('id')}"
            if annotation.get("image_id") not in by_image:
                report.error(f"{where} is of image id {annotation.get('image_id')}, which is not in images")
            elif names.get(annotation.get("category_id")) not in self.source_classes:
                report.error(f"{where} has category {names.get(annotation.get('category_id'), annotation.get('category_id'))!r}; "
                             f"known: {', '.join(self.source_classes)}")
            else:
                by_image[annotation["image_id"]].append((names[annotation["category_id"]], annotation))
        samples = []
        subset = path.stem.removeprefix("instances_")  # train2017, default (CVAT)
        split = split_of(*([] if path.parent == self.root else [path.parent.name]), subset)
        for image in coco["images"]:
            file = self._image_file(path, image["file_name"])
            if file is None:
                report.error(f"{path.name}: image {image['file_name']} not found beside the JSON, in {self.root} or its images/")
                continue
            annotations = tuple(by_image[image["id"]])
            classes = Counter(name for name, _ in annotations)
            truth = CocoImage(path, int(image["height"]), int(image["width"]), annotations)
            samples.append(Sample(file.relative_to(self.root).as_posix(), file,
                                  classes.most_common(1)[0][0] if classes else NO_DEFECT, truth, split))
        return samples

    def _image_file(self, path: Path, file_name: str) -> Path | None:
        subset = path.stem.removeprefix("instances_")
        folders = (path.parent, self.root, self.root / "images", path.parent.parent / "images", self.root / subset,
                   self.root / "images" / subset)  # COCO's train2017/, CVAT's images/default/
        for candidate in [folder / file_name for folder in folders] + [folder / Path(file_name).name for folder in folders]:
            if candidate.is_file():
                return candidate
        return None

    def _class_masks(self, sample, height, width):
        truth = sample.truth
        if (truth.height, truth.width) != (height, width):
            raise ValueError(f"image is {width}x{height}, {truth.json.name} says {truth.width}x{truth.height}")
        mask = np.zeros((len(self.source_classes), height, width), np.uint8)
        for name, annotation in truth.annotations:
            try:
                mask[self.source_classes.index(name)] |= coco_annotation_mask(annotation, height, width)
            except (ValueError, TypeError, KeyError) as problem:
                raise ValueError(f"{truth.json.name}: annotation {annotation.get('id')}: {problem}") from problem
        return mask


# --- YOLO segmentation -----------------------------------------------------------------------


class YoloSegSource(DataSource):
    """Ultralytics YOLO segmentation labels (see the module docstring)."""

    format = "yolo_seg"
    default_classes = ("defect",)

    @classmethod
    def classes_in(cls, root: Path) -> tuple[str, ...]:
        for path in [Path(root) / "data.yaml", *sorted(Path(root).glob("*.yaml"))]:
            if path.is_file():
                try:
                    names = yaml.safe_load(path.read_text(encoding="utf-8"))["names"]
                except (OSError, yaml.YAMLError, KeyError, TypeError):
                    continue
                return tuple(str(names[k]) for k in sorted(names)) if isinstance(names, dict) else tuple(map(str, names))
        return cls.default_classes

    def _list(self, report):
        samples, labels = [], set()
        for image in sorted(p for p in self.root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
            folders = image.relative_to(self.root).parts[:-1]
            if "images" not in folders:
                continue
            at = len(folders) - 1 - folders[::-1].index("images")  # the last images/ in the path
            label_file = self.root.joinpath(*folders[:at], "labels", *folders[at + 1 :], image.stem + ".txt")
            labels.add(label_file)
            truth = label_file if label_file.is_file() else None
            samples.append(Sample(image.relative_to(self.root).as_posix(), image, self._label(label_file), truth,
                                  split_of(*folders[at + 1 :], *folders[:at][-1:])))
        for orphan in sorted(set(self.root.rglob("labels/**/*.txt")) - labels):
            report.error(f"{orphan.relative_to(self.root)}: no image of that name in the images/ folder beside labels/")
        backgrounds = sum(s.truth is None for s in samples)
        report.annotations = len(samples) - backgrounds
        if backgrounds:
            report.warnings.append(f"{backgrounds} images have no label file; read as background (defect-free) images")
        if not samples:
            report.error(f"{self.root}: no images in an images/ folder (YOLO layout: images/ with labels/ beside it)")
        return samples

    def _label(self, label_file: Path) -> str:
        if not label_file.is_file():
            return NO_DEFECT
        try:
            ids = Counter(int(line.split()[0]) for line in label_file.read_text().splitlines() if line.strip())
        except (ValueError, OSError):
            return "unreadable"
        if not ids:
            return NO_DEFECT
        most = ids.most_common(1)[0][0]
        return self.source_classes[most] if 0 <= most < len(self.source_classes) else "unreadable"

    def _class_masks(self, sample, height, width):
        mask = np.zeros((len(self.source_classes), height, width), np.uint8)
        if sample.truth is None:
            return mask
        for number, line in enumerate(sample.truth.read_text().splitlines(), 1):
            values = line.split()
            if not values:
                continue
            where = f"{sample.truth.name} line {number}"
            try:
                class_id, coordinates = int(values[0]), np.array(values[1:], dtype=np.float64)
            except ValueError as error:
                raise ValueError(f"{where}: not numbers ({error})") from error
            if not 0 <= class_id < len(self.source_classes):
                raise ValueError(f"{where}: class {class_id}; data.yaml names {len(self.source_classes)} "
                                 f"(0..{len(self.source_classes) - 1})")
            if len(coordinates) < 4 or len(coordinates) % 2:
                raise ValueError(f"{where}: {len(coordinates)} coordinates; expected x y pairs (3 points or more) or a box")
            if (coordinates < -0.01).any() or (coordinates > 1.01).any():
                raise ValueError(f"{where}: coordinates outside 0..1; YOLO labels are normalised by the image size")
            if len(coordinates) == 4:  # a detection box: centre and size
                cx, cy, w, h = coordinates * (width, height, width, height)
                paint_box(mask[class_id], cx - w / 2, cy - h / 2, w, h)
            else:
                paint_polygon(mask[class_id], coordinates.reshape(-1, 2) * (width, height))
        return mask


# --- labelme ---------------------------------------------------------------------------------


LABELME_AREAS = ("polygon", "rectangle", "circle", "oriented_rectangle")
LABELME_NOT_CLASSES = ("__ignore__", "_background_")  # labelme2voc's labels for regions to ignore and background


def is_labelme_area(shape: dict) -> bool:
    """Whether a labelme shape is an area of a class (not a line or point, nor ignored or background)."""
    return (shape.get("shape_type") or "polygon") in LABELME_AREAS and shape.get("label") not in LABELME_NOT_CLASSES


def labelme_areas(annotation: dict) -> list[dict]:
    """The shapes of a labelme file that are areas of a class."""
    return [shape for shape in annotation.get("shapes", []) if is_labelme_area(shape)]


def labelme_shape_mask(shape: dict, height: int, width: int) -> np.ndarray:
    """One labelme shape as an ``(H, W)`` uint8 0/1 mask, drawn as labelme draws it (PIL, outline included)."""
    points = [tuple(point) for point in np.array(shape["points"], dtype=np.float64).reshape(-1, 2).tolist()]
    mask = Image.new("L", (width, height), 0)
    draw, kind = ImageDraw.Draw(mask), shape.get("shape_type") or "polygon"
    if kind in ("polygon", "oriented_rectangle") and len(points) >= 3:
        draw.polygon(points, outline=1, fill=1)
    elif kind == "rectangle" and len(points) == 2:
        (x0, y0), (x1, y1) = points
        draw.rectangle(((min(x0, x1), min(y0, y1)), (max(x0, x1), max(y0, y1))), outline=1, fill=1)
    elif kind == "circle" and len(points) == 2:
        (cx, cy), (px, py) = points
        radius = float(np.hypot(px - cx, py - cy))
        draw.ellipse(((cx - radius, cy - radius), (cx + radius, cy + radius)), outline=1, fill=1)
    else:
        raise ValueError(f"a {kind} with {len(points)} points")
    return np.array(mask, dtype=np.uint8)


class LabelmeSource(DataSource):
    """labelme JSON files, one per image (see the module docstring)."""

    format = "labelme"
    default_classes = ("defect",)

    @classmethod
    def classes_in(cls, root: Path) -> tuple[str, ...]:
        labels = set()
        for path in Path(root).rglob("*.json"):
            try:
                labels |= {s["label"] for s in labelme_areas(_load_json(path))}
            except (ValueError, KeyError, TypeError, AttributeError):
                continue
        return tuple(sorted(labels)) or cls.default_classes

    def _list(self, report):
        samples, skipped = [], Counter()
        for path in sorted(self.root.rglob("*.json")):
            where = path.relative_to(self.root)
            try:
                annotation = _load_json(path)
                image = Path(os.path.normpath(path.parent / PureWindowsPath(annotation["imagePath"]).as_posix()))
            except (ValueError, KeyError, TypeError) as problem:
                report.error(f"{where}: not a labelme file ({problem})")
                continue
            if not image.is_file():  # labelme saves the JSON beside its image
                image = next((path.with_suffix(s) for s in IMAGE_SUFFIXES if path.with_suffix(s).is_file()), image)
            if not image.is_file() or not image.is_relative_to(self.root):
                report.error(f"{where}: its image {annotation['imagePath']} is not there or not below {self.root}")
                continue
            brushes = sum(s.get("shape_type") == "mask" for s in annotation.get("shapes", []))
            if brushes:
                report.error(f"{where}: {brushes} mask (brush) shapes, which are not read; draw them as polygons")
            shapes = labelme_areas(annotation)
            skipped.update(s.get("label") if s.get("label") in LABELME_NOT_CLASSES else s.get("shape_type")
                           for s in annotation.get("shapes", []) if s not in shapes)
            for shape in shapes:
                if shape.get("label") not in self.source_classes:
                    report.error(f"{path.name}: unknown label {shape.get('label')!r}; known: {', '.join(self.source_classes)}")
            labels = Counter(s.get("label") for s in shapes)
            samples.append(Sample(image.relative_to(self.root).as_posix(), image,
                                  labels.most_common(1)[0][0] if labels else NO_DEFECT, path))
        report.annotations = len(samples)
        if skipped:
            report.warnings.append("shapes left out (not areas of a class; read as background): "
                                   + ", ".join(f"{n} {k}" for k, n in sorted(skipped.items())))
        listed = {s.image for s in samples}
        unlabelled = [p for p in self.root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p not in listed]
        if unlabelled:
            report.warnings.append(f"{len(unlabelled)} images have no labelme JSON and are left out as unlabelled "
                                   "(save an empty annotation in labelme to mark an image defect-free)")
        return samples

    def _class_masks(self, sample, height, width):
        annotation = _load_json(sample.truth)
        stated = (annotation.get("imageHeight"), annotation.get("imageWidth"))
        if None not in stated and stated != (height, width):
            raise ValueError(f"image is {width}x{height}, {sample.truth.name} says {stated[1]}x{stated[0]}")
        mask = np.zeros((len(self.source_classes), height, width), np.uint8)
        for number, shape in enumerate(annotation.get("shapes", []), 1):
            if not is_labelme_area(shape):
                continue
            try:
                mask[self.source_classes.index(shape["label"])] |= labelme_shape_mask(shape, height, width)
            except (ValueError, KeyError, TypeError) as problem:
                raise ValueError(f"{sample.truth.name}: shape {number} ({shape.get('label')}): {problem}") from problem
        return mask

"""The labelling tools' exports (COCO, YOLO segmentation, labelme, CVAT colour masks), from files written here in
each tool's own layout; the end-to-end run of each is in test_formats.py's FORMAT_CASES."""

import json
import shutil

import cv2
import numpy as np
import pytest
import yaml
from pycocotools import mask as coco_mask

from Utilities.Config import TrainConfig
from Utilities.Formats import open_source

SIDE = 32
CLASSES = ("pit", "scratch")


def box_of(i: int) -> tuple[int, int, int, int]:
    """Image ``i``'s defect: columns 3-10 and rows 4+i to 11+i (inclusive), class ``1 + i % 2``."""
    return 3, 4 + i, 10, 11 + i


def truth_of(i: int) -> np.ndarray:
    """``(2, SIDE, SIDE)`` truth of image ``i``."""
    mask = np.zeros((2, SIDE, SIDE), np.uint8)
    x0, y0, x1, y1 = box_of(i)
    mask[i % 2, y0 : y1 + 1, x0 : x1 + 1] = 1
    return mask


def write_picture(path, i, defect=True):
    rng = np.random.default_rng(i)
    image = rng.integers(0, 80, size=(SIDE, SIDE), dtype=np.uint8)
    if defect:
        image[truth_of(i).max(axis=0) > 0] = 220
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.merge([image] * 3))


def make_coco(root, count=9):
    """CVAT's COCO layout (``annotations/instances_default.json`` + ``images/``): polygons for even images,
    uncompressed RLE (``iscrowd``) for odd ones, one image without annotations; a Roboflow-style placeholder
    category that is the others' supercategory."""
    images, annotations = [], []
    for i in range(count + 1):
        name = f"{i}.png"
        write_picture(root / "images" / name, i, defect=i < count)
        images.append({"id": i + 1, "file_name": name, "height": SIDE, "width": SIDE})
        if i == count:
            continue
        x0, y0, x1, y1 = box_of(i)
        if i % 2 == 0:  # pycocotools fills the pixels a polygon through their corners encloses
            segmentation = [[x0, y0, x1 + 1, y0, x1 + 1, y1 + 1, x0, y1 + 1]]
        else:
            fortran = np.asfortranarray(truth_of(i)[1])
            runs = np.diff(np.concatenate([[0], np.flatnonzero(np.diff(fortran.ravel(order="F"))) + 1, [SIDE * SIDE]]))
            segmentation = {"size": [SIDE, SIDE], "counts": runs.tolist() if fortran.ravel(order="F")[0] == 0 else [0, *runs.tolist()]}
        annotations.append({"id": i + 1, "image_id": i + 1, "category_id": 1 + i % 2, "segmentation": segmentation,
                            "iscrowd": int(i % 2 == 1), "bbox": [x0, y0, x1 - x0 + 1, y1 - y0 + 1], "area": 64})
    categories = [{"id": 0, "name": "defects", "supercategory": "none"},
                  {"id": 1, "name": "pit", "supercategory": "defects"}, {"id": 2, "name": "scratch", "supercategory": "defects"}]
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "annotations" / "instances_default.json").write_text(
        json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return root


def yolo_polygon(i: int) -> str:
    x0, y0, x1, y1 = box_of(i)
    points = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    return f"{i % 2} " + " ".join(f"{x / SIDE:.6f} {y / SIDE:.6f}" for x, y in points)


def make_yolo_seg(root, count=9):
    """Ultralytics' layout: ``images/{train,val}`` with ``labels/{train,val}``, names in ``data.yaml`` (a dict, as
    Ultralytics writes it); one background image without a label file."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "data.yaml").write_text(yaml.safe_dump({"path": ".", "train": "images/train", "val": "images/val",
                                                    "names": {0: "pit", 1: "scratch"}}))
    for i in range(count + 1):
        split = "val" if i % 3 == 0 else "train"
        write_picture(root / "images" / split / f"{i}.jpg", i, defect=i < count)
        if i < count:
            (root / "labels" / split).mkdir(parents=True, exist_ok=True)
            (root / "labels" / split / f"{i}.txt").write_text(yolo_polygon(i) + "\n")
    return root


def make_labelme(root, count=9):
    """labelme's own layout: ``<stem>.json`` beside each image; polygons for even images, rectangles for odd
    ones, one image with no shapes (defect-free) and a line shape (not an area)."""
    for i in range(count + 1):
        write_picture(root / f"{i}.png", i, defect=i < count)
        shapes = []
        if i < count:
            x0, y0, x1, y1 = box_of(i)
            if i % 2 == 0:
                shapes.append({"label": "pit", "points": [[x0, y0], [x1, y0], [x1, y1], [x0, y1]], "shape_type": "polygon"})
            else:
                shapes.append({"label": "scratch", "points": [[x0, y0], [x1, y1]], "shape_type": "rectangle"})
        if i == 1:
            shapes.append({"label": "scratch", "points": [[0, 0], [5, 5]], "shape_type": "line"})
        (root / f"{i}.json").write_text(json.dumps({"version": "5.5.0", "flags": {}, "shapes": shapes,
                                                    "imagePath": f"{i}.png", "imageData": None,
                                                    "imageHeight": SIDE, "imageWidth": SIDE}))
    return root


COLOURS = {"pit": (250, 50, 83), "scratch": (36, 179, 83)}


def make_cvat_masks(root, count=9):
    """CVAT's "Segmentation mask" export: ``JPEGImages/``, colour PNGs in ``SegmentationClass/``, ``labelmap.txt``."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "labelmap.txt").write_text("# label:color_rgb:parts:actions\nbackground:0,0,0::\n" +
                                       "".join(f"{name}:{','.join(map(str, colour))}::\n" for name, colour in COLOURS.items()))
    for i in range(count):
        write_picture(root / "JPEGImages" / f"{i}.jpg", i)
        rgb = np.zeros((SIDE, SIDE, 3), np.uint8)
        for k, name in enumerate(CLASSES):
            rgb[truth_of(i)[k] > 0] = COLOURS[name]
        (root / "SegmentationClass").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / "SegmentationClass" / f"{i}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return root


@pytest.mark.parametrize("data_format,make", [("coco", make_coco), ("yolo_seg", make_yolo_seg), ("labelme", make_labelme),
                                              ("folders", make_cvat_masks)])
def test_each_export_reads_as_its_truth_with_the_classes_it_names(tmp_path, data_format, make):
    make(tmp_path)
    source = open_source(data_format, tmp_path)
    assert source.classes == CLASSES
    report = source.check()
    assert report.errors == []
    assert len(source.samples()) == 9 + (data_format != "folders")  # one defect-free image beside the nine
    for sample in source.samples():
        if sample.image.stem == "9":
            assert sample.label == "free" and source.mask(sample, SIDE, SIDE).sum() == 0
            continue
        i = int(sample.image.stem)
        assert sample.label == ("" if data_format == "folders" else CLASSES[i % 2])  # folders: one label for all
        np.testing.assert_array_equal(source.mask(sample, SIDE, SIDE), truth_of(i), err_msg=sample.name)
    assert TrainConfig(data_format=data_format, data_root=str(tmp_path)).classes == CLASSES


def test_coco_reads_compressed_rle_and_box_only_annotations_and_finds_roboflow_split_folders(tmp_path):
    for folder in ("train", "valid"):
        write_picture(tmp_path / folder / "a.jpg", 1)
        rle = coco_mask.encode(np.asfortranarray(truth_of(1)[1]))
        annotations = [{"id": 1, "image_id": 7, "category_id": 1, "segmentation": {"size": rle["size"], "counts": rle["counts"].decode()},
                        "iscrowd": 1, "bbox": [0, 0, 1, 1]},
                       {"id": 2, "image_id": 7, "category_id": 1, "segmentation": [], "bbox": [20, 1, 3, 2]}]
        (tmp_path / folder / "_annotations.coco.json").write_text(json.dumps({
            "images": [{"id": 7, "file_name": "a.jpg", "height": SIDE, "width": SIDE}], "annotations": annotations,
            "categories": [{"id": 0, "name": "cracks", "supercategory": "none"}, {"id": 1, "name": "crack", "supercategory": "cracks"}]}))
    source = open_source("coco", tmp_path)
    assert source.classes == ("crack",)
    assert [(s.name, s.split) for s in source.samples()] == [("train/a.jpg", "train"), ("valid/a.jpg", "val")]
    expected = truth_of(1)[1].copy()
    expected[1:3, 20:23] = 1
    np.testing.assert_array_equal(source.mask(source.samples()[0], SIDE, SIDE)[0], expected)


def test_coco_names_every_bad_annotation_and_image(tmp_path):
    make_coco(tmp_path, count=3)
    path = tmp_path / "annotations" / "instances_default.json"
    coco = json.loads(path.read_text())
    coco["annotations"][0]["segmentation"] = [[1, 1, 5, 5]]  # two points
    coco["annotations"][1]["category_id"] = 9
    coco["annotations"].append({"id": 99, "image_id": 42, "category_id": 1, "segmentation": [], "bbox": [0, 0, 2, 2]})
    coco["images"][2]["height"] = 40
    coco["images"].append({"id": 50, "file_name": "gone.png", "height": SIDE, "width": SIDE})
    path.write_text(json.dumps(coco))
    errors = open_source("coco", tmp_path, classes=CLASSES).check().errors
    assert any("instances_default.json: annotation 1: a polygon with fewer than 3 points" in e for e in errors)
    assert any("annotation 2 has category 9" in e for e in errors)
    assert any("annotation 99 is of image id 42, which is not in images" in e for e in errors)
    assert any("image is 32x32, instances_default.json says 32x40" in e for e in errors)
    assert any("image gone.png not found" in e for e in errors)


def test_yolo_keeps_its_split_folders_and_names_bad_lines_and_lonely_labels(tmp_path):
    make_yolo_seg(tmp_path, count=4)
    source = open_source("yolo_seg", tmp_path)
    assert {s.name: s.split for s in source.samples()} == {
        "images/val/0.jpg": "val", "images/train/1.jpg": "train", "images/train/2.jpg": "train",
        "images/val/3.jpg": "val", "images/train/4.jpg": "train"}
    assert source.check().warnings == ["1 images have no label file; read as background (defect-free) images"]
    (tmp_path / "labels" / "train" / "1.txt").write_text("5 0.1 0.1 0.2 0.1 0.2 0.2\n")
    (tmp_path / "labels" / "train" / "2.txt").write_text("0 0.1 0.1 0.5\n")
    (tmp_path / "labels" / "val" / "3.txt").write_text("0 10 10 20 10 20 20\n")
    (tmp_path / "labels" / "train" / "lonely.txt").write_text("0 0.1 0.1 0.2 0.1 0.2 0.2\n")
    errors = open_source("yolo_seg", tmp_path).check().errors
    assert "labels/train/lonely.txt: no image of that name in the images/ folder beside labels/" in errors
    assert any("1.txt line 1: class 5; data.yaml names 2 (0..1)" in e for e in errors)
    assert any("2.txt line 1: 3 coordinates" in e for e in errors)
    assert any("3.txt line 1: coordinates outside 0..1" in e for e in errors)


def test_yolo_box_lines_are_painted_as_boxes(tmp_path):
    write_picture(tmp_path / "images" / "a.jpg", 0)
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "a.txt").write_text("0 0.5 0.25 0.25 0.125\n")  # centre (16, 8), 8x4 px
    mask = open_source("yolo_seg", tmp_path).mask(open_source("yolo_seg", tmp_path).samples()[0], SIDE, SIDE)[0]
    assert mask.sum() == 32 and mask[6:10, 12:20].all()


def test_labelme_circles_and_what_it_leaves_out(tmp_path):
    make_labelme(tmp_path, count=2)
    write_picture(tmp_path / "unlabelled.png", 0)
    (tmp_path / "c.json").write_text(json.dumps({"shapes": [{"label": "pit", "points": [[16, 16], [16, 20]],
                                                             "shape_type": "circle"}], "imagePath": "0.png",
                                                 "imageHeight": SIDE, "imageWidth": SIDE}))
    source = open_source("labelme", tmp_path)
    report = source.check()
    assert report.errors == [] and len(source.samples()) == 4
    assert "shapes left out (not areas of a class; read as background): 1 line" in report.warnings
    assert any(w.startswith("1 images have no labelme JSON and are left out") for w in report.warnings)
    circle = source.mask(next(s for s in source.samples() if s.truth.name == "c.json"), SIDE, SIDE)[0]
    # radius 4, drawn as labelme draws it: the 9 pixels from 12 to 20 across, about pi * 4.5^2 in all
    assert circle[16, 12:21].all() and not circle[16, [11, 21]].any() and 55 <= int(circle.sum()) <= 70
    (tmp_path / "1.json").write_text((tmp_path / "1.json").read_text().replace('"scratch"', '"dent"'))
    (tmp_path / "bad.json").write_text("{not json")
    errors = open_source("labelme", tmp_path, classes=CLASSES).check().errors
    assert any("1.json: unknown label 'dent'" in e for e in errors)
    assert any(e.startswith("bad.json: not a labelme file") for e in errors)


def test_colour_masks_name_a_colour_the_labelmap_lacks_and_voc_palette_borders_are_background(tmp_path):
    from PIL import Image

    make_cvat_masks(tmp_path / "cvat", count=2)
    odd = cv2.imread(str(tmp_path / "cvat" / "SegmentationClass" / "0.png"))
    odd[0, 0] = (1, 2, 3)
    cv2.imwrite(str(tmp_path / "cvat" / "SegmentationClass" / "0.png"), odd)
    assert [e for e in open_source("folders", tmp_path / "cvat").check().errors] == [
        "0.jpg: 1 pixels of colour [3, 2, 1], which labelmap.txt does not name"]

    indices = np.zeros((SIDE, SIDE), np.uint8)
    indices[4:8, 4:8], indices[3, 3:9] = 2, 255  # an object and its void border
    palette = Image.frombytes("P", (SIDE, SIDE), indices.tobytes())
    palette.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * 759)
    write_picture(tmp_path / "voc" / "JPEGImages" / "v.jpg", 0)
    (tmp_path / "voc" / "SegmentationClass").mkdir()
    palette.save(tmp_path / "voc" / "SegmentationClass" / "v.png")
    source = open_source("folders", tmp_path / "voc", classes=("aeroplane", "bicycle"))
    assert source.check().errors == []
    mask = source.mask(source.samples()[0], SIDE, SIDE)
    assert mask[1].sum() == 16 and mask[0].sum() == 0


def test_coco_names_an_image_listed_twice_and_finds_cvat_subset_folders(tmp_path):
    make_coco(tmp_path / "val", count=2)  # a data set in a folder that happens to be called val
    (tmp_path / "val" / "images").rename(tmp_path / "val" / "default")
    (tmp_path / "val" / "images").mkdir()
    (tmp_path / "val" / "default").rename(tmp_path / "val" / "images" / "default")  # CVAT: images/default/
    source = open_source("coco", tmp_path / "val")
    assert source.check().errors == [] and {s.split for s in source.samples()} == {None}
    assert source.sample("images/default/1.png").label == "scratch"
    make_coco(tmp_path / "dup", count=2)
    shutil.copy(tmp_path / "dup" / "annotations" / "instances_default.json", tmp_path / "dup" / "annotations" / "instances_copy.json")
    errors = open_source("coco", tmp_path / "dup").check().errors
    assert "images/0.png: listed in annotations/instances_copy.json and in annotations/instances_default.json; " \
           "keep it in one of them" in errors and len(errors) == 3


def test_labelme_reads_windows_paths_and_refuses_brush_masks(tmp_path):
    write_picture(tmp_path / "imgs" / "a.png", 0)
    shapes = [{"label": "pit", "points": [[3, 4], [10, 4], [10, 11], [3, 11]], "shape_type": "polygon"}]
    (tmp_path / "ann").mkdir()
    (tmp_path / "ann" / "a.json").write_text(json.dumps({"shapes": shapes, "imagePath": "..\\imgs\\a.png"}))
    source = open_source("labelme", tmp_path)
    assert [s.name for s in source.samples()] == ["imgs/a.png"] and source.check().warnings == []
    np.testing.assert_array_equal(source.mask(source.samples()[0], SIDE, SIDE)[0], truth_of(0)[0])
    shapes.append({"label": "pit", "points": [[0, 0], [4, 4]], "shape_type": "mask", "mask": "iVBORw0KGgo="})
    (tmp_path / "ann" / "a.json").write_text(json.dumps({"shapes": shapes, "imagePath": "../imgs/a.png"}))
    assert open_source("labelme", tmp_path).check().errors == [
        "ann/a.json: 1 mask (brush) shapes, which are not read; draw them as polygons"]


def test_one_class_palette_masks_keep_the_void_border_apart_from_0_255_masks(tmp_path):
    from PIL import Image

    for name, values in (("voc", (1, 255)), ("binary", (255, 255))):
        indices = np.zeros((SIDE, SIDE), np.uint8)
        indices[4:8, 4:8], indices[3, 3:9] = values
        palette = Image.frombytes("P", (SIDE, SIDE), indices.tobytes())
        palette.putpalette([0, 0, 0, 128, 0, 0] + [0] * 759 + [255, 255, 255])
        write_picture(tmp_path / name / "images" / "v.jpg", 0)
        (tmp_path / name / "masks").mkdir()
        palette.save(tmp_path / name / "masks" / "v.png")
        source = open_source("folders", tmp_path / name)
        assert source.mask(source.samples()[0], SIDE, SIDE).sum() == (16 if name == "voc" else 22), name


def test_label_maps_name_their_bad_line_and_labels_the_classes_lack(tmp_path):
    from Utilities.Validate_data import DataError

    make_cvat_masks(tmp_path, count=2)
    errors = open_source("folders", tmp_path, classes=("pit",)).check().errors
    assert any("pixels of scratch (labelmap.txt), which is not among the classes pit" in e for e in errors)
    (tmp_path / "labelmap.txt").write_text("background:0,0,0::\npit:250,50::\n")
    with pytest.raises(DataError, match="labelmap.txt line 2: a colour needs 3 numbers"):
        open_source("folders", tmp_path)

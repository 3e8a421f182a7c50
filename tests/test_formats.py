"""Each data set format, read from small files the tests write in that format's layout."""

import cv2
import numpy as np
import pandas as pd
import pytest
import scipy.io
from conftest import make_neu_like
from test_labelling_formats import make_coco, make_cvat_masks, make_labelme, make_yolo_seg

from Utilities.Annotation_files import crack_regions, read_severstal_csv, write_severstal_submission
from Utilities.Formats import FORMATS, open_source
from Utilities.Rle import mask_to_rle
from Utilities.Validate_data import DataError


def write_image(path, height, width, value=60):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((height, width, 3), value, np.uint8))


def write_png(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), array)


# --- image + mask folders ------------------------------------------------------------------


def test_folders_multi_class_8_and_16_bit(tmp_path):
    indices = np.zeros((6, 8), np.uint8)
    indices[1, 2], indices[3, 4:6] = 1, 2
    write_image(tmp_path / "images" / "a.jpg", 6, 8)
    write_png(tmp_path / "masks" / "a.png", indices)
    write_image(tmp_path / "images" / "b.png", 6, 8)
    write_png(tmp_path / "masks" / "b.png", indices.astype(np.uint16))
    source = open_source("folders", tmp_path, classes=("pit", "scratch"))
    assert [s.name for s in source.samples()] == ["a.jpg", "b.png"]
    for sample in source.samples():
        mask = source.mask(sample, 6, 8)
        assert mask.shape == (2, 6, 8) and mask[0, 1, 2] == 1 and mask[1, 3, 4:6].all() and mask.sum() == 3
    assert cv2.imread(str(tmp_path / "masks" / "b.png"), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    assert source.check().errors == []
    binary = open_source("folders", tmp_path, classes=("pit", "scratch"), binary=True)
    assert binary.classes == ("defect",) and binary.mask(binary.samples()[0], 6, 8).sum() == 3


def test_folders_binary_0_255(tmp_path):
    mask = np.zeros((4, 4), np.uint8)
    mask[0, :2] = 255
    write_image(tmp_path / "images" / "x.jpg", 4, 4)
    write_png(tmp_path / "masks" / "x.png", mask)
    source = open_source("folders", tmp_path)
    assert source.mask(source.samples()[0], 4, 4)[0].tolist()[0] == [1, 1, 0, 0]
    assert source.check().errors == []


def test_folders_report_unpaired_files_and_unexpected_values_by_name(tmp_path):
    write_image(tmp_path / "images" / "lonely.jpg", 4, 4)
    write_png(tmp_path / "masks" / "orphan.png", np.zeros((4, 4), np.uint8))
    write_image(tmp_path / "images" / "odd.jpg", 4, 4)
    write_png(tmp_path / "masks" / "odd.png", np.full((4, 4), 7, np.uint8))
    write_image(tmp_path / "images" / "small.jpg", 4, 4)
    write_png(tmp_path / "masks" / "small.png", np.zeros((3, 4), np.uint8))
    errors = open_source("folders", tmp_path, classes=("pit", "scratch")).check().errors
    assert any("lonely.jpg: no annotation" in e for e in errors)
    assert any("orphan.png: no image" in e for e in errors)
    assert any("odd.png: unexpected mask values [7]; expected 0..2" in e for e in errors)
    assert any("small.png: mask is 4x3, its image 4x4" in e for e in errors)
    with pytest.raises(DataError, match="lonely.jpg"):
        open_source("folders", tmp_path).check(strict=True)


def test_a_second_check_reads_only_the_samples_that_had_a_problem_and_reports_them_again(tmp_path, monkeypatch):
    from Utilities import Data_source

    for name in ("a", "b", "c"):
        write_image(tmp_path / "images" / f"{name}.jpg", 4, 4)
        write_png(tmp_path / "masks" / f"{name}.png", np.full((4, 4), 7 if name == "b" else 0, np.uint8))
    source = open_source("folders", tmp_path, classes=("pit",))
    first = source.check()
    read = []
    monkeypatch.setattr(Data_source, "image_size", lambda path, size=Data_source.image_size: read.append(path.name)
                        or size(path))
    second = source.check()
    assert read == ["b.jpg"] and second.errors == first.errors and len(first.errors) == 1 and second.images == 3


# --- Magnetic Tile ---------------------------------------------------------------------------


def make_magnetic_tile(root, size=(40, 56)):
    """Two defect classes and defect-free images; masks 0/255 with a grey edge pixel."""
    rng = np.random.default_rng(0)
    for folder, count in (("MT_Blowhole", 3), ("MT_Crack", 3), ("MT_Free", 4)):
        for i in range(count):
            image = rng.integers(0, 80, size=size, dtype=np.uint8)
            mask = np.zeros(size, np.uint8)
            if folder != "MT_Free":
                y, x = rng.integers(4, size[0] - 12), rng.integers(4, size[1] - 12)
                mask[y : y + 8, x : x + 8] = 255
                mask[y - 1, x] = 100  # grey edge below the threshold
                mask[y + 8, x] = 200  # grey edge above it
                image[mask >= 128] = 230
            write_png(root / folder / "Imgs" / f"exp{i}.png", mask)
            write_png(root / folder / "Imgs" / f"exp{i}.jpg", cv2.merge([image] * 3))
    return root


def test_magnetic_tile_binary_and_per_class(tmp_path):
    root = make_magnetic_tile(tmp_path / "mt")
    per_class = open_source("magnetic_tile", root, classes=("Blowhole", "Crack"))
    samples = {s.name: s for s in per_class.samples()}
    assert len(samples) == 10 and samples["MT_Free/Imgs/exp0.jpg"].label == "free"
    crack = per_class.mask(samples["MT_Crack/Imgs/exp1.jpg"], 40, 56)
    assert crack.shape == (2, 40, 56) and crack[0].sum() == 0 and crack[1].sum() == 64 + 1
    binary = open_source("magnetic_tile", root, classes=("Blowhole", "Crack"), binary=True)
    assert binary.mask(samples["MT_Crack/Imgs/exp1.jpg"], 40, 56)[0].sum() == 65
    assert binary.mask(samples["MT_Free/Imgs/exp2.jpg"], 40, 56).sum() == 0
    assert per_class.check().errors == []


def test_magnetic_tile_problems_are_named(tmp_path):
    root = make_magnetic_tile(tmp_path / "mt")
    write_png(root / "MT_Free" / "Imgs" / "exp0.png", np.full((40, 56), 255, np.uint8))
    write_png(root / "MT_Crack" / "Imgs" / "exp2.png", np.zeros((40, 56), np.uint16))
    (root / "MT_Blowhole" / "Imgs" / "exp1.png").unlink()
    write_png(root / "MT_Rust" / "Imgs" / "a.jpg", np.zeros((4, 4, 3), np.uint8))
    errors = open_source("magnetic_tile", root, classes=("Blowhole", "Crack")).check().errors
    assert any("exp0.png: defect pixels in a defect-free" in e for e in errors)
    assert any("exp2.png: uint16 mask" in e for e in errors)
    assert any("exp1.jpg: no annotation" in e for e in errors)
    assert any("MT_Rust: folder of an unknown class" in e for e in errors)


# --- CrackForest -----------------------------------------------------------------------------


def write_seg(path, segmentation):
    """A Berkeley ``.seg`` text file: ids from 0, one row per run of a region along an image row."""
    rows = [f"{region - 1} {r} {c} {c}" for r, line in enumerate(segmentation) for c, region in enumerate(line)]
    height, width = segmentation.shape
    header = ["format ascii cr", f"width {width}", f"height {height}", f"segments {segmentation.max()}", "data"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(header + rows) + "\n")


def make_crackforest(root, cell=False, seg=False):
    """Six 48x32 images, 001-005 labelled with up to three crack regions (ids 2, 3, 4), 006 unlabelled."""
    rng = np.random.default_rng(1)
    for i in range(1, 7):
        segmentation = np.ones((32, 48), np.uint8)
        segmentation[10 + i, 5:40] = 2  # a thin horizontal crack
        segmentation[20:25, 30] = 3 if i >= 3 else 1  # a second, separately drawn crack region
        segmentation[2, 2:6] = 4 if i == 5 else 1
        image = rng.integers(90, 140, size=(32, 48), dtype=np.uint8)
        image[segmentation > 1] = 20
        write_png(root / "image" / f"{i:03d}.jpg", cv2.merge([image] * 3))
        truth = {"Segmentation": segmentation, "Boundaries": (segmentation > 1).astype(np.uint8)}
        if i <= 5 and seg:
            write_seg(root / "seg" / f"{i:03d}.seg", segmentation)
        elif i <= 5:  # 006 stays unlabelled, as some CFD images are
            (root / "groundTruth").mkdir(exist_ok=True)
            value = np.array([[truth]], dtype=object) if cell else truth
            scipy.io.savemat(root / "groundTruth" / f"{i:03d}.mat", {"groundTruth": value})
    return root


@pytest.mark.parametrize(("cell", "seg"), [(False, False), (True, False), (False, True)],
                         ids=["mat-struct", "mat-cell-of-struct", "seg-text"])
def test_crackforest_reads_every_crack_region(tmp_path, cell, seg):
    source = open_source("crackforest", make_crackforest(tmp_path / "cfd", cell, seg))
    assert [s.name for s in source.samples()] == ["001.jpg", "002.jpg", "003.jpg", "004.jpg", "005.jpg"]
    first, fifth = source.mask(source.samples()[0], 32, 48), source.mask(source.samples()[4], 32, 48)
    assert first.shape == (1, 32, 48) and first[0, 11, 5:40].all() and first.sum() == 35
    assert fifth[0, 15, 5:40].all() and fifth[0, 20:25, 30].all() and fifth[0, 2, 2:6].all() and fifth.sum() == 35 + 5 + 4
    report = source.check()
    assert report.errors == [] and any("1 images have neither" in w for w in report.warnings)


def test_crackforest_pavement_enclosed_by_a_crack_loop_is_not_crack(tmp_path):
    segmentation = np.ones((32, 48), np.uint8)
    segmentation[5:20, 5:25] = 2  # a closed crack loop, 15x20 px outside...
    segmentation[7:18, 7:23] = 3  # ...around an 11x16 island of pavement, a region of its own
    segmentation[25, 5:40] = 4  # a second crack, drawn apart: it borders the background
    assert (crack_regions(segmentation) == np.isin(segmentation, (2, 4))).all()
    root = tmp_path / "cfd"
    write_png(root / "image" / "001.jpg", np.zeros((32, 48, 3), np.uint8))
    write_seg(root / "seg" / "001.seg", segmentation)
    source = open_source("crackforest", root)
    assert source.mask(source.samples()[0], 32, 48).sum() == 15 * 20 - 11 * 16 + 35


def test_crackforest_prefers_mat_and_names_what_can_only_be_wrong(tmp_path):
    root = make_crackforest(tmp_path / "cfd")
    write_seg(root / "seg" / "001.seg", np.ones((32, 48), np.uint8))  # a .seg beside a .mat is not read
    assert open_source("crackforest", root).mask(open_source("crackforest", root).samples()[0], 32, 48).sum() == 35
    zero = np.ones((32, 48), np.uint8)
    zero[0, 0] = 0
    scipy.io.savemat(root / "groundTruth" / "002.mat", {"groundTruth": {"Segmentation": zero}})
    (root / "groundTruth" / "003.mat").write_bytes(b"not a mat file")
    scipy.io.savemat(root / "groundTruth" / "004.mat", {"groundTruth": {"Segmentation": np.ones((16, 48), np.uint8)}})
    (root / "groundTruth" / "005.mat").unlink()
    (root / "seg" / "005.seg").write_text("width 48\nheight 32\ndata\n0 0 0 47\n")  # covers one row only
    errors = open_source("crackforest", root).check().errors
    assert len(errors) == 4, errors
    assert any("002.mat: 1 pixels without a region" in e for e in errors)
    assert any("003.mat: not a CrackForest ground truth" in e for e in errors)
    assert any("004.mat: Segmentation is 48x16, its image 48x32" in e for e in errors)
    assert any("005.seg: 1488 pixels without a region" in e for e in errors)


# --- Severstal RLE CSV -----------------------------------------------------------------------


def make_severstal(root, old_style=False):
    """Three 8x16 images: one with classes 1 and 3, one with class 4, one defect-free."""
    masks = {"a.jpg": np.zeros((4, 8, 16), np.uint8), "b.jpg": np.zeros((4, 8, 16), np.uint8), "c.jpg": np.zeros((4, 8, 16), np.uint8)}
    masks["a.jpg"][0, 0:3, 0] = 1  # pixels 1-3 (column-major): run "1 3"
    masks["a.jpg"][2, 2:8, 5:7] = 1
    masks["b.jpg"][3, 4, 10:12] = 1
    for name in masks:
        write_image(root / "train_images" / name, 8, 16)
    if old_style:  # ImageId_ClassId, one row per image and class, empty where none
        rows = [{"ImageId_ClassId": f"{n}_{c + 1}", "EncodedPixels": mask_to_rle(m[c])} for n, m in masks.items() for c in range(4)]
    else:  # only the defects
        rows = [{"ImageId": n, "ClassId": c + 1, "EncodedPixels": mask_to_rle(m[c])} for n, m in masks.items() for c in range(4) if m[c].any()]
    pd.DataFrame(rows).to_csv(root / "train.csv", index=False)
    return masks


@pytest.mark.parametrize("old_style", [False, True], ids=["ImageId,ClassId", "ImageId_ClassId"])
def test_severstal_decodes_both_csv_styles(tmp_path, old_style):
    masks = make_severstal(tmp_path, old_style)
    assert "1 3" in read_severstal_csv(tmp_path / "train.csv")["EncodedPixels"].tolist()
    source = open_source("severstal", tmp_path)
    samples = {s.name: s for s in source.samples()}
    assert {n: s.label for n, s in samples.items()} == {"a.jpg": "1", "b.jpg": "4", "c.jpg": "free"}
    for name, expected in masks.items():
        np.testing.assert_array_equal(source.mask(samples[name], 8, 16), expected)
    merged = open_source("severstal", tmp_path, binary=True)
    np.testing.assert_array_equal(merged.mask(samples["a.jpg"], 8, 16)[0], masks["a.jpg"].max(0))
    assert source.check().errors == []


def test_severstal_problems_are_named(tmp_path):
    make_severstal(tmp_path)
    table = pd.read_csv(tmp_path / "train.csv")
    extra = pd.DataFrame([
        {"ImageId": "a.jpg", "ClassId": 5, "EncodedPixels": "1 2"},
        {"ImageId": "gone.jpg", "ClassId": 1, "EncodedPixels": "1 2"},
        {"ImageId": "c.jpg", "ClassId": 2, "EncodedPixels": "120 20"},
    ])
    pd.concat([table, extra]).to_csv(tmp_path / "train.csv", index=False)
    errors = open_source("severstal", tmp_path).check().errors
    assert any("a.jpg has ClassId 5; expected 1..4" in e for e in errors)
    assert any("gone.jpg has runs but no image" in e for e in errors)
    assert any(e.startswith("c.jpg: class 2: run 120 20 lies outside a 8x16 image") for e in errors)


def test_severstal_submission_round_trips(tmp_path):
    masks = make_severstal(tmp_path)
    table = write_severstal_submission(masks.items(), tmp_path / "submission.csv")
    written = pd.read_csv(tmp_path / "submission.csv", dtype={"EncodedPixels": str})
    assert list(written.columns) == ["ImageId", "EncodedPixels", "ClassId"] and len(written) == 12
    assert written.loc[(written.ImageId == "a.jpg") & (written.ClassId == 1), "EncodedPixels"].item() == "1 3"
    (tmp_path / "train.csv").write_text(table.to_csv(index=False))  # the submission reads back as a train.csv
    source = open_source("severstal", tmp_path)
    for sample in source.samples():
        np.testing.assert_array_equal(source.mask(sample, 8, 16), masks[sample.name])


def test_unknown_format_lists_the_known_ones(tmp_path):
    with pytest.raises(KeyError, match="magnetic_tile"):
        open_source("cityscapes", tmp_path)


# --- one code path for every format: split, train, evaluate, predict --------------------------


def test_folders_read_lossy_jpeg_masks_with_the_image_name_and_say_what_they_looked_for(tmp_path):
    truth = np.zeros((40, 48), np.uint8)
    truth[10:30, 20:23] = 1  # a 3-pixel wide crack
    for i in range(3):
        write_image(tmp_path / "images" / f"{i}.jpg", 40, 48)
        colour = cv2.merge([truth * 255, truth * 250, truth * 245])  # channels differ, as in circulating copies
        (tmp_path / "masks").mkdir(exist_ok=True)
        cv2.imwrite(str(tmp_path / "masks" / f"{i}.jpg"), colour, [cv2.IMWRITE_JPEG_QUALITY, 75])
    stored = cv2.imread(str(tmp_path / "masks" / "0.jpg"))
    assert len(np.unique(stored)) > 2  # JPEG really did blur the edges
    write_image(tmp_path / "images" / "lonely.png", 40, 48)
    source = open_source("folders", tmp_path)
    report = source.check()
    assert report.errors == ["lonely.png: no annotation lonely.jpg or lonely.jpeg or lonely.png or lonely.bmp in "
                             f"{tmp_path / 'masks'}"]
    assert any("3 masks are JPEG (lossy); read as grey and thresholded at 128" in w for w in report.warnings)
    np.testing.assert_array_equal(source.mask(source.sample("0.jpg"), 40, 48)[0], truth)


def make_folders(root):
    rng = np.random.default_rng(2)
    for i in range(9):
        indices = np.zeros((32, 32), np.uint8)
        indices[4 + i : 12 + i, 3:11] = 1 + i % 2
        image = rng.integers(0, 80, size=(32, 32), dtype=np.uint8)
        image[indices > 0] = 220
        write_png(root / "images" / f"{i}.png", cv2.merge([image] * 3))
        write_png(root / "masks" / f"{i}.png", indices)


def make_wide_severstal(root):
    """Severstal's shape, scaled down: 32x128 images, trained on 32x32 crops, predicted whole."""
    rng = np.random.default_rng(3)
    rows = []
    for i in range(6):
        mask = np.zeros((32, 128), np.uint8)
        mask[8:20, 10 + 15 * i : 30 + 15 * i] = 1
        image = rng.integers(0, 80, size=(32, 128), dtype=np.uint8)
        image[mask > 0] = 220
        write_png(root / "train_images" / f"{i:04d}.jpg", cv2.merge([image] * 3))
        rows.append({"ImageId": f"{i:04d}.jpg", "ClassId": 1 + i % 4, "EncodedPixels": mask_to_rle(mask)})
    pd.DataFrame(rows).to_csv(root / "train.csv", index=False)


FORMAT_CASES = {
    "voc": (make_neu_like, None, {}),
    "folders": (make_folders, ("pit", "scratch"), {}),
    "magnetic_tile": (make_magnetic_tile, ("Blowhole", "Crack"),
                      {"binary": True, "full_resolution": True, "defect_fraction": 0.5, "monitor": "mean_dice"}),
    "crackforest": (make_crackforest, None, {}),
    "severstal": (make_wide_severstal, None, {"full_resolution": True}),
    "coco": (make_coco, None, {}),
    "yolo_seg": (make_yolo_seg, None, {}),
    "labelme": (make_labelme, None, {}),
}
END_TO_END = [(name, *case) for name, case in FORMAT_CASES.items()] + [("folders", make_cvat_masks, None, {})]  # + colour masks


def test_every_registered_format_has_a_case_below():
    assert set(FORMAT_CASES) == set(FORMATS), "add a tiny data set maker for the new format to FORMAT_CASES"


@pytest.mark.parametrize("data_format,make,classes,options", END_TO_END,
                         ids=[f"{case[0]}-{case[1].__name__}" for case in END_TO_END])
def test_every_format_trains_evaluates_and_predicts(tmp_path, data_format, make, classes, options):
    from Utilities.Config import TrainConfig
    from Utilities.Data_Retriever_Seg import make_loaders
    from Utilities.Evaluate import evaluation_table
    from Utilities.Images import read_image
    from Utilities.Inference import Predictor
    from Utilities.Predict_folder import predict_folder
    from Utilities.Resnet_Unet import build_model
    from Utilities.Trainer import fit
    from Utilities.Validation_split import names_in

    make(tmp_path / "data")
    source = open_source(data_format, tmp_path / "data", classes)
    names = [s.name for s in source.samples()]
    split = pd.DataFrame({"image": names, "class": "any", "split": ["val" if i % 3 == 0 else "train" for i in range(len(names))]})
    split.to_csv(tmp_path / "split.csv", index=False)
    config = TrainConfig(root=tmp_path, data_format=data_format, data_root="data", classes=source.source_classes,
                         split_file="split.csv", image_size=32, batch_size=2, epochs=1, run_name=data_format, **options)
    train_loader, val_loader = make_loaders(config)
    assert next(iter(train_loader))[1].shape == (2, len(config.channels), 32, 32)
    model, _ = build_model(config.arch, config.encoder, len(config.channels))
    history = fit(model, train_loader, val_loader, config)
    assert len(history) == 1 and 0 <= history[f"val_{config.monitor}"].item() <= 1

    predictor = Predictor(tmp_path / "Models" / f"{data_format}_best.pth")
    val_names = names_in(split, "val")
    table = evaluation_table(predictor, open_source(data_format, tmp_path / "data", classes, config.binary), val_names)
    assert list(table.index) == [*config.channels, "overall"]
    assert table[["iou", "dice", "precision", "recall", "detection"]].stack().between(0, 1).all()

    image_path = source.sample(val_names[0]).image
    report = predict_folder(predictor, image_path, tmp_path / "predictions")
    mask = tmp_path / "predictions" / f"{image_path.stem}_mask.png"
    assert list(report["status"]) == ["ok"] and cv2.imread(str(mask), cv2.IMREAD_UNCHANGED).shape == read_image(image_path).shape[:2]


def test_split_source_is_seeded_and_stratified_by_label(tmp_path):
    from Utilities.Validation_split import split_source

    source = open_source("magnetic_tile", make_magnetic_tile(tmp_path / "mt"), classes=("Blowhole", "Crack"))
    split = split_source(source, test=1, val=1, seed=3)
    assert split.groupby(["class", "split"]).size().to_dict() == {
        ("Blowhole", "test"): 1, ("Blowhole", "train"): 1, ("Blowhole", "val"): 1,
        ("Crack", "test"): 1, ("Crack", "train"): 1, ("Crack", "val"): 1,
        ("free", "test"): 1, ("free", "train"): 2, ("free", "val"): 1,
    }
    assert split.equals(split_source(source, test=1, val=1, seed=3))
    assert any(not split.equals(split_source(source, test=1, val=1, seed=seed)) for seed in range(4, 10))


def test_defect_sampler_draws_defects_that_often(tmp_path):
    import torch

    from Utilities.Data_Retriever_Seg import SegmentationDataset, defect_sampler
    from Utilities.Transforms import eval_transforms

    source = open_source("magnetic_tile", make_magnetic_tile(tmp_path / "mt"), classes=("Blowhole", "Crack"), binary=True)
    dataset = SegmentationDataset(source, source.samples(), eval_transforms(32, (0.5,) * 3, (0.25,) * 3, True))
    assert dataset.has_defect().sum() == 6  # 6 defective, 4 free
    torch.manual_seed(0)
    drawn = [i for _ in range(200) for i in defect_sampler(dataset, 0.9)]
    share = dataset.has_defect()[drawn].mean()
    assert len(drawn) == 2000 and 0.87 < share < 0.93


def test_folders_read_palette_and_grey_rgb_masks(tmp_path):
    from PIL import Image

    indices = np.zeros((6, 8), np.uint8)
    indices[2:4, 1:3] = 2
    palette = Image.frombytes("P", (8, 6), indices.tobytes())
    palette.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * 759)
    write_image(tmp_path / "images" / "p.jpg", 6, 8)
    (tmp_path / "masks").mkdir()
    palette.save(tmp_path / "masks" / "p.png")
    write_image(tmp_path / "images" / "g.jpg", 6, 8)
    write_png(tmp_path / "masks" / "g.png", cv2.merge([indices] * 3))
    write_image(tmp_path / "images" / "c.jpg", 6, 8)
    write_png(tmp_path / "masks" / "c.png", cv2.merge([indices, indices * 0, indices]))
    source = open_source("folders", tmp_path, classes=("pit", "scratch"))
    for name in ("p.jpg", "g.jpg"):
        mask = source.mask(source.sample(name), 6, 8)
        assert mask[1].sum() == 4 and mask[0].sum() == 0
    assert [e for e in source.check().errors if "c.png" in e] == ["c.jpg: c.png: mask has 3 different channels, expected one"]


@pytest.mark.parametrize("images,masks", [("{split}/images", "{split}/masks"), ("{split}", "{split}_lab"),
                                          ("{split}_img", "{split}_lab")])
def test_folders_already_split_are_read_in_place_and_keep_their_split(tmp_path, images, masks):
    from Utilities.Validation_split import split_source

    for folder in ("train", "valid", "test"):
        for k in range(3):
            write_image(tmp_path / images.format(split=folder) / f"{folder}{k}.jpg", 4, 4)
            write_png(tmp_path / masks.format(split=folder) / f"{folder}{k}.png", np.zeros((4, 4), np.uint8))
    source = open_source("folders", tmp_path)
    assert source.check().errors == [] and len(source.samples()) == 9
    split = split_source(source, test=0.5, val=0.5, seed=0).set_index("image")["split"]
    assert split[f"{images.format(split='valid')}/valid0.jpg"] == "val"
    assert split.value_counts().to_dict() == {"train": 3, "val": 3, "test": 3}


def test_a_split_without_val_folder_draws_val_from_train_and_empty_folders_say_what_is_expected(tmp_path):
    from Utilities.Validation_split import split_source

    for folder in ("train", "test"):
        for k in range(4):
            write_image(tmp_path / folder / f"{folder}{k}.jpg", 4, 4)
            write_png(tmp_path / f"{folder}_lab" / f"{folder}{k}.png", np.zeros((4, 4), np.uint8))
    split = split_source(open_source("folders", tmp_path), test=0.5, val=0.25, seed=0)
    assert split["split"].value_counts().to_dict() == {"train": 3, "test": 4, "val": 1}
    (tmp_path / "elsewhere").mkdir()
    write_image(tmp_path / "elsewhere" / "photos" / "a.jpg", 4, 4)
    errors = open_source("folders", tmp_path / "elsewhere").check().errors
    assert len(errors) == 1 and "expected images/ + masks/, {split}/images/ + {split}/masks/" in errors[0]

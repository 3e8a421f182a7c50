"""Writes the notebooks' source cells; run once after editing, then execute them (make full)."""

import sys
from pathlib import Path

import nbformat as nbf

HERE = Path(__file__).resolve().parents[1] / "notebooks"
CHECK = "# NBVAL_CHECK_OUTPUT\n"

SETUP = """import os
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no network here: skip the hub's retries
import matplotlib.pyplot as plt
import pandas as pd
from matplotlib_inline.backend_inline import set_matplotlib_formats

from Utilities.Config import quick_mode

ROOT = Path.cwd().parent  # notebooks/ sits in the project folder
QUICK = quick_mode()  # SEG_QUICK=1: a few minutes on 2 CPU cores instead of the full run
pd.set_option("display.precision", 4)
set_matplotlib_formats("jpeg")  # keeps the committed notebooks small
plt.rcParams["figure.dpi"] = 72
print("quick mode" if QUICK else "full run")"""


def notebook(*cells):
    nb = nbf.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbf.v4.new_markdown_cell(c[3:]) if c.startswith("md:") else nbf.v4.new_code_cell(c) for c in cells]
    return nb


eda = notebook(
    "md:# 1. Exploratory data analysis of NEU-DET\n\n1,800 grayscale 200x200 images of hot-rolled steel, 6 defect classes, "
    "boxes in Pascal VOC XML. The tables count the held-out test images too, wherever notebook 02 has put them.",
    SETUP,
    """from Utilities.Extract_masks import NEU_DET_CLASSES, box_table, class_of, label_table

folders = [ROOT / "ANNOTATIONS", ROOT / "Validation_Annotations"]
labels = pd.concat([label_table(f) for f in folders], ignore_index=True)
boxes = pd.concat([box_table(f) for f in folders], ignore_index=True)
labels["class"] = labels["image"].map(class_of)""",
    CHECK + """print(len(labels), "images,", len(boxes), "boxes")
per_class = labels.groupby("class").agg(images=("image", "size"), boxes=("n_defects", "sum"), boxes_per_image=("n_defects", "mean"))
print(per_class.round(2).to_string())""",
    CHECK + """print("boxes by box label (an image of one class can hold boxes of another):")
print(boxes["class"].value_counts().to_string())""",
    "md:## Boxes per image, box area and shape\nCrazing and rolled-in scale boxes often cover most of the image; "
    "inclusions and scratches are thin and small.",
    """fig, axes = plt.subplots(1, 3, figsize=(15, 3.5))
labels["n_defects"].value_counts().sort_index().plot.bar(ax=axes[0], title="boxes per image")
boxes.boxplot(column="area_fraction", by="class", ax=axes[1], rot=30)
axes[1].set_title("box area / image area")
boxes.boxplot(column="aspect", by="class", ax=axes[2], rot=30)
axes[2].set_title("box width / height")
axes[2].set_yscale("log")
fig.suptitle("")
fig.tight_layout()""",
    "md:## Samples with their boxes",
    """from Utilities.Plots import sample_grid

sample_grid(ROOT / "IMAGES", ROOT / "ANNOTATIONS", NEU_DET_CLASSES, per_class=4);""",
    "md:## Mean intensity per class",
    """from Utilities.Data_Retriever_Seg import read_image

paths = sorted((ROOT / "IMAGES").glob("*.jpg")) + sorted((ROOT / "Validation_Images").glob("*.jpg"))
intensity = pd.DataFrame({"class": [class_of(p.name) for p in paths], "mean": [read_image(p).mean() for p in paths]})
intensity.boxplot(column="mean", by="class", rot=30, figsize=(8, 3.5))
plt.suptitle("")
plt.title("mean grey level per image")
intensity.groupby("class")["mean"].describe()[["mean", "std", "min", "max"]]""",
)

split = notebook(
    "md:# 2. Create validation images\n\nA seeded split, stratified by class, of every NEU-DET image into "
    "**train**, **val** (model selection, stays in `IMAGES/`) and **test** (moved with its XML to "
    "`Validation_Images/` and `Validation_Annotations/`, never seen in training or model selection). "
    "The split is written once to `splits/NEU-DET.csv` and committed; running this notebook again moves nothing. "
    "To undo: `undo_test_split(ROOT)`.",
    SETUP,
    "# Parameters\nTEST_PER_CLASS = 50\nVAL_PER_CLASS = 40\nSEED = 42",
    """from Utilities.Validation_split import all_image_names, held_out_counts, make_split, move_test_images

split_path = ROOT / "splits" / "NEU-DET.csv"
if split_path.exists():
    split = pd.read_csv(split_path)
else:
    split = make_split(all_image_names(ROOT), TEST_PER_CLASS, VAL_PER_CLASS, SEED)
    split_path.parent.mkdir(exist_ok=True)
    split.to_csv(split_path, index=False)""",
    CHECK + """print(split.groupby(["class", "split"]).size().unstack().to_string())""",
    """moved = move_test_images(split, ROOT)
print(f"moved {moved} files")""",
    CHECK + """print(held_out_counts(ROOT).to_string())
print(len(list((ROOT / "IMAGES").glob("*.jpg"))), "images left in IMAGES/")""",
)

train = notebook(
    "md:# 3. Train a segmentation model\n\nU-Net with a ResNet34 encoder on masks made from the boxes, trained "
    "from scratch (no ImageNet weights can be downloaded here). On a CPU with bf16 instructions training runs in "
    "bfloat16 autocast with channels-last tensors. The best checkpoint by validation Dice lands in `Models/`.",
    SETUP,
    """# Parameters
ARCH = "Unet"  # or "FPN"
ENCODER = "resnet34"  # or "inceptionv4", "xception", "vgg16"
ENCODER_WEIGHTS = None  # "imagenet" when the hub or its cache is reachable, or a local weights file
IMAGE_SIZE = 128  # NEU images are 200x200; encoders need a multiple of 32
EPOCHS = 30
BATCH_SIZE = 8
LR = 1e-3
SEED = 42""",
    """import time

from Utilities.Config import TrainConfig
from Utilities.Data_Retriever_Seg import make_loaders
from Utilities.Resnet_Unet import build_model
from Utilities.Trainer import fit

config = TrainConfig(
    root=ROOT, arch=ARCH, encoder=ENCODER, encoder_weights=ENCODER_WEIGHTS, image_size=IMAGE_SIZE,
    epochs=EPOCHS, batch_size=BATCH_SIZE, lr=LR, seed=SEED, run_name=f"{ARCH.lower()}_{ENCODER}",
)
if QUICK:
    config.epochs, config.image_size, config.max_train_images, config.max_val_images = 1, 64, 64, 32
    config.run_name += "_quick"  # never overwrite a full run's model
train_loader, val_loader = make_loaders(config)
print(len(train_loader.dataset), "train images,", len(val_loader.dataset), "val images")""",
    """model, weights_used = build_model(config.arch, config.encoder, len(config.classes), config.encoder_weights)
started = time.perf_counter()
history = fit(model, train_loader, val_loader, config, weights_used)
print(f"trained {len(history)} epochs in {(time.perf_counter() - started) / 60:.1f} min")""",
    """from Utilities.Plots import plot_history

plot_history(history);""",
    """best = history.loc[history["val_dice"].idxmax()]
print(f"best epoch {best.epoch:.0f}: val Dice {best.val_dice:.4f}, IoU {best.val_iou:.4f}, mean IoU over classes {best.val_mean_iou:.4f}")
print("best checkpoint:", (config.models_dir / f"{config.run_name}_best.pth").relative_to(ROOT))
history.tail(5)""",
)

infer = notebook(
    "md:# 4. Inference on the held-out images\n\nLoads the best checkpoint of notebook 03, predicts masks for "
    "`Validation_Images/` (the test images that took no part in training or model selection) and scores them "
    "against `Validation_Annotations/` at the original 200x200 resolution. The same predictions are one command "
    "away: `python -m Utilities.Inference --checkpoint Models/unet_resnet34_best.pth --images Validation_Images --out predictions/`.",
    SETUP,
    """# Parameters
CHECKPOINT = ROOT / "Models" / ("unet_resnet34_quick_best.pth" if QUICK else "unet_resnet34_best.pth")
THRESHOLD = 0.5""",
    """from Utilities.Inference import Predictor, image_files

predictor = Predictor(CHECKPOINT)
trained = predictor.checkpoint
print(f"{trained['config']['arch']}/{trained['config']['encoder']}, input {trained['config']['image_size']} px, "
      f"encoder weights: {trained['encoder_weights_used']}, epoch {trained['epoch']}, val Dice {trained['metrics']['val_dice']:.4f}")""",
    CHECK + """test_images = image_files(ROOT / "Validation_Images")
print(len(test_images), "held-out images")""",
    "md:## Scores on the held-out images\nDice and IoU per image over all classes (averaged over images), "
    "per class pooled over pixels, and the image-level class accuracy (largest predicted area vs true class).",
    """from Utilities.Evaluate import evaluate_folder

meter = evaluate_folder(predictor, ROOT / "Validation_Images", ROOT / "Validation_Annotations", THRESHOLD,
                        limit=24 if QUICK else None)
scores = meter.compute()
pd.Series({k: scores[k] for k in ("dice", "iou", "mean_iou", "class_accuracy")}).to_frame("test")""",
    """meter.per_class_table()""",
    "md:## Image, truth, prediction and overlay, one example per class",
    """import numpy as np

from Utilities.Data_Retriever_Seg import read_image
from Utilities.Extract_masks import mask_from_xml
from Utilities.Plots import show_prediction

for name in predictor.classes:
    path = next(p for p in test_images if p.name.startswith(name + "_"))
    image = read_image(path)
    truth = mask_from_xml(ROOT / "Validation_Annotations" / f"{path.stem}.xml", predictor.classes)
    predicted = (predictor.predict([image])[0] > THRESHOLD).astype(np.uint8)
    show_prediction(image, truth, predicted, predictor.classes, title=path.name)
    plt.show()""",
    "md:## Masks for a folder, as the command line writes them",
    """from Utilities.Inference import predict_folder

written = predict_folder(predictor, ROOT / "Validation_Images", ROOT / "predictions", threshold=THRESHOLD)
print(len(written), "masks written to predictions/")""",
    "md:## ONNX export\nFor ONNX Runtime or other runtimes; the graph takes the normalised batch and returns "
    "probabilities. Checked here against PyTorch float32 on a few test images.",
    """import torch

from Utilities.Onnx_export import export_onnx, onnx_predict, onnx_session

onnx_path = export_onnx(CHECKPOINT, CHECKPOINT.with_suffix(".onnx"))
float32 = Predictor(CHECKPOINT, precision="float32")
batch = float32.preprocess([read_image(p) for p in test_images[:8]])
with torch.inference_mode():
    expected = torch.sigmoid(float32.model(batch)).numpy()
got = onnx_predict(onnx_session(onnx_path), batch)
print(f"{onnx_path.relative_to(ROOT)}: max |ONNX - PyTorch| = {abs(got - expected).max():.2e}, "
      f"masks agree on {((got > 0.5) == (expected > 0.5)).mean():.4%} of pixels")""",
)

for name, nb in {
    "01_EDA.ipynb": eda,
    "02_Create_validation_images.ipynb": split,
    "03_Train_segmentation_model.ipynb": train,
    "04_Inference.ipynb": infer,
}.items():
    if len(sys.argv) == 1 or name in sys.argv[1:]:
        nbf.write(nb, HERE / name)

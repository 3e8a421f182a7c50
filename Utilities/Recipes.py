"""Named starting points for training: each recipe is a set of ``TrainConfig`` settings, written once here.

``TrainConfig.from_recipe(name, **overrides)``, ``python -m Utilities.Train
--recipe NAME`` (other options override it), the notebooks and the experiment
runners all start from these. The generic recipes are picked by the kind of
data and leave the data set to the user (``data_format``, ``data_root``,
``classes``); the data set recipes add where our copies live (``make data``,
``make data-mt``, ``make data-cfd``). ``neu_det`` is ``TrainConfig``'s own
defaults. A new recipe is one entry and is covered by ``tests/test_recipes_and_layers.py``.
"""

from __future__ import annotations

from typing import NamedTuple


class Recipe(NamedTuple):
    description: str
    settings: dict


_MULTICLASS_SMALL = dict(arch="FPN", encoder="tu-tf_efficientnet_lite2", image_size=128, epochs=30, monitor="dice")
_SMALL_AREA_LARGE = dict(binary=True, full_resolution=True, defect_fraction=0.5, output_prior=0.01, image_head=True,
                         monitor="mean_dice", arch="Unet", encoder="tu-tf_efficientnet_lite0", image_size=256, epochs=24)
_THIN = dict(full_resolution=True, monitor="mean_dice", scores="thin", arch="Unet", decoder_attention="scse",
             encoder="tu-tf_efficientnet_lite2", image_size=256, epochs=100)

RECIPES: dict[str, Recipe] = {
    "multiclass_small_images": Recipe(
        "several defect classes on small images (about 200-400 px), one kind per image: images resized to 128 px, "
        "FPN/EfficientNet-Lite2, 30 epochs; best checkpoint by per-image Dice",
        dict(data_format="folders", run_name="fpn_lite2_multiclass", **_MULTICLASS_SMALL)),
    "small_defects_large_images": Recipe(
        "small area defects on large or varying images: one binary channel, 256 px crops at full resolution "
        "holding a defect half the time, U-Net/EfficientNet-Lite0 with an image-level head, 24 epochs",
        dict(data_format="folders", run_name="unet_lite0_head", **_SMALL_AREA_LARGE)),
    "thin_structures": Recipe(
        "cracks, scratches and other lines a few pixels wide (one class): 256 px crops at full "
        "resolution, U-Net/EfficientNet-Lite2 with scSE decoder attention, 100 epochs; crack scores within 2 px",
        dict(data_format="folders", run_name="unet_lite2_thin", **_THIN)),
    "neu_det": Recipe(
        "NEU-DET steel strips (make data): 6 classes from VOC boxes, the defaults of TrainConfig",
        dict(data_format="voc", run_name="fpn_lite2", **_MULTICLASS_SMALL)),
    "magnetic_tile": Recipe(
        "Magnetic Tile (make data-mt), as small_defects_large_images",
        dict(data_format="magnetic_tile", data_root="data/Magnetic-Tile", run_name="mt_unet_lite0_head", **_SMALL_AREA_LARGE)),
    "crackforest": Recipe(
        "CrackForest road photos (make data-cfd), as thin_structures",
        dict(data_format="crackforest", data_root="data/CrackForest", run_name="cfd_unet_lite2", **_THIN)),
}

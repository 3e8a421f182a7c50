"""Dataset, augmentation pipelines and DataLoaders for box-annotated defect images."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import albumentations as A  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from albumentations.pytorch import ToTensorV2  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from Utilities.Config import TrainConfig  # noqa: E402
from Utilities.Distributed import rank, world_size  # noqa: E402
from Utilities.Extract_masks import mask_from_xml  # noqa: E402
from Utilities.Validate_data import check_voc_dataset  # noqa: E402


def read_image(path: str | Path) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB image; raises ``ValueError`` naming the file if it cannot be decoded."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{path}: cannot read this image (missing, truncated or not an image)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def stratified_split(
    table: pd.DataFrame, size: int | float, seed: int, label_column: str = "class"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split rows into (rest, held_out), the same share of every class in each.

    Args:
        table: one row per image with a class column.
        size: images per class held out when an ``int``, a fraction when a ``float``.
        seed: the same seed always gives the same split.
    """
    if isinstance(size, int):
        held = table.groupby(label_column, group_keys=False).sample(n=size, random_state=seed)
        return table.drop(held.index), held
    rest, held = train_test_split(table, test_size=size, stratify=table[label_column], random_state=seed)
    return rest, held


def train_transforms(image_size: int, mean, std) -> A.Compose:
    """Flips, 90-degree turns and mild photometric change: defects have no preferred orientation."""
    return A.Compose(
        [
            A.HorizontalFlip(p=0.5),
            A.VerticalFlip(p=0.5),
            A.RandomRotate90(p=0.5),
            A.RandomBrightnessContrast(brightness_limit=0.1, contrast_limit=0.1, p=0.5),
            A.Resize(image_size, image_size, interpolation=cv2.INTER_LINEAR, mask_interpolation=cv2.INTER_NEAREST),
            A.Normalize(mean=mean, std=std),
            ToTensorV2(transpose_mask=True),
        ]
    )


def eval_transforms(image_size: int, mean, std) -> A.Compose:
    """Resize and normalise only."""
    return A.Compose(
        [
            A.Resize(image_size, image_size, interpolation=cv2.INTER_LINEAR, mask_interpolation=cv2.INTER_NEAREST),
            A.Normalize(mean=mean, std=std),
            ToTensorV2(transpose_mask=True),
        ]
    )


class DefectDataset(Dataset):
    """Images with VOC box annotations as ``(image (3, S, S) float, mask (C, S, S) float)`` pairs.

    Args:
        image_paths: image files; each has ``<annotation_dir>/<stem>.xml``.
        annotation_dir: folder of the XML files.
        classes: class names, one mask channel each.
        transform: albumentations pipeline ending in ``ToTensorV2(transpose_mask=True)``.
        cache_in_ram: decode every image and mask once, up front, instead of in
            every ``__getitem__`` (200x200 NEU-DET: about 0.4 MB per image).
    """

    def __init__(
        self,
        image_paths: list[Path],
        annotation_dir: str | Path,
        classes: tuple[str, ...],
        transform: A.Compose,
        cache_in_ram: bool = True,
    ):
        self.image_paths = [Path(p) for p in image_paths]
        self.annotation_dir = Path(annotation_dir)
        self.classes = tuple(classes)
        self.transform = transform
        self.cache = None
        if cache_in_ram:
            self.cache = [self.load(i) for i in tqdm(range(len(self)), desc="decoding into RAM", leave=False)]

    def __len__(self) -> int:
        return len(self.image_paths)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """``(H, W, 3)`` uint8 image and ``(H, W, C)`` uint8 mask, straight from disk."""
        path = self.image_paths[index]
        image = read_image(path)
        mask = mask_from_xml(self.annotation_dir / f"{path.stem}.xml", self.classes)
        if mask.shape[1:] != image.shape[:2]:
            raise ValueError(f"{path}: image is {image.shape[1]}x{image.shape[0]} but its XML says {mask.shape[2]}x{mask.shape[1]}")
        return image, np.ascontiguousarray(mask.transpose(1, 2, 0))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, mask = self.cache[index] if self.cache is not None else self.load(index)
        out = self.transform(image=image, mask=mask)
        return out["image"], out["mask"].float()


def seed_worker(worker_id: int) -> None:
    """Give each DataLoader worker its own augmentation stream, derived from the epoch's seed.

    Workers are started anew every epoch (no ``persistent_workers``), so the
    per-epoch reseeding in the Trainer reaches them too.
    """
    info = torch.utils.data.get_worker_info()
    dataset = info.dataset.dataset if isinstance(info.dataset, Subset) else info.dataset
    if hasattr(dataset.transform, "set_random_seed"):
        dataset.transform.set_random_seed(info.seed % 2**32)


def split_table(config: TrainConfig) -> pd.DataFrame:
    """The committed split file (``image, class, split``), checked to exist."""
    if not config.split_path.exists():
        raise FileNotFoundError(
            f"{config.split_path}: no split file; run notebooks/02_Create_validation_images.ipynb first"
        )
    return pd.read_csv(config.split_path)


def make_loaders(config: TrainConfig) -> tuple[DataLoader, DataLoader]:
    """Train and val DataLoaders over ``IMAGES/`` as listed in the split file.

    Under ``torchrun`` each process gets its share: a ``DistributedSampler``
    for training, every ``world_size``-th image for validation.

    On a CPU the default is ``num_workers=0``: the cached data set delivers
    batches far faster than the model trains, and a worker would take one of
    the two cores from the model (measured in ``make bench``).
    """
    table = split_table(config)
    selected = {}
    for split, limit in (("train", config.max_train_images), ("val", config.max_val_images)):
        rows = table[table["split"] == split]
        if limit is not None:
            rows = rows.sample(n=min(limit, len(rows)), random_state=config.seed).sort_index()
        selected[split] = [config.images_dir / name for name in rows["image"]]
        missing = [p.name for p in selected[split] if not p.exists()]
        if missing:
            raise FileNotFoundError(
                f"{len(missing)} {split} images of {config.split_path} are not in {config.images_dir}, "
                f"e.g. {missing[:3]}; run `make data` and notebook 02"
            )
    names = [p.name for paths in selected.values() for p in paths]
    report = check_voc_dataset(config.images_dir, config.annotations_dir, config.classes, names=names)
    report.raise_if_errors()
    if report.warnings:
        warnings.warn(f"{len(report.warnings)} data warnings, e.g. {report.warnings[0]}", stacklevel=2)
    loaders = []
    for split, transform in (("train", train_transforms), ("val", eval_transforms)):
        paths = selected[split]
        dataset = DefectDataset(
            paths,
            config.annotations_dir,
            config.classes,
            transform(config.image_size, config.mean, config.std),
            cache_in_ram=config.cache_in_ram,
        )
        sampler = None
        share = len(dataset) // world_size()
        if world_size() > 1 and split == "train":
            sampler = DistributedSampler(dataset, shuffle=True, seed=config.seed, drop_last=True)
        elif world_size() > 1:  # every val image exactly once over all processes
            dataset = Subset(dataset, range(rank(), len(dataset), world_size()))
        loaders.append(
            DataLoader(
                dataset,
                batch_size=config.batch_size,
                shuffle=split == "train" and sampler is None,
                sampler=sampler,
                drop_last=split == "train" and share > config.batch_size,
                num_workers=config.num_workers,
                worker_init_fn=seed_worker,
            )
        )
    return loaders[0], loaders[1]

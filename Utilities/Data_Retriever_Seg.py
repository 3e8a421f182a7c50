"""Dataset, augmentation pipelines and DataLoaders for any data set format of ``Utilities.Formats``."""

from __future__ import annotations

import warnings

import albumentations as A
import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset, WeightedRandomSampler
from tqdm.auto import tqdm

from Utilities.Config import TrainConfig
from Utilities.Distributed import rank, world_size
from Utilities.Errors import MissingFile
from Utilities.Formats import DataSource, Sample, open_source
from Utilities.Images import read_image
from Utilities.Transforms import eval_transforms, train_transforms
from Utilities.Validate_data import DataError


class SegmentationDataset(Dataset):
    """Samples of a ``DataSource`` as ``(image (3, H, W) float, mask (C, H, W) float)`` pairs.

    Args:
        source: the data set (any format of ``Utilities.Formats``).
        samples: the samples to serve, e.g. one split of ``source.samples()``.
        transform: albumentations pipeline ending in ``ToTensorV2(transpose_mask=True)``.
        cache_in_ram: decode every image and mask once, up front, instead of in
            every ``__getitem__`` (200x200 NEU-DET: about 0.4 MB per image).
    """

    def __init__(self, source: DataSource, samples: list[Sample], transform: A.Compose, cache_in_ram: bool = True):
        self.source = source
        self.samples = list(samples)
        self.transform = transform
        self.cache = None
        if cache_in_ram:
            self.cache = [self.load(i) for i in tqdm(range(len(self)), desc="decoding into RAM", leave=False)]

    def __len__(self) -> int:
        return len(self.samples)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """``(H, W, 3)`` uint8 image and ``(C, H, W)`` uint8 mask, straight from disk."""
        sample = self.samples[index]
        image = read_image(sample.image)
        return image, self.source.mask(sample, *image.shape[:2])

    def has_defect(self) -> np.ndarray:
        """Per sample, whether its mask has any defect pixel (reads the masks unless cached)."""
        if self.cache is not None:
            return np.array([mask.any() for _, mask in self.cache])
        return np.array([self.load(i)[1].any() for i in range(len(self))])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, mask = self.cache[index] if self.cache is not None else self.load(index)
        out = self.transform(image=image, mask=mask.transpose(1, 2, 0))  # albumentations takes masks as (H, W, C)
        return out["image"], out["mask"].float()


def defect_sampler(dataset: SegmentationDataset, defect_fraction: float) -> WeightedRandomSampler:
    """Draws images with a defect with probability ``defect_fraction``, one epoch = ``len(dataset)`` draws.

    Most Magnetic Tile images are defect-free; uniform sampling shows the
    model too few defects to learn them.
    """
    defective = dataset.has_defect()
    if defective.all() or not defective.any():
        return WeightedRandomSampler(np.ones(len(dataset)), len(dataset))
    weights = np.where(defective, defect_fraction / defective.sum(), (1 - defect_fraction) / (~defective).sum())
    return WeightedRandomSampler(weights, len(dataset))


def seed_worker(worker_id: int) -> None:
    """Give each DataLoader worker its own augmentation stream, derived from the epoch's seed.

    Workers are started anew every epoch (no ``persistent_workers``), so the
    per-epoch reseeding in the Trainer reaches them too.
    """
    info = torch.utils.data.get_worker_info()
    dataset = info.dataset.dataset if isinstance(info.dataset, Subset) else info.dataset
    if hasattr(dataset.transform, "set_random_seed"):
        dataset.transform.set_random_seed(info.seed % 2**32)


def source_of(config: TrainConfig) -> DataSource:
    """The data set a config names (format, root, classes, binary)."""
    return open_source(config.data_format, config.data_path, config.classes, config.binary)


def split_table(config: TrainConfig) -> pd.DataFrame:
    """The committed split file (``image, class, split``); ``MissingFile`` naming the command that writes it."""
    if not config.split_path.exists():
        data = f" --data-root {config.data_root}" if config.data_root else ""
        raise MissingFile(f"{config.split_path}: no split file; write it with: python -m Utilities.Validation_split "
                          f"--data-format {config.data_format}{data} --split-file {config.split_file}")
    return pd.read_csv(config.split_path)


def make_loaders(config: TrainConfig) -> tuple[DataLoader, DataLoader]:
    """Train and val DataLoaders over the config's data set, as listed in the split file.

    Every sample is checked first (``DataSource.check``): a bad file stops the
    run before training, named in the error. Under ``torchrun`` each process
    gets its share: a ``DistributedSampler`` for training, every
    ``world_size``-th image for validation.

    On a CPU the default is ``num_workers=0``: the cached data set delivers
    batches far faster than the model trains, and a worker would take one of
    the two cores from the model (measured in ``make bench``).
    """
    source = source_of(config)
    table = split_table(config)
    selected = {}
    for split, limit in (("train", config.max_train_images), ("val", config.max_val_images)):
        rows = table[table["split"] == split]
        if limit is not None:
            rows = rows.sample(n=min(limit, len(rows)), random_state=config.seed).sort_index()
        selected[split] = list(rows["image"])
    report = source.check(names=[n for names in selected.values() for n in names])
    if report.errors:
        raise DataError(f"the data set {config.data_path} has errors; nothing was trained. Fix or remove the files "
                        f"named, then run again:\n{report}")
    if report.warnings:
        warnings.warn(f"{len(report.warnings)} data warnings, e.g. {report.warnings[0]}", stacklevel=2)
    if config.defect_fraction is not None and world_size() > 1:
        raise ValueError("defect_fraction is not supported under torchrun; leave it None")
    loaders = []
    for split, transform in (("train", train_transforms), ("val", eval_transforms)):
        dataset = SegmentationDataset(
            source,
            [source.sample(name) for name in selected[split]],
            transform(config.image_size, config.mean, config.std, config.full_resolution),
            cache_in_ram=config.cache_in_ram,
        )
        sampler = None
        share = len(dataset) // world_size()
        if split == "train" and config.defect_fraction is not None:
            sampler = defect_sampler(dataset, config.defect_fraction)
        elif world_size() > 1 and split == "train":
            sampler = DistributedSampler(dataset, shuffle=True, seed=config.seed, drop_last=True)
        elif world_size() > 1:  # every val image exactly once over all processes
            dataset = Subset(dataset, range(rank(), len(dataset), world_size()))
        whole_images = split == "val" and config.full_resolution  # sizes differ: one image per batch
        loaders.append(
            DataLoader(
                dataset,
                batch_size=1 if whole_images else config.batch_size,
                shuffle=split == "train" and sampler is None,
                sampler=sampler,
                drop_last=split == "train" and share > config.batch_size,
                num_workers=config.num_workers,
                worker_init_fn=seed_worker,
            )
        )
    return loaders[0], loaders[1]

"""The one settings object that notebooks fill from their parameters cell."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from Utilities.Extract_masks import NEU_DET_CLASSES

QUICK_ENV = "SEG_QUICK"


def quick_mode() -> bool:
    """True when ``SEG_QUICK=1``: every notebook then runs in a few minutes."""
    return os.environ.get(QUICK_ENV, "0") not in ("", "0", "false", "False")


@dataclass
class TrainConfig:
    """Everything a training run needs; stored in every checkpoint.

    Paths are relative to ``root``, the project folder that holds ``IMAGES/``.
    """

    root: Path = Path(".")
    classes: tuple[str, ...] = NEU_DET_CLASSES
    arch: str = "Unet"
    encoder: str = "resnet34"
    encoder_weights: str | None = None
    image_size: int = 128
    epochs: int = 30
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 1e-4
    optimizer: str = "adamw"
    loss: str = "bce_dice"
    precision: str = "auto"
    threshold: float = 0.5
    seed: int = 42
    num_workers: int = 0
    cache_in_ram: bool = True
    max_train_images: int | None = None
    max_val_images: int | None = None
    run_name: str = "unet_resnet34"
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    split_file: str = "splits/NEU-DET.csv"
    extra: dict = field(default_factory=dict)

    @property
    def images_dir(self) -> Path:
        return Path(self.root) / "IMAGES"

    @property
    def annotations_dir(self) -> Path:
        return Path(self.root) / "ANNOTATIONS"

    @property
    def models_dir(self) -> Path:
        return Path(self.root) / "Models"

    @property
    def split_path(self) -> Path:
        return Path(self.root) / self.split_file

    def to_dict(self) -> dict:
        """Plain Python values only, so checkpoints load with ``weights_only=True``."""
        values = asdict(self)
        values["root"] = str(values["root"])
        if values["encoder_weights"] is not None:
            values["encoder_weights"] = str(values["encoder_weights"])
        values["classes"] = list(values["classes"])
        values["mean"] = list(values["mean"])
        values["std"] = list(values["std"])
        return values

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        known = {k: v for k, v in values.items() if k in cls.__dataclass_fields__}
        for key in ("classes", "mean", "std"):
            if key in known:
                known[key] = tuple(known[key])
        known["root"] = Path(known.get("root", "."))
        return cls(**known)

"""The one settings object that notebooks fill from their parameters cell."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from Utilities.Encoder_weights import normalisation
from Utilities.Formats import FORMATS

QUICK_ENV = "SEG_QUICK"


def quick_mode() -> bool:
    """True when ``SEG_QUICK=1``: every notebook then runs in a few minutes."""
    return os.environ.get(QUICK_ENV, "0") not in ("", "0", "false", "False")


def run_settings(run_name: str, epochs: int, image_size: int, quick: bool, quick_images: tuple[int, int]) -> dict:
    """The ``TrainConfig`` settings that differ between a full run and quick mode.

    Quick mode trains one epoch at 64 px on ``quick_images`` (train, val)
    images, under ``<run_name>_quick`` so that it never overwrites a full
    run's model.
    """
    if not quick:
        return dict(run_name=run_name, epochs=epochs, image_size=image_size)
    train, val = quick_images
    return dict(run_name=f"{run_name}_quick", epochs=1, image_size=64, max_train_images=train, max_val_images=val)


def setting(default, option: bool = True, resume: bool = False):
    """A ``TrainConfig`` field, declared once with what it is: ``option``, an option of the training command
    (``Utilities.Train``); ``resume``, a setting that a resumed run must share (``Checkpoint.check_resumable``)."""
    return field(default=default, metadata={"option": option, "resume": resume})


@dataclass
class TrainConfig:
    """Everything a training run needs; stored in every checkpoint.

    Paths are relative to ``root``, the project folder that holds ``IMAGES/``.

    The data set is a short spec: ``data_format`` (see ``Utilities.Formats``),
    ``data_root`` (default: ``root``, where NEU-DET's folders live),
    ``classes`` as named in the data (default: the format's own, e.g. NEU-DET's
    six), and ``binary`` to merge them into one ``defect`` channel.

    ``full_resolution`` trains on ``image_size`` crops taken at the images'
    own resolution, each holding a defect where the image has one, and
    evaluates whole images, instead of resizing every image to
    ``image_size``; for small defects on large or varying images (Magnetic
    Tile, Severstal).
    ``defect_fraction`` makes the training sampler draw images with a defect
    that often (default: as often as they occur). ``monitor`` is the
    validation score that picks the best checkpoint (the highest; ``loss``: the
    lowest validation loss). ``output_prior`` starts
    every pixel's predicted probability at that value (for tiny defects, about
    their share of the pixels; see ``Resnet_Unet.set_output_prior``).
    ``image_head`` adds a classification head that predicts per class whether
    the image holds that defect, trained beside the masks; post-processing can
    then suppress the masks of images it judges free of a defect
    (``Resnet_Unet.WithImageLogits``, ``Postprocess``).
    ``mean`` and ``std`` normalise the inputs; by default those the encoder
    weights were trained with (``Encoder_weights.normalisation``), so
    training, evaluation, prediction and ONNX export all use them.
    """

    root: Path = setting(Path("."), option=False)
    data_format: str = setting("voc", resume=True)
    data_root: str | None = setting(None)
    classes: tuple[str, ...] | None = setting(None)
    binary: bool = setting(False, resume=True)
    full_resolution: bool = setting(False, resume=True)
    defect_fraction: float | None = setting(None, resume=True)
    monitor: str = setting("dice")
    output_prior: float | None = setting(None)
    image_head: bool = setting(False, resume=True)
    arch: str = setting("FPN")
    encoder: str = setting("tu-tf_efficientnet_lite2")
    encoder_weights: str | None = setting("imagenet")
    image_size: int = setting(128, resume=True)
    epochs: int = setting(30, resume=True)
    batch_size: int = setting(8, resume=True)
    lr: float = setting(1e-3, resume=True)
    weight_decay: float = setting(1e-4, resume=True)
    optimizer: str = setting("adamw", resume=True)
    scheduler: str = setting("onecycle", resume=True)
    loss: str = setting("bce_dice", resume=True)
    dice_weight: float = setting(1.0, resume=True)  # the soft-Dice term's weight beside the pixel loss (*_dice losses)
    image_loss_weight: float = setting(1.0, resume=True)  # the image head's cross-entropy term's weight
    precision: str = setting("auto")
    threshold: float = setting(0.5)
    seed: int = setting(42, resume=True)
    num_workers: int = setting(0)
    cache_in_ram: bool = setting(True)
    max_train_images: int | None = setting(None, resume=True)
    max_val_images: int | None = setting(None)
    run_name: str = setting("fpn_lite2")
    mean: tuple[float, float, float] | None = setting(None, option=False)
    std: tuple[float, float, float] | None = setting(None, option=False)
    split_file: str | None = setting(None, resume=True)  # default: splits/<data set folder's name>.csv

    def __post_init__(self):
        if self.data_format not in FORMATS:
            raise KeyError(f"unknown data set format {self.data_format!r}; known: {', '.join(FORMATS)}")
        self.classes = tuple(self.classes) if self.classes else FORMATS[self.data_format].default_classes
        if self.split_file is None:  # the data set's own folder name, or its format's usual one at the project root
            name = (Path(self.data_root).name if self.data_root else "") or FORMATS[self.data_format].default_name
            self.split_file = f"splits/{name}.csv"
        own_mean, own_std = normalisation(self.encoder, self.encoder_weights)
        self.mean, self.std = tuple(self.mean or own_mean), tuple(self.std or own_std)
        self._check_registered_names()
        for name in ("defect_fraction", "output_prior"):
            value = getattr(self, name)
            if value is not None and not 0 < value < 1:
                raise ValueError(f"{name} must lie between 0 and 1 (exclusive), not {value}")

    def _check_registered_names(self) -> None:
        """A ``KeyError`` listing the known names for an unknown architecture, encoder, loss, optimiser, scheduler or monitor,
        now rather than at the first epoch."""
        from Utilities.Resnet_Unet import architectures, check_encoder
        from Utilities.Trainer import LOSSES, OPTIMIZERS, SCHEDULERS, check_monitor

        for kind, name, known in (("architecture", self.arch, architectures()), ("loss", self.loss, LOSSES),
                                  ("optimizer", self.optimizer, OPTIMIZERS), ("scheduler", self.scheduler, SCHEDULERS)):
            if name not in known:
                raise KeyError(f"unknown {kind} {name!r}; known: {', '.join(known)}")
        check_encoder(self.encoder)
        check_monitor(self.monitor, self.channels)

    @classmethod
    def settings(cls, kind: str) -> tuple[str, ...]:
        """The names of the fields declared ``option`` or ``resume`` (see ``setting``)."""
        return tuple(f.name for f in fields(cls) if f.metadata.get(kind))

    @property
    def channels(self) -> tuple[str, ...]:
        """The model's output channels: the classes, or ``("defect",)`` when binary."""
        return ("defect",) if self.binary else tuple(self.classes)

    @property
    def data_path(self) -> Path:
        return Path(self.root) / self.data_root if self.data_root else Path(self.root)

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

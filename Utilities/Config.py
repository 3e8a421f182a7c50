"""The one settings object that notebooks, commands and checkpoints share: ``TrainConfig``.

Every field is declared once with what it is (``setting``): its help text for
the command line, whether it is an option of the training command, whether a
resumed run must share it, and for names looked up in a registry, where the
valid ones come from. The registries sit below this module (``Formats``,
``Architectures``, ``Losses``, ``Optim``, ``Meter``, ``Recipes``), so a
config checks its names without importing the training loop.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from Utilities.Architectures import (
    DECODER_ATTENTIONS,
    architectures,
    check_architecture,
    check_decoder_attention,
    check_decoder_channels,
    check_encoder,
    decoder_attention_architectures,
    decoder_width_architectures,
)
from Utilities.Encoder_weights import normalisation, offline_encoders
from Utilities.Errors import ConfigError, check_name
from Utilities.Formats import FORMATS
from Utilities.Hardware import PRECISIONS
from Utilities.Losses import LOSSES
from Utilities.Meter import SCORE_FAMILIES, check_monitor, monitor_names
from Utilities.Optim import OPTIMIZERS, SCHEDULERS
from Utilities.Recipes import RECIPES

QUICK_ENV = "SEG_QUICK"


def quick_mode() -> bool:
    """True when ``SEG_QUICK=1``: every notebook then runs in a few minutes."""
    return os.environ.get(QUICK_ENV, "0") not in ("", "0", "false", "False")


def setting(default, help: str, option: bool = True, resume: bool = False, names: Callable[[], Iterable[str]] | None = None):
    """A ``TrainConfig`` field, declared once with what it is: ``help``, its meaning; ``option``, an option of
    the training command (``Utilities.Train``); ``resume``, a setting that a resumed run must share
    (``Checkpoint.check_resumable``); ``names``, the registry of its valid values, listed in ``--help``."""
    return field(default=default, metadata={"help": help, "option": option, "resume": resume, "names": names})


@dataclass
class TrainConfig:
    """Everything a training run needs; stored in every checkpoint. Paths are relative to ``root``.

    The data set is a short spec: ``data_format`` (see ``Utilities.Formats``),
    ``data_root``, ``classes`` as named in the data and ``binary``. Each
    field's ``help`` says what it does (``python -m Utilities.Train --help``).
    ``mean`` and ``std`` normalise the inputs; by default those the encoder
    weights were trained with (``Encoder_weights.normalisation``), so
    training, evaluation, prediction and ONNX export all use them.
    """

    root: Path = setting(Path("."), "project folder holding Models/ and splits/", option=False)
    recipe: str | None = setting(None, "the recipe this config started from (TrainConfig.from_recipe)", option=False)
    data_format: str = setting("voc", "layout of the data set", resume=True, names=lambda: FORMATS)
    data_root: str | None = setting(None, "the data set's folder, relative to --root or absolute (default: the project "
                                          "folder itself, where NEU-DET's IMAGES/ and ANNOTATIONS/ live)")
    classes: tuple[str, ...] | None = setting(None, "class names, comma-separated, one output channel each, in the "
                                                    "order of the mask values 1, 2, ... (default: the format's own)")
    binary: bool = setting(False, "merge every class into one 'defect' channel", resume=True)
    full_resolution: bool = setting(False, "train on --image-size crops at the images' own resolution, each holding a "
                                           "defect where the image has one, and evaluate whole images; for small "
                                           "defects on large or varying images (default: resize every image)",
                                    resume=True)
    defect_fraction: float | None = setting(None, "share of training draws that hold a defect, between 0 and 1 "
                                                  "(default: as often as they occur)", resume=True)
    monitor: str = setting("dice", "validation score that picks the best checkpoint, the highest (loss: the lowest; "
                                   "<class>: a class name)", names=lambda: monitor_names(("<class>",)))
    scores: str = setting("area", "the scores evaluation reports and tuning maximises", names=lambda: SCORE_FAMILIES)
    output_prior: float | None = setting(None, "start every pixel's defect probability at this value, between 0 and 1 "
                                               "(for tiny defects, about their share of the pixels)")
    image_head: bool = setting(False, "add a classifier that predicts per class whether the image holds the defect, "
                                      "trained beside the masks; tuning may then gate masks by it", resume=True)
    arch: str = setting("FPN", "smp architecture", names=lambda: sorted(architectures()))
    decoder_channels: tuple[int, ...] | None = setting(
        None, "the decoder's widths, deepest stage first, comma-separated, for the architectures that take them "
              f"({', '.join(decoder_width_architectures())}); narrower ones take less time per epoch at full "
              "resolution, and may need more epochs "
              "(default: the architecture's own, 256,128,64,32,16 for Unet)", resume=True)
    decoder_attention: str | None = setting(
        None, "attention in every decoder block, for the architectures that take it "
              f"({', '.join(decoder_attention_architectures())}): it reweighs the skip features' channels and "
              "pixels, which can help thin structures (default: none)", resume=True, names=lambda: DECODER_ATTENTIONS)
    encoder: str = setting("tu-tf_efficientnet_lite2", "encoder: any of smp's, or tu-<any timm model>; these have "
                                                       "ImageNet weights that need no network", names=offline_encoders)
    encoder_weights: str | None = setting("imagenet", "imagenet, none for random initialisation, or a .safetensors or "
                                                      ".pth file of encoder weights")
    image_size: int = setting(128, "training input side in pixels, a multiple of 32 (the crop side with "
                                   "--full-resolution true)", resume=True)
    epochs: int = setting(30, "passes over the training images", resume=True)
    batch_size: int = setting(8, "images per training step", resume=True)
    lr: float = setting(1e-3, "learning rate (the one-cycle schedule's peak)", resume=True)
    weight_decay: float = setting(1e-4, "the optimiser's weight decay", resume=True)
    optimizer: str = setting("adamw", "optimiser", resume=True, names=lambda: OPTIMIZERS)
    scheduler: str = setting("onecycle", "learning-rate schedule, stepped every batch", resume=True,
                             names=lambda: SCHEDULERS)
    loss: str = setting("bce_dice", "training loss", resume=True, names=lambda: LOSSES)
    dice_weight: float = setting(1.0, "the overlap term's weight (soft Dice, Tversky or Lovasz) beside the pixel loss, in "
                                      "the losses that have both", resume=True)
    image_loss_weight: float = setting(1.0, "the image head's cross-entropy term's weight", resume=True)
    precision: str = setting("auto", "training precision (auto: on a CPU the faster of float32 and bfloat16, measured "
                                     "once on this machine in a few seconds and cached; mixed precision on CUDA)", names=lambda: PRECISIONS)
    threshold: float = setting(0.5, "probability threshold of the validation scores while training (Utilities.Tune "
                                    "chooses the prediction setup on val afterwards)")
    seed: int = setting(42, "seeds initialisation, shuffling and augmentation", resume=True)
    num_workers: int = setting(0, "DataLoader worker processes (0: load in the training process, the fastest with "
                                  "--cache-in-ram on a few CPU cores)")
    cache_in_ram: bool = setting(True, "decode every image once and keep it in memory")
    max_train_images: int | None = setting(None, "train on at most this many images (quick checks)", resume=True)
    max_val_images: int | None = setting(None, "validate on at most this many images (quick checks)")
    run_name: str = setting("fpn_lite2", "name of the files in Models/: <run>_best.pth, <run>_last.pth, "
                                         "<run>_history.csv")
    mean: tuple[float, float, float] | None = setting(None, "input normalisation mean", option=False)
    std: tuple[float, float, float] | None = setting(None, "input normalisation standard deviation", option=False)
    split_file: str | None = setting(None, "the split file (image, class, split), relative to --root (default: "
                                           "splits/<data set folder's name>.csv; python -m Utilities.Validation_split "
                                           "writes it)", resume=True)

    def __post_init__(self):
        self._complete()
        self.check_training()

    def _complete(self) -> None:
        """Fill the defaults that depend on other fields and check what prediction needs too."""
        check_name("data set format", self.data_format, FORMATS)
        self.classes = tuple(self.classes) if self.classes else FORMATS[self.data_format].classes_in(self.data_path)
        if self.split_file is None:  # the data set's own folder name, or its format's usual one at the project root
            name = (Path(self.data_root).name if self.data_root else "") or FORMATS[self.data_format].default_name
            self.split_file = f"splits/{name}.csv"
        own_mean, own_std = normalisation(self.encoder, self.encoder_weights)
        self.mean, self.std = tuple(self.mean or own_mean), tuple(self.std or own_std)
        check_architecture(self.arch)
        check_encoder(self.encoder)
        if self.decoder_channels is not None:
            self.decoder_channels = check_decoder_channels(self.arch, self.decoder_channels)
        if self.decoder_attention is not None:
            check_decoder_attention(self.arch, self.decoder_attention, self.decoder_channels)
        check_name("score family", self.scores, SCORE_FAMILIES)
        if self.scores == "thin" and len(self.channels) != 1:
            raise ConfigError(f"thin-structure scores need one channel, not {list(self.channels)}; merge the classes "
                              "with binary=True (--binary true) or use scores='area'")
        for name in ("defect_fraction", "output_prior"):
            value = getattr(self, name)
            if value is not None and not 0 < value < 1:
                raise ConfigError(f"{name} must lie between 0 and 1 (exclusive), not {value}")

    def check_training(self) -> None:
        """An ``UnknownName`` listing the known names for an unknown loss, optimiser, scheduler, monitor or
        precision: what only training needs, so a checkpoint whose loss was renamed since still predicts."""
        for kind, name, known in (("loss", self.loss, LOSSES), ("optimizer", self.optimizer, OPTIMIZERS),
                                  ("scheduler", self.scheduler, SCHEDULERS), ("precision", self.precision, PRECISIONS)):
            check_name(kind, name, known)
        check_monitor(self.monitor, self.channels)

    @classmethod
    def from_recipe(cls, name: str, **overrides) -> TrainConfig:
        """The recipe ``name``'s settings (``Utilities.Recipes``) with ``overrides`` on top."""
        check_name("recipe", name, RECIPES)
        return cls(**{**RECIPES[name].settings, "recipe": name, **overrides})

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
        for key in ("classes", "mean", "std", "decoder_channels"):
            values[key] = None if values[key] is None else list(values[key])
        return values

    @classmethod
    def from_dict(cls, values: dict, training: bool = False) -> TrainConfig:
        """A stored config (settings added since take their defaults). Checked for prediction only, unless
        ``training`` (a run resumed from it)."""
        known = {k: v for k, v in values.items() if k in cls.__dataclass_fields__}
        for key in ("classes", "mean", "std", "decoder_channels"):
            if known.get(key) is not None:
                known[key] = tuple(known[key])
        known["root"] = Path(known.get("root", "."))
        if training:
            return cls(**known)
        config = cls.__new__(cls)
        for f in fields(cls):
            setattr(config, f.name, known.get(f.name, f.default))
        config._complete()
        return config


def quick_run(config: TrainConfig, train_images: int, val_images: int) -> TrainConfig:
    """``config`` for quick mode (``SEG_QUICK=1``): one epoch at 64 px on that many images, under
    ``<run_name>_quick`` so that it never overwrites a full run's model."""
    return replace(config, run_name=f"{config.run_name}_quick", epochs=1, image_size=64,
                   max_train_images=train_images, max_val_images=val_images)

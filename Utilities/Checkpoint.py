"""Self-describing checkpoints that load without running code.

A checkpoint holds only tensors and plain Python values, so it loads with
``torch.load(..., weights_only=True)``; a file that needs arbitrary unpickling
(which could run code) is refused.
"""

from __future__ import annotations

import pickle
import subprocess
import warnings
from pathlib import Path

import segmentation_models_pytorch as smp
import torch

from Utilities.Config import TrainConfig
from Utilities.Errors import ConfigError, MissingFile
from Utilities.Files import atomic_write
from Utilities.Postprocess import InferenceSetup, PostProcessing
from Utilities.Resnet_Unet import model_for


def library_versions() -> dict[str, str]:
    """Versions recorded in every checkpoint."""
    return {"torch": str(torch.__version__), "segmentation_models_pytorch": str(smp.__version__)}


def git_commit(folder: str | Path) -> str | None:
    """The commit the code was at, or ``None`` outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=5, check=True
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def atomic_save(payload: dict, path: str | Path) -> None:
    """``torch.save`` through ``Files.atomic_write``: a kill while saving leaves the previous checkpoint whole."""
    atomic_write(path, lambda partial: torch.save(payload, partial))


def save_checkpoint(
    path: str | Path,
    model: torch.nn.Module,
    config: TrainConfig,
    metrics: dict[str, float],
    encoder_weights_used: str | None,
    **extra,
) -> None:
    """Save everything needed to rebuild and use ``model`` without the training notebook."""
    model = getattr(model, "module", model)
    payload = {
        "config": config.to_dict(),
        "metrics": {k: float(v) for k, v in metrics.items()},
        "encoder_weights_used": encoder_weights_used,
        "versions": library_versions(),
        "git_commit": git_commit(Path(__file__).parent),
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
        **extra,
    }
    atomic_save(payload, path)


def read_checkpoint(path: str | Path) -> dict:
    """The raw checkpoint dict, loaded safely on the CPU."""
    path = Path(path)
    if not path.exists():
        raise MissingFile(f"{path}: checkpoint not found (python -m Utilities.Train writes Models/<run>_best.pth)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise ConfigError(
            f"{path}: refused to load; the file holds objects other than tensors and plain values, "
            f"which could run code when unpickled. Only load it with weights_only=False if you trust "
            f"its author. ({str(error).splitlines()[0]})"
        ) from error


def store_inference_setup(path: str | Path, setup: InferenceSetup, int8_model: dict | None = None,
                          int8_check: str | None = None) -> None:
    """Keep the inference setup chosen on val in the checkpoint ``path``, where ``Predictor`` (and so evaluation
    and the command line) finds it, with the int8 model it runs where it chose int8 (``Utilities.Int8``) and the
    line saying why; the file is replaced atomically."""
    checkpoint = read_checkpoint(path)
    checkpoint["inference_setup"] = setup.to_dict()
    checkpoint.pop("postprocessing", None)  # an older checkpoint's post-processing alone
    for key, value in (("int8_model", int8_model), ("int8_check", int8_check)):
        checkpoint.pop(key, None)
        if value is not None:
            checkpoint[key] = value
    atomic_save(checkpoint, path)


def stored_inference_setup(checkpoint: dict, config: TrainConfig) -> InferenceSetup:
    """The checkpoint's inference setup; from an older checkpoint its post-processing alone; else the plain one."""
    if "inference_setup" in checkpoint:
        return InferenceSetup.from_dict(checkpoint["inference_setup"])
    if "postprocessing" in checkpoint:
        return InferenceSetup(PostProcessing.from_dict(checkpoint["postprocessing"]), chosen_on="val (post-processing only)")
    return InferenceSetup.plain(len(config.channels), config.threshold)



def check_resumable(checkpoint: dict, wanted: dict, path: str | Path) -> None:
    """Raise, naming both sides, unless ``checkpoint`` is a last checkpoint of the same run settings."""
    if "optimizer" not in checkpoint:
        raise ConfigError(f"{path} is not a _last.pth checkpoint (it holds no optimiser state); resume from <run>_last.pth")
    saved = TrainConfig.from_dict(checkpoint["config"], training=True).to_dict()  # settings added since: defaults
    if _describe(saved) != _describe(wanted):
        raise ConfigError(f"{path} holds {_describe(saved)}, but this run builds {_describe(wanted)}")
    differ = [f"{k}: checkpoint {saved.get(k)!r}, this run {wanted.get(k)!r}"
              for k in TrainConfig.settings("resume") if saved.get(k) != wanted.get(k)]
    if differ:
        raise ConfigError(f"{path} was trained with other settings; resume with the same ones ({'; '.join(differ)})")


def _describe(config: dict) -> str:
    channels = TrainConfig.from_dict(config).channels
    return f"{config['arch']}/{config['encoder']} with {len(channels)} classes {list(channels)}"


def warn_on_version_change(checkpoint: dict, path: str | Path) -> None:
    """Warn when a library's major version differs from the one the checkpoint was made with."""
    for library, saved in checkpoint.get("versions", {}).items():
        current = library_versions().get(library)
        if current and saved.split(".")[0] != current.split(".")[0]:
            warnings.warn(f"{path} was made with {library} {saved}; this is {current}", stacklevel=3)


def load_checkpoint(path: str | Path) -> tuple[torch.nn.Module, dict]:
    """Rebuild the model from a checkpoint.

    Returns:
        The model in eval mode on the CPU and the checkpoint dict (config,
        metrics, versions...) without the weights.
    """
    checkpoint = read_checkpoint(path)
    warn_on_version_change(checkpoint, path)
    config = TrainConfig.from_dict(checkpoint["config"])
    model, _ = model_for(config, pretrained=False)
    try:
        model.load_state_dict(checkpoint.pop("state_dict"))
    except RuntimeError as error:
        raise ConfigError(
            f"{path}: weights do not fit {config.arch}/{config.encoder} with {len(config.channels)} classes "
            f"({str(error).splitlines()[0]})"
        ) from error
    return model.eval(), checkpoint

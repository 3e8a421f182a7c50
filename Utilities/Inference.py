"""Predicted masks for new images from a checkpoint, as a library and a command.

Usage::

    python -m Utilities.Inference --checkpoint Models/fpn_lite2_best.pth \\
        --images Validation_Images --out predictions/

writes, per image, ``<stem>_mask.png`` (0 = background, k = k-th class, the
most probable class where several pass the threshold) and ``<stem>_overlay.jpg``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch.fx.proxy import TraceError
from torch.nn.utils.fusion import fuse_conv_bn_eval
from tqdm.auto import tqdm

from Utilities.Checkpoint import load_checkpoint
from Utilities.Config import TrainConfig
from Utilities.Data_Retriever_Seg import eval_transforms, read_image
from Utilities.Hardware import autocast, autocast_dtype, default_device, prepare_model
from Utilities.Plots import overlay
from Utilities.Resnet_Unet import padded_forward
from Utilities.Validate_data import IMAGE_SUFFIXES


def optimise_for_inference(model: torch.nn.Module, device: torch.device, dtype: torch.dtype | None) -> torch.nn.Module:
    """The fastest eager form of ``model`` for predictions (measured in ``make bench``).

    BatchNorm is folded into the preceding convolutions, the layout is
    channels-last, and on a CPU with bf16 instructions the weights themselves
    become bfloat16, which saves autocast's per-call casts.
    """
    model = prepare_model(fold_batch_norm(model.eval()), device)
    return model.to(torch.bfloat16) if device.type == "cpu" and dtype == torch.bfloat16 else model


class _ConvAndNormAsLeaves(torch.fx.Tracer):
    """Traces convolutions and BatchNorms as single calls, also subclasses with shape-dependent code
    (timm's ``Conv2dSame`` pads by the input's size; its ``BatchNormAct2d`` carries an activation)."""

    def is_leaf_module(self, module: torch.nn.Module, qualified_name: str) -> bool:
        return isinstance(module, (torch.nn.Conv2d, torch.nn.BatchNorm2d)) or super().is_leaf_module(module, qualified_name)


def _after_folding(norm: torch.nn.BatchNorm2d) -> torch.nn.Module:
    """What is left of a BatchNorm once folded: nothing, or the dropout and activation a ``BatchNormAct2d`` adds."""
    extras = [getattr(norm, name) for name in ("drop", "act") if isinstance(getattr(norm, name, None), torch.nn.Module)]
    return torch.nn.Sequential(*extras) if extras else torch.nn.Identity()


def fold_batch_norm(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` (in eval mode) with each BatchNorm folded into the convolution before it, in place.

    torch.fx finds the convolution-BatchNorm pairs; the modules keep their
    classes and attributes (a folded BatchNorm becomes ``Identity``, or the
    activation of timm's ``BatchNormAct2d``). A module torch.fx cannot trace
    (FPN, whose decoder branches on tensor shapes) has its children folded one by one.
    """
    if not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()):
        return model
    try:
        graph = _ConvAndNormAsLeaves().trace(model)
    except TraceError:
        for child in model.children():
            fold_batch_norm(child)
        return model
    modules = dict(model.named_modules())
    for node in graph.nodes:
        source = node.args[0] if node.args else None
        if (
            node.op == "call_module" and isinstance(modules[node.target], torch.nn.BatchNorm2d)
            and isinstance(source, torch.fx.Node) and source.op == "call_module"
            and isinstance(modules[source.target], torch.nn.Conv2d) and len(source.users) == 1
        ):
            model.set_submodule(source.target, fuse_conv_bn_eval(modules[source.target], modules[node.target]))
            model.set_submodule(node.target, _after_folding(modules[node.target]))
    return model


class Predictor:
    """A trained model with the preprocessing it was trained with.

    Args:
        checkpoint: path of a checkpoint written by the Trainer.
        device: defaults to CUDA when present, else the CPU.
        precision: ``"auto"`` (bfloat16 on CPUs with bf16 instructions, mixed
            precision on CUDA) or ``"float32"``.
        flip_tta: also predict the horizontally and vertically flipped images
            and average the three (3x the compute).
        dominant_class_only: zero every class but the one with the largest
            predicted area, for data sets like NEU-DET where an image shows
            one kind of defect.
    """

    def __init__(
        self,
        checkpoint: str | Path,
        device: torch.device | None = None,
        precision: str = "auto",
        flip_tta: bool = False,
        dominant_class_only: bool = False,
    ):
        model, self.checkpoint = load_checkpoint(checkpoint)
        self.config = TrainConfig.from_dict(self.checkpoint["config"])
        self.device = device or default_device()
        self.dtype = autocast_dtype(self.device, precision)
        self.model = optimise_for_inference(model, self.device, self.dtype)
        self.input_dtype = next(self.model.parameters()).dtype
        self.flip_dims = [(), (3,), (2,)] if flip_tta else [()]
        self.dominant_class_only = dominant_class_only
        self.transform = eval_transforms(self.config.image_size, self.config.mean, self.config.std,
                                         self.config.full_resolution)

    @property
    def classes(self) -> tuple[str, ...]:
        """The names of the model's output channels."""
        return self.config.channels

    def preprocess(self, images: list[np.ndarray]) -> torch.Tensor:
        """Normalise ``(H, W, 3)`` uint8 images as in validation (resized, or as they are at full resolution) into a batch."""
        return torch.stack([self.transform(image=image)["image"] for image in images])

    def predict(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """Class probabilities at each image's own size.

        Models trained at full resolution see each whole image (padded for the
        network, cropped back), one at a time since sizes differ; the others
        see the batch resized to their input size.

        Args:
            images: ``(H, W, 3)`` uint8 RGB images, any sizes.

        Returns:
            One ``(C, H, W)`` float32 array per image.
        """
        if self.config.full_resolution:
            return [self._predict_batch([image])[0] for image in images]
        return self._predict_batch(images)

    @torch.inference_mode()
    def _predict_batch(self, images: list[np.ndarray]) -> list[np.ndarray]:
        batch = self.preprocess(images).to(self.device, self.input_dtype, memory_format=torch.channels_last)
        probabilities = 0
        for dims in self.flip_dims:
            with autocast(self.device, None if self.input_dtype == torch.bfloat16 else self.dtype):
                logits = padded_forward(self.model, batch.flip(dims) if dims else batch).float()
            probabilities = probabilities + torch.sigmoid(logits.flip(dims) if dims else logits)
        probabilities = probabilities / len(self.flip_dims)
        if self.dominant_class_only:
            area = (probabilities >= self.config.threshold).sum(dim=(2, 3))
            keep = torch.nn.functional.one_hot(area.argmax(1), probabilities.shape[1]).to(probabilities.dtype)
            probabilities = probabilities * keep[:, :, None, None]
        if self.config.full_resolution:  # already at the image's size
            return [prob.cpu().numpy() for prob in probabilities]
        return [
            F.interpolate(prob[None], size=image.shape[:2], mode="bilinear", align_corners=False)[0]
            .cpu()
            .numpy()
            for prob, image in zip(probabilities, images)
        ]


def image_files(folder_or_file: str | Path | list) -> list[Path]:
    """The image files of a folder (sorted), the one file given, or the list of files given."""
    if isinstance(folder_or_file, (list, tuple)):
        return [Path(p) for p in folder_or_file]
    path = Path(folder_or_file)
    if path.is_file():
        return [path]
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"{path}: no images ({', '.join(IMAGE_SUFFIXES)})")
    return files


def label_map(probabilities: np.ndarray, threshold: float) -> np.ndarray:
    """``(H, W)`` uint8: 0 where no class reaches ``threshold``, else 1 + the most probable class."""
    best = probabilities.argmax(0)
    return np.where(probabilities.max(0) >= threshold, best + 1, 0).astype(np.uint8)


def predict_folder(
    predictor: Predictor, images: str | Path | list, out: str | Path, batch_size: int = 16, threshold: float | None = None
) -> list[Path]:
    """Write ``<stem>_mask.png`` and ``<stem>_overlay.jpg`` for every image of a folder (or a file, or a list
    of files); returns the mask paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    threshold = predictor.config.threshold if threshold is None else threshold
    files, written = image_files(images), []
    for start in tqdm(range(0, len(files), batch_size), desc="predicting", unit="batch"):
        chunk = files[start : start + batch_size]
        pictures = [read_image(p) for p in chunk]
        for path, picture, probs in zip(chunk, pictures, predictor.predict(pictures)):
            labels = label_map(probs, threshold)
            cv2.imwrite(str(out / f"{path.stem}_mask.png"), labels)
            one_hot = np.stack([labels == k + 1 for k in range(len(predictor.classes))])
            cv2.imwrite(str(out / f"{path.stem}_overlay.jpg"), cv2.cvtColor(overlay(picture, one_hot), cv2.COLOR_RGB2BGR))
            written.append(out / f"{path.stem}_mask.png")
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description="Predict defect masks for an image or a folder of images.")
    parser.add_argument("--checkpoint", required=True, help="checkpoint written by training, e.g. Models/fpn_lite2_best.pth")
    parser.add_argument("--images", required=True, help="an image file or a folder of images")
    parser.add_argument("--out", default="predictions", help="output folder (default: predictions/)")
    parser.add_argument("--threshold", type=float, default=None, help="probability threshold (default: the checkpoint's)")
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    predictor = Predictor(args.checkpoint)
    written = predict_folder(predictor, args.images, args.out, args.batch_size, args.threshold)
    print(f"wrote {len(written)} masks and overlays to {args.out}; mask values: 0 background, "
          + ", ".join(f"{k + 1} {name}" for k, name in enumerate(predictor.classes)))


if __name__ == "__main__":
    main()

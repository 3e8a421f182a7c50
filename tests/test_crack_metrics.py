"""Tolerant crack scores on arrays small enough to count by hand."""

import numpy as np
import pytest

from Utilities.Crack_metrics import CrackMeter, within


def line(column: int, size: int = 10) -> np.ndarray:
    mask = np.zeros((size, size), np.uint8)
    mask[:, column] = 1
    return mask


def scores(probabilities, truth, tolerance):
    meter = CrackMeter(tolerance=tolerance, thresholds=(0.5,))
    meter.update(probabilities, truth)
    return meter.table().loc[0.5]


def test_a_line_two_pixels_off_is_all_right_with_tolerance_2_and_all_wrong_strictly():
    truth, predicted = line(5), line(7).astype(np.float32)
    tolerant, strict = scores(predicted, truth, 2), scores(predicted, truth, 0)
    assert (tolerant["precision"], tolerant["recall"], tolerant["f1"]) == (1.0, 1.0, 1.0)
    assert (strict["f1"], strict["strict_f1"], strict["strict_iou"]) == (0.0, 0.0, 0.0)
    assert scores(predicted, truth, 1)["f1"] == 0.0


def test_distance_is_euclidean():
    truth = np.zeros((5, 5), bool)
    truth[0, 0] = True
    # (1, 1) is sqrt(2) away, (2, 0) is 2, (2, 1) is sqrt(5) > 2
    np.testing.assert_array_equal(np.argwhere(within(truth, 2)), [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [2, 0]])


def test_stray_pixels_lower_precision_missed_segments_lower_recall():
    truth = line(2)  # 10 true pixels
    predicted = np.zeros((10, 10), np.float32)
    predicted[:5, 3] = 0.9  # rows 0-4 one column off the line: all correct
    predicted[9, 9] = 0.9  # a stray pixel 7 columns away
    row = scores(predicted, truth, 2)
    assert row["precision"] == pytest.approx(5 / 6)
    # true (r, 2) is found if |r - r'| <= sqrt(2**2 - 1) for a predicted (r', 3): rows 0-5; (6, 2)-(4, 3) is sqrt(5) > 2
    assert row["recall"] == pytest.approx(6 / 10)
    assert row["f1"] == pytest.approx(2 * (5 / 6) * 0.6 / (5 / 6 + 0.6))
    strict = scores(predicted, truth, 0)
    assert (strict["strict_precision"], strict["strict_recall"], strict["strict_iou"]) == (0.0, 0.0, 0.0)


def test_counts_pool_over_images_and_the_best_threshold_is_chosen_by_tolerant_f1():
    meter = CrackMeter(tolerance=0, thresholds=(0.3, 0.6))
    truth = line(4)
    probabilities = np.where(truth > 0, 0.5, 0.0).astype(np.float32)  # found at 0.3, missed at 0.6
    meter.update(probabilities, truth)
    meter.update(np.zeros((10, 10), np.float32), np.zeros((10, 10), np.uint8))  # empty and empty: adds nothing
    table = meter.table()
    assert table.loc[0.3, "f1"] == 1.0 and table.loc[0.3, "strict_iou"] == 1.0
    assert table.loc[0.6, "recall"] == 0.0 and table.loc[0.6, "precision"] == 1.0  # nothing predicted, nothing wrong
    assert meter.best_threshold() == 0.3 and meter.images == 2


def test_shapes_must_agree():
    with pytest.raises(ValueError, match="differ in shape"):
        CrackMeter().update(np.zeros((4, 4)), np.zeros((4, 5)))

"""Every broken-input case the data check covers, each made by the test."""

import cv2
import numpy as np
import pytest
from conftest import write_voc_xml
from hypothesis import given
from hypothesis import strategies as st

from Utilities.Extract_masks import NEU_DET_CLASSES, Box, boxes_to_mask
from Utilities.Formats import VocSource
from Utilities.Validate_data import DataError


def check(root, **kwargs):
    return VocSource(root, NEU_DET_CLASSES).check(**kwargs)


def test_clean_data_has_no_findings(neu_like):
    report = check(neu_like)
    assert (report.images, report.errors, report.warnings) == (24, [], [])


def test_truncated_image(neu_like):
    path = neu_like / "IMAGES" / "crazing_1.jpg"
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    assert any("crazing_1.jpg: unreadable or truncated" in e for e in check(neu_like).errors)


def test_not_an_image(neu_like):
    (neu_like / "IMAGES" / "crazing_2.jpg").write_text("hello")
    assert any("crazing_2.jpg: unreadable" in e for e in check(neu_like).errors)


def test_size_differs_from_annotation(neu_like):
    cv2.imwrite(str(neu_like / "IMAGES" / "patches_1.jpg"), np.zeros((30, 40, 3), np.uint8))
    assert any("patches_1.jpg: image is 40x30, its XML says 48x48" in e for e in check(neu_like).errors)


def test_malformed_xml(neu_like):
    (neu_like / "ANNOTATIONS" / "patches_2.xml").write_text("<annotation><size>")
    assert any("patches_2.xml" in e and "not a valid" in e for e in check(neu_like).errors)


def test_unknown_class(neu_like):
    write_voc_xml(neu_like / "ANNOTATIONS" / "scratches_1.xml", "scratches_1.jpg", 48, 48, [("rust", 1, 1, 5, 5)])
    assert any("scratches_1.xml: unknown class 'rust'" in e for e in check(neu_like).errors)


def test_empty_box(neu_like):
    write_voc_xml(neu_like / "ANNOTATIONS" / "scratches_2.xml", "scratches_2.jpg", 48, 48, [("scratches", 9, 9, 5, 5)])
    assert any("scratches_2.xml: box scratches" in e and "empty" in e for e in check(neu_like).errors)


def test_box_outside_the_image_is_a_warning(neu_like):
    write_voc_xml(neu_like / "ANNOTATIONS" / "scratches_3.xml", "scratches_3.jpg", 48, 48, [("scratches", 40, 1, 60, 5)])
    report = check(neu_like)
    assert not report.errors
    assert any("scratches_3.xml" in w and "clipped" in w for w in report.warnings)


def test_image_without_annotation_and_annotation_without_image(neu_like):
    (neu_like / "ANNOTATIONS" / "inclusion_1.xml").unlink()
    (neu_like / "IMAGES" / "inclusion_2.jpg").unlink()
    errors = check(neu_like).errors
    assert any("inclusion_1.jpg: no annotation" in e for e in errors)
    assert any("inclusion_2.xml: no image" in e for e in errors)


def test_empty_folder(tmp_path):
    (tmp_path / "IMAGES").mkdir()
    (tmp_path / "ANNOTATIONS").mkdir()
    assert any("folder is missing or empty" in e for e in check(tmp_path).errors)


def test_default_reports_all_strict_stops_at_first(neu_like):
    (neu_like / "IMAGES" / "crazing_1.jpg").write_text("x")
    (neu_like / "IMAGES" / "crazing_2.jpg").write_text("x")
    report = check(neu_like)
    assert len(report.errors) == 2
    with pytest.raises(DataError, match="crazing_1.jpg"):
        report.raise_if_errors()
    with pytest.raises(DataError) as error:
        check(neu_like, strict=True)
    assert "crazing_2" not in str(error.value)


@given(
    height=st.integers(1, 12),
    width=st.integers(1, 12),
    corners=st.lists(st.tuples(st.integers(-3, 15), st.integers(-3, 15), st.integers(0, 6), st.integers(0, 6)), max_size=4),
)
def test_box_to_mask_properties(height, width, corners):
    boxes = [Box("crazing", x, y, x + w, y + h) for x, y, w, h in corners]
    mask = boxes_to_mask(boxes, height, width, ("crazing",))
    assert mask.shape == (1, height, width) and set(np.unique(mask)) <= {0, 1}
    expected = np.zeros((height, width), np.uint8)
    for box in boxes:  # a pixel (r, c), 0-based, is inside a 1-based inclusive box when xmin <= c+1 <= xmax
        rows = np.arange(height)[:, None] + 1
        cols = np.arange(width)[None, :] + 1
        expected |= ((rows >= box.ymin) & (rows <= box.ymax) & (cols >= box.xmin) & (cols <= box.xmax)).astype(np.uint8)
    np.testing.assert_array_equal(mask[0], expected)

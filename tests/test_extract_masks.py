import numpy as np
import pytest
from conftest import write_voc_xml

from Utilities.Extract_masks import Box, boxes_to_mask, class_of, label_table, mask_from_xml, parse_voc_xml


def test_box_edges_are_one_based_inclusive():
    mask = boxes_to_mask([Box("a", xmin=2, ymin=3, xmax=4, ymax=3)], height=5, width=5, classes=("a",))
    expected = np.zeros((1, 5, 5), np.uint8)
    expected[0, 2, 1:4] = 1  # row 3 (1-based) = index 2; columns 2..4 = indices 1..3
    np.testing.assert_array_equal(mask, expected)


def test_boxes_go_to_their_class_channel_and_are_clipped():
    boxes = [Box("b", 1, 1, 1, 1), Box("a", 4, 4, 9, 9)]
    mask = boxes_to_mask(boxes, height=5, width=5, classes=("a", "b"))
    assert mask.shape == (2, 5, 5) and mask.dtype == np.uint8
    assert mask[1].sum() == 1 and mask[1, 0, 0] == 1
    assert mask[0].sum() == 4 and mask[0, 3:, 3:].all()


def test_unknown_class_is_named():
    with pytest.raises(KeyError, match="'dent'.*crazing"):
        boxes_to_mask([Box("dent", 1, 1, 2, 2)], 5, 5, ("crazing",))


def test_parse_and_mask_from_xml(tmp_path):
    xml = tmp_path / "scratches_1.xml"
    write_voc_xml(xml, "scratches_1.jpg", 8, 6, [("scratches", 1, 1, 2, 2), ("patches", 3, 3, 8, 6)])
    annotation = parse_voc_xml(xml)
    assert (annotation.width, annotation.height, len(annotation.boxes)) == (8, 6, 2)
    mask = mask_from_xml(xml)
    assert mask.shape == (6, 6, 8)
    assert mask[5].sum() == 4 and mask[2].sum() == 6 * 4


def test_malformed_xml_names_the_file(tmp_path):
    xml = tmp_path / "broken.xml"
    xml.write_text("<annotation><size><width>8</width>")
    with pytest.raises(ValueError, match="broken.xml"):
        parse_voc_xml(xml)


def test_label_table(tmp_path):
    write_voc_xml(tmp_path / "patches_1.xml", "patches_1.jpg", 8, 8, [("patches", 1, 1, 2, 2), ("patches", 3, 3, 4, 4)])
    write_voc_xml(tmp_path / "crazing_1.xml", "crazing_1.jpg", 8, 8, [("crazing", 1, 1, 8, 8)])
    table = label_table(tmp_path)
    assert list(table["image"]) == ["crazing_1.jpg", "patches_1.jpg"]
    assert list(table["n_defects"]) == [1, 2]
    assert table.loc[1, "patches"] == 1 and table.loc[1, "crazing"] == 0


def test_label_table_of_an_empty_folder_keeps_integer_columns(tmp_path):
    table = label_table(tmp_path)
    assert len(table) == 0 and table["n_defects"].dtype.kind == "i" and table["crazing"].dtype.kind == "i"


def test_class_of():
    assert class_of("rolled-in_scale_12.jpg") == "rolled-in_scale"
    with pytest.raises(KeyError):
        class_of("rust_1.jpg")

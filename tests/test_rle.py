import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from Utilities.Rle import mask_to_rle, rle_to_mask


def test_known_runs_are_column_major_and_one_based():
    mask = np.array([[1, 0, 0], [1, 0, 1]], dtype=np.uint8)
    # column-major order: (0,0)=1 (1,0)=2 (0,1)=3 (1,1)=4 (0,2)=5 (1,2)=6
    assert mask_to_rle(mask) == "1 2 6 1"
    np.testing.assert_array_equal(rle_to_mask("1 2 6 1", 2, 3), mask)


def test_empty_masks():
    assert mask_to_rle(np.zeros((4, 5), np.uint8)) == ""
    assert not rle_to_mask(float("nan"), 4, 5).any()
    assert not rle_to_mask("", 4, 5).any()


@pytest.mark.parametrize("bad", ["1 2 3", "9 5", "0 1"])
def test_malformed_runs_are_refused(bad):
    with pytest.raises(ValueError):
        rle_to_mask(bad, 2, 3)


@given(arrays(np.uint8, st.tuples(st.integers(1, 16), st.integers(1, 40)), elements=st.integers(0, 1)))
def test_encode_then_decode_gives_the_mask(mask):
    rle = mask_to_rle(mask)
    np.testing.assert_array_equal(rle_to_mask(rle, *mask.shape), mask)
    values = [int(v) for v in rle.split()]
    starts, lengths = values[::2], values[1::2]
    assert all(length > 0 for length in lengths)
    assert all(a + n < b for a, n, b in zip(starts, lengths, starts[1:]))  # runs sorted, separated

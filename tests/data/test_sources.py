import numpy as np
import pytest
import tensorflow as tf

from toolkit.data import ArraySource, Source, as_source
from toolkit.errors import DataError


def test_array_source_gathers_aligned_rows_and_keeps_dtypes():
    x = np.arange(12, dtype=np.float64).reshape(4, 3)
    y = np.array([3, 2, 1, 0], dtype=np.int32)
    source = ArraySource((x, y))
    assert source.num_examples == 4
    assert source.element_spec == (
        tf.TensorSpec((3,), tf.float64),
        tf.TensorSpec((), tf.int32),
    )
    xb, yb = source.gather(tf.constant([3, 3, 0], tf.int64))
    np.testing.assert_array_equal(xb.numpy(), x[[3, 3, 0]])
    np.testing.assert_array_equal(yb.numpy(), y[[3, 3, 0]])


def test_array_source_keeps_nesting_and_reads_lists_as_tuples():
    x = np.zeros((5, 2), np.float32)
    source = ArraySource(({"a": x, "b": np.ones(5)}, [x, x[:, :1]]))
    assert set(source.element_spec[0]) == {"a", "b"}
    assert isinstance(source.element_spec[1], tuple)
    assert source.element_spec[1][1].shape == (1,)
    assert source.gather(tf.constant([0, 1], tf.int64))[0]["b"].shape == (2,)


def test_array_source_satisfies_the_source_protocol_and_as_source_passes_sources_through():
    source = ArraySource(np.zeros((3, 1)))
    assert isinstance(source, Source)
    assert as_source(source) is source

    class Custom:
        num_examples = 2
        element_spec = tf.TensorSpec((), tf.int64)

        def gather(self, indices):
            return indices

    custom = Custom()
    assert as_source(custom) is custom
    assert isinstance(as_source(np.zeros((2, 2))), ArraySource)
    assert "num_examples=3" in repr(source)


@pytest.mark.parametrize(
    "data, match",
    [
        (np.zeros((0, 2)), r"`x` holds no examples \(shape \(0, 2\)\)"),
        ((np.zeros((4, 2)), np.zeros(3)), r"`y` has 3 rows but `x` has 4"),
        ((np.zeros((4, 2)), np.zeros(4), np.zeros(2)), r"`sample_weight` has 2 rows but `x` has 4"),
        ({"age": np.zeros(4), "income": np.zeros(5)}, r"`x\['income'\]` has 5 rows but `x\['age'\]`"),
        ((np.zeros(2),) * 4, r"tuple must be `\(x,\)`.*Received a tuple of 4 items"),
        (np.array(3.0), r"`x` must have one row per example. Received a scalar 3.0"),
        (np.array([{}, {}]), r"`x` must be a numeric or string array"),
    ],
)
def test_invalid_arrays_raise_data_errors_naming_the_array(data, match):
    with pytest.raises(DataError, match=match):
        ArraySource(data)


def test_nan_and_inf_are_reported_with_array_row_and_fix():
    x = np.zeros((6, 3), np.float32)
    x[4, 2] = np.nan
    x[5, 0] = np.inf
    with pytest.raises(DataError, match=r"`x` holds nan at row 4 \(flat column 2\) and 1 other"):
        ArraySource((x, np.zeros(6)))
    y = np.zeros(6)
    y[1] = -np.inf
    with pytest.raises(DataError, match=r"`y` holds -inf at row 1; expected finite.*np.isfinite"):
        ArraySource((np.zeros((6, 3)), y))
    with pytest.raises(DataError, match=r"`x\['price'\]` holds nan at row 0"):
        ArraySource({"price": np.array([np.nan, 1.0])})
    # Integer and string arrays cannot hold NaN and are accepted as they are.
    assert ArraySource((np.array(["a", "b"]), np.array([1, 2]))).num_examples == 2


def test_as_source_rejects_a_tf_data_dataset():
    with pytest.raises(DataError, match=r"needs random access.*`tf.data.Dataset`"):
        as_source(tf.data.Dataset.range(4))

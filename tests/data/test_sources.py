import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import toolkit
from toolkit.data import ArraySource, Source, as_source, check, endless
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


def _nan_x():
    x = np.arange(24, dtype=np.float32).reshape(8, 3)
    x[3, 1] = np.nan
    return x, np.arange(8) % 2


def test_values_are_checked_by_the_check_module_with_its_message():
    x, y = _nan_x()
    with pytest.raises(DataError) as raised:
        ArraySource((x, y))
    (finding,) = check((x, y))[:1]
    assert str(raised.value) == finding.message  # one message per fault, wherever it is found
    assert "\n" not in str(raised.value)


def test_check_warn_keeps_the_nan_rows_with_one_warning_and_off_is_silent():
    x, y = _nan_x()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        source = ArraySource((x, y), check="warn")
    assert [str(w.message) for w in caught] == [check((x, y))[0].message]
    batch_x, _ = source.gather(tf.constant([3, 0], tf.int64))
    assert np.isnan(batch_x.numpy()[0, 1])  # the NaN row reaches training
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert as_source((x, y), check="off").num_examples == 8
    assert caught == []
    with pytest.raises(ValueError, match=r"Received: 'strict'"):
        ArraySource((x, y), check="strict")


def test_structure_is_checked_whatever_the_policy():
    with pytest.raises(DataError, match=r"`y` has 3 rows but `x` has 4"):
        ArraySource((np.zeros((4, 2)), np.zeros(3)), check="off")


def test_negative_sample_weights_are_refused_by_default():
    weights = np.ones(4)
    weights[2] = -0.5
    with pytest.raises(DataError, match=r"`sample_weight` holds 1 negative weights, e\.g\. -0\.5 "
                                        r"at row 2"):
        as_source((np.zeros((4, 2)), np.zeros(4), weights))


def test_endless_and_fit_refuse_nan_arrays_by_default_and_take_a_built_source():
    x, y = _nan_x()
    pattern = r"^`x` holds nan at row 3 \(flat column 1\); expected finite.*np\.isfinite\(x\)"
    with pytest.raises(DataError, match=pattern):
        endless((x, y), batch_size=4, seed=0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    with pytest.raises(DataError, match=pattern):
        toolkit.fit(model, (x, y), steps=2, batch_size=4, verbose=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        source = ArraySource((x, y), check="off")
        assert as_source(source, check="error") is source
        endless(source, batch_size=4, seed=0)  # a built source is not checked again
    assert not [w for w in caught if "holds nan" in str(w.message)]

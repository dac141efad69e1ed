import keras
import numpy as np
import pytest
import tensorflow as tf

from toolkit.errors import DataError
from toolkit.layers import InputScaling


def heavy_tailed(seed=0, rows=4000):
    """Two non-negative heavy-tailed features spanning [0, 1.4e8] (S2.8)."""
    rng = np.random.default_rng(seed)
    lognormal = rng.lognormal(10.0, 2.5, rows)
    pareto = rng.pareto(1.2, rows) * 1e3
    x = np.stack([lognormal, pareto], axis=1).clip(0.0, 1.4e8)
    x[0] = 1.4e8
    return x


def adapted(data, **kwargs):
    layer = InputScaling(**kwargs)
    layer.adapt(data)
    return layer


def numpy(tensor):
    return keras.ops.convert_to_numpy(tensor)


def central_width(values):
    """Width of the interval holding the central 80% of each feature's values."""
    low, high = np.quantile(values, [0.1, 0.9], axis=0)
    return high - low


@pytest.mark.parametrize("seed", [0, 1])
def test_heavy_tailed_features_come_out_standardized_and_unsaturated(seed):
    x = heavy_tailed(seed)
    layer = adapted(x)
    y = numpy(layer(x))
    np.testing.assert_allclose(y.mean(axis=0), 0.0, atol=1e-3)
    np.testing.assert_allclose(y.std(axis=0), 1.0, atol=1e-3)
    squashed = np.tanh(x / numpy(layer.scale))
    assert np.mean(np.abs(squashed) > 0.999, axis=0).max() < 0.02


def test_plain_normalization_squashes_heavy_tails_into_a_tiny_range_input_scaling_does_not():
    x = heavy_tailed()
    normalization = keras.layers.Normalization()
    normalization.adapt(x)
    plain = central_width(numpy(normalization(x)))
    scaled = central_width(numpy(adapted(x)(x)))
    # Both have unit standard deviation, but the outliers leave most values of the plain
    # standardization within a sliver of it.
    assert np.all(plain < 0.2)
    assert np.all(scaled > 0.5)
    assert np.all(scaled > 4 * plain)


def test_scale_is_half_the_quantile_of_absolute_values():
    x = heavy_tailed()
    expected = np.quantile(np.abs(x), 0.99, axis=0) / 2.0
    np.testing.assert_allclose(numpy(adapted(x).scale), expected, rtol=0.07)
    lower = np.quantile(np.abs(x), 0.9, axis=0) / 2.0
    np.testing.assert_allclose(numpy(adapted(x, quantile=0.9).scale), lower, rtol=0.07)


def test_negative_values_use_absolute_values_and_keep_sign():
    rng = np.random.default_rng(0)
    x = np.stack([-rng.lognormal(5.0, 2.0, 2000), rng.standard_cauchy(2000) * 1e6], axis=1)
    layer = adapted(x)
    y = numpy(layer(x))
    np.testing.assert_allclose(
        numpy(layer.scale), np.quantile(np.abs(x), 0.99, axis=0) / 2.0, rtol=0.07
    )
    np.testing.assert_allclose(y.std(axis=0), 1.0, atol=1e-3)
    # tanh is odd and increasing: order is preserved within each feature.
    for feature in range(2):
        order = np.argsort(x[:, feature], kind="stable")
        assert np.all(np.diff(y[order, feature]) >= -1e-6)


def test_constant_and_zero_features_output_zero_without_division_by_zero():
    rng = np.random.default_rng(0)
    x = np.stack([np.full(100, 7.0), np.zeros(100), rng.normal(size=100)], axis=1)
    layer = adapted(x)
    y = numpy(layer(x))
    assert np.all(np.isfinite(y))
    np.testing.assert_array_equal(y[:, :2], 0.0)
    assert numpy(layer.scale)[1] == 1.0
    assert y[:, 2].std() == pytest.approx(1.0, abs=1e-3)


def test_mostly_zero_feature_falls_back_to_largest_value():
    x = np.zeros((1000, 1))
    x[:3, 0] = [10.0, 20.0, 40.0]
    assert numpy(adapted(x).scale)[0] == pytest.approx(20.0)


def one_shot(x, rows):
    for start in range(0, len(x), rows):
        yield x[start : start + rows]


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda x: tf.constant(x), id="tensor"),
        pytest.param(lambda x: tf.data.Dataset.from_tensor_slices(x).batch(128), id="dataset"),
        pytest.param(
            lambda x: tf.data.Dataset.from_tensor_slices((x, np.zeros(len(x)))).batch(97),
            id="dataset-x-y",
        ),
        pytest.param(lambda x: [x[:1000], x[1000:2500], x[2500:]], id="list"),
        pytest.param(lambda x: one_shot(x, 300), id="generator"),
    ],
)
def test_every_input_type_streams_to_the_same_statistics(make):
    x = heavy_tailed()
    reference = adapted(x)
    layer = adapted(make(x))
    for name in ("scale", "mean", "variance"):
        np.testing.assert_allclose(
            numpy(getattr(layer, name)), numpy(getattr(reference, name)), rtol=1e-5, atol=1e-7
        )
    assert int(numpy(layer.count)) == len(x)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_adapt_data_raises_naming_the_feature(bad):
    x = heavy_tailed()
    x[17, 1] = bad
    with pytest.raises(DataError, match=r"in feature 1 \(example 17 of batch 0\).*Drop or impute"):
        InputScaling().adapt(x)
    dataset = tf.data.Dataset.from_tensor_slices(x).batch(10)
    with pytest.raises(DataError, match=r"feature 1 \(example 7 of batch 1\)"):
        InputScaling().adapt(dataset)


def test_endless_dataset_needs_steps():
    x = heavy_tailed()
    endless = tf.data.Dataset.from_tensor_slices(x).batch(100).repeat()
    with pytest.raises(DataError, match="endless.*steps=N"):
        InputScaling().adapt(endless)
    layer = InputScaling()
    layer.adapt(endless, steps=40)
    assert int(numpy(layer.count)) == 4000


def test_bad_adapt_inputs_raise_clear_errors():
    with pytest.raises(DataError, match=r"adapt\(x\), not adapt\(\(x, y\)\)"):
        InputScaling().adapt((np.ones((4, 2)), np.ones(4)))
    with pytest.raises(DataError, match="received no data"):
        InputScaling().adapt([])
    layer = adapted(np.ones((4, 2)))
    with pytest.raises(DataError, match=r"built for inputs of shape \(None, 2\).*\(4, 3\)"):
        layer.adapt(np.ones((4, 3)))


def test_constructor_and_build_validate_arguments():
    with pytest.raises(ValueError, match=r"0 < quantile <= 1. Received: quantile=1.5"):
        InputScaling(quantile=1.5)
    with pytest.raises(ValueError, match="batch axis 0.*axis=None"):
        InputScaling().adapt(np.ones(10))
    with pytest.raises(ValueError, match="out of range"):
        InputScaling(axis=3).adapt(np.ones((4, 2)))


def test_axis_none_and_axis_tuple():
    rng = np.random.default_rng(0)
    images = rng.lognormal(3.0, 2.0, size=(64, 4, 5))
    scalar = adapted(images, axis=None)
    assert tuple(scalar.scale.shape) == ()
    assert numpy(scalar(images)).std() == pytest.approx(1.0, abs=1e-3)
    per_pixel = adapted(images, axis=(1, 2))
    assert tuple(per_pixel.scale.shape) == (4, 5)
    np.testing.assert_allclose(numpy(per_pixel(images)).std(axis=0), 1.0, atol=1e-3)
    with pytest.raises(DataError, match=r"feature \(2, 3\)"):
        images[5, 2, 3] = np.nan
        InputScaling(axis=(1, 2)).adapt(images)


def test_keras_save_and_load_round_trip_gives_identical_outputs(tmp_path):
    x = heavy_tailed()
    inputs = keras.Input((2,))
    outputs = keras.layers.Dense(3)(InputScaling(name="input_scaling")(inputs))
    model = keras.Model(inputs, outputs)
    model.get_layer("input_scaling").adapt(x)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(numpy(loaded(x[:256])), numpy(model(x[:256])))
    layer = loaded.get_layer("input_scaling")
    assert isinstance(layer, InputScaling)
    assert int(numpy(layer.count)) == len(x)


def test_config_round_trip_and_registration():
    layer = InputScaling(axis=(1, 2), quantile=0.9, name="scaling")
    clone = InputScaling.from_config(layer.get_config())
    assert (clone.axis, clone.quantile, clone.name) == ((1, 2), 0.9, "scaling")
    assert keras.saving.get_registered_object("toolkit>InputScaling") is InputScaling


def test_computes_in_float32_under_mixed_precision():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        layer = adapted(heavy_tailed())
    finally:
        keras.config.set_dtype_policy(previous)
    assert layer.compute_dtype == "float32"
    assert np.all(np.isfinite(numpy(layer(heavy_tailed()))))


def test_survives_two_fit_calls_in_a_model():
    x = heavy_tailed(rows=256)
    y = (x[:, 0] > np.median(x[:, 0])).astype("float32")
    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Dense(1)(adapted(x)(inputs)))
    model.compile("adam", "mse")
    before = [numpy(w).copy() for w in model.non_trainable_weights]
    model.fit(x, y, epochs=1, batch_size=64, verbose=0)
    model.fit(x, y, epochs=1, batch_size=64, verbose=0)
    for weight, value in zip(model.non_trainable_weights, before):
        np.testing.assert_array_equal(numpy(weight), value)

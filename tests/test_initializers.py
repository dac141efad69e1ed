import keras
import numpy as np
import pytest

from toolkit import initializers


@pytest.mark.parametrize(
    ("preset", "scale"), [(initializers.relu, 2.0), (initializers.linear, 1.0)]
)
def test_presets_are_fan_in_variance_scaling(preset, scale):
    init = preset()
    assert isinstance(init, keras.initializers.VarianceScaling)
    assert (init.scale, init.mode, init.distribution) == (scale, "fan_in", "truncated_normal")


@pytest.mark.parametrize(
    ("preset", "scale"), [(initializers.relu, 2.0), (initializers.linear, 1.0)]
)
def test_presets_draw_variance_scale_over_fan_in(preset, scale):
    weights = keras.ops.convert_to_numpy(preset(seed=0)((400, 300)))
    assert np.var(weights) == pytest.approx(scale / 400, rel=0.03)


def test_seed_makes_weights_reproducible():
    first = keras.ops.convert_to_numpy(initializers.relu(seed=3)((8, 4)))
    again = keras.ops.convert_to_numpy(initializers.relu(seed=3)((8, 4)))
    other = keras.ops.convert_to_numpy(initializers.relu(seed=4)((8, 4)))
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)


@pytest.mark.parametrize("preset", [initializers.relu, initializers.linear])
def test_presets_serialize_as_keras_objects(preset):
    init = preset(seed=5)
    restored = keras.initializers.deserialize(keras.initializers.serialize(init))
    assert restored.get_config() == init.get_config()


def test_relu_preset_keeps_signal_scale_through_deep_relu_stack_where_glorot_shrinks_it():
    # S2.6: with He init the mean square of ReLU activations stays put layer after layer;
    # Glorot's 1/fan variance halves it at each ReLU layer.
    x = np.random.default_rng(0).normal(size=(256, 256)).astype("float32")
    scales = {}
    for name, init in [("he", initializers.relu), ("glorot", keras.initializers.GlorotNormal)]:
        h = x
        for seed in range(10):
            h = np.maximum(h @ keras.ops.convert_to_numpy(init(seed=seed)((256, 256))), 0.0)
        scales[name] = float(np.mean(h**2) / np.mean(x**2))
    assert 0.3 < scales["he"] < 3.0
    assert scales["glorot"] < 0.01

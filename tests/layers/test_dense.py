import keras
import numpy as np
import pytest

from toolkit.layers import DenseBlock, LinearHead


def initializer_config(layer):
    init = layer.kernel_initializer
    return type(init).__name__, init.scale, init.mode


def test_dense_block_defaults_follow_the_conventions():
    block = DenseBlock(8)
    assert block.activation is keras.activations.relu
    assert block.use_bias
    assert initializer_config(block) == ("VarianceScaling", 2.0, "fan_in")
    assert isinstance(block, keras.layers.Dense)


def test_linear_head_defaults_follow_the_conventions():
    head = LinearHead(3)
    assert head.activation is keras.activations.linear
    assert head.use_bias
    assert initializer_config(head) == ("VarianceScaling", 1.0, "fan_in")


def test_dense_block_arguments_override_defaults():
    block = DenseBlock(8, activation="gelu", use_bias=False, kernel_initializer="he_uniform")
    assert block.activation is keras.activations.gelu
    assert not block.use_bias
    assert type(block.kernel_initializer).__name__ == "HeUniform"


def test_linear_head_rejects_an_activation():
    with pytest.raises(ValueError, match=r"activation='softmax'.*from_logits=True"):
        LinearHead(3, activation="softmax")
    assert LinearHead(3, activation="linear").activation is keras.activations.linear


@pytest.mark.parametrize("cls", [DenseBlock, LinearHead])
def test_seed_gives_reproducible_weights(cls):
    def weights(seed):
        layer = cls(4, seed=seed)
        layer.build((None, 6))
        return keras.ops.convert_to_numpy(layer.kernel)

    np.testing.assert_array_equal(weights(1), weights(1))
    assert not np.allclose(weights(1), weights(2))
    assert np.all(keras.ops.convert_to_numpy(cls(4, seed=1).bias_initializer((4,))) == 0)


@pytest.mark.parametrize("cls", [DenseBlock, LinearHead])
def test_config_round_trip_and_keras_file(cls, tmp_path):
    layer = cls(4, seed=7, name="layer")
    clone = cls.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    assert keras.saving.get_registered_object(f"toolkit>{cls.__name__}") is cls
    inputs = keras.Input((6,))
    model = keras.Model(inputs, layer(inputs))
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert type(loaded.get_layer("layer")) is cls
    x = np.random.default_rng(0).normal(size=(5, 6)).astype("float32")
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(loaded(x)), keras.ops.convert_to_numpy(model(x))
    )


def test_blocks_train_over_two_fit_calls():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(128, 4)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int32")
    inputs = keras.Input((4,))
    model = keras.Model(inputs, LinearHead(2, seed=1)(DenseBlock(16, seed=0)(inputs)))
    model.compile(
        keras.optimizers.Adam(0.01), keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    first = model.fit(x, y, epochs=5, batch_size=32, verbose=0).history["loss"]
    second = model.fit(x, y, epochs=5, batch_size=32, verbose=0).history["loss"]
    assert second[-1] < first[0]

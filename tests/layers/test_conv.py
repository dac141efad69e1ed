import keras
import numpy as np
import pytest

from toolkit.layers import ConvBlock


@pytest.mark.parametrize(
    ("rank", "pool", "input_shape", "output_shape"),
    [
        (1, "max", (2, 40, 1), (2, 20, 8)),
        (1, None, (2, 40, 3), (2, 40, 8)),
        (2, "max", (2, 9, 8, 1), (2, 5, 4, 8)),
        (2, None, (2, 8, 8, 3), (2, 8, 8, 8)),
    ],
)
def test_output_shapes(rank, pool, input_shape, output_shape):
    block = ConvBlock(8, 3, rank=rank, pool=pool, seed=0)
    assert tuple(block(keras.ops.ones(input_shape)).shape) == output_shape
    assert block.compute_output_shape(input_shape) == output_shape


def test_convolution_follows_the_conventions():
    block = ConvBlock(8, 5)
    conv = block.convolution
    assert conv.activation is keras.activations.relu
    assert conv.use_bias
    init = conv.kernel_initializer
    assert (type(init).__name__, init.scale, init.mode) == ("VarianceScaling", 2.0, "fan_in")
    assert isinstance(block.pooling, keras.layers.MaxPooling1D)


def test_invalid_arguments_raise():
    with pytest.raises(ValueError, match=r"rank=3.*rank=1 or rank=2"):
        ConvBlock(8, 3, rank=3)
    with pytest.raises(ValueError, match=r"pool='average'"):
        ConvBlock(8, 3, pool="average")


def test_keras_file_round_trip(tmp_path):
    inputs = keras.Input((12, 12, 2))
    model = keras.Model(inputs, ConvBlock(4, 3, rank=2, seed=3, name="block")(inputs))
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    block = loaded.get_layer("block")
    assert (block.filters, block.kernel_size, block.rank, block.pool) == (4, 3, 2, "max")
    x = np.random.default_rng(0).normal(size=(3, 12, 12, 2)).astype("float32")
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(loaded(x)), keras.ops.convert_to_numpy(model(x))
    )

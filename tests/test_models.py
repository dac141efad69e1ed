import warnings

import keras
import numpy as np
import pytest

from toolkit.errors import DataError, ModelError
from toolkit.layers import ConvBlock, DenseBlock, InputScaling, LinearHead
from toolkit.models import convnet, mlp


def numpy(tensor):
    return keras.ops.convert_to_numpy(tensor)


def kernels(model):
    return [numpy(w) for w in model.trainable_weights]


def test_mlp_structure_follows_the_conventions():
    x = np.random.default_rng(0).lognormal(5.0, 2.0, size=(64, 6))
    model = mlp((6,), 3, hidden_units=(16, 8), adapt_data=x, seed=0)
    assert isinstance(model.get_layer("input_scaling"), InputScaling)
    blocks = [layer for layer in model.layers if isinstance(layer, DenseBlock)]
    assert [block.units for block in blocks] == [16, 8]
    head = model.layers[-1]
    assert isinstance(head, LinearHead) and head.activation is keras.activations.linear
    assert model.output_shape == (None, 3)
    assert int(numpy(model.get_layer("input_scaling").count)) == 64


@pytest.mark.parametrize(
    ("kind", "layer_type"),
    [("tanh", InputScaling), ("standardize", keras.layers.Normalization)],
)
def test_mlp_input_scaling_choices(kind, layer_type):
    x = np.random.default_rng(0).normal(3.0, 2.0, size=(64, 5))
    model = mlp((5,), 2, input_scaling=kind, adapt_data=x, seed=0)
    assert isinstance(model.get_layer("input_scaling"), layer_type)
    none = mlp((5,), 2, input_scaling="none", seed=0)
    assert not any(layer.name == "input_scaling" for layer in none.layers)


def test_mlp_flattens_multi_axis_inputs_with_per_element_scaling():
    x = np.random.default_rng(0).lognormal(2.0, 1.0, size=(32, 4, 3))
    model = mlp((4, 3), 2, hidden_units=(8,), adapt_data=x, seed=0)
    assert tuple(model.get_layer("input_scaling").scale.shape) == (4, 3)
    assert model(x).shape == (32, 2)


def test_seed_makes_initial_weights_reproducible_and_distinct_per_layer():
    def build(seed):
        return kernels(mlp((8,), 8, hidden_units=(8, 8), input_scaling="none", seed=seed))

    first, again, other = build(0), build(0), build(1)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(first[0], other[0])
    # Seeded Keras initializers repeat their values: each same-shaped layer needs its own seed.
    assert not np.allclose(first[2], first[4])


def test_missing_adapt_data_warns_and_none_does_not():
    with pytest.warns(UserWarning, match=r"adapt_data.*adapt\(x_train\)"):
        mlp((4,), 2, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mlp((4,), 2, input_scaling="none", seed=0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(input_shape=(), num_outputs=2), r"input_shape must be.*Received: input_shape=\(\)"),
        (dict(input_shape=(4,), num_outputs=0), r"num_outputs must be a positive int"),
        (dict(input_shape=(4,), num_outputs=2, hidden_units=(8, -1)), r"hidden_units"),
        (dict(input_shape=(4,), num_outputs=2, input_scaling="log"), r"input_scaling='log'"),
    ],
)
def test_mlp_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ModelError, match=match):
        mlp(**kwargs)


def test_nan_in_adapt_data_raises_data_error_for_both_scalings():
    x = np.ones((16, 3))
    x[4, 2] = np.nan
    with pytest.raises(DataError, match="feature 2"):
        mlp((3,), 2, adapt_data=x)
    with pytest.raises(DataError, match="feature 2"):
        mlp((3,), 2, input_scaling="standardize", adapt_data=x)


@pytest.mark.parametrize(
    ("input_shape", "rank", "conv_type", "flat_size"),
    [
        ((40,), None, keras.layers.Conv1D, 5 * 32),
        ((40, 2), None, keras.layers.Conv1D, 5 * 32),
        ((8, 8), None, keras.layers.Conv2D, 1 * 1 * 32),
        ((8, 8, 3), None, keras.layers.Conv2D, 1 * 1 * 32),
        ((16, 3), 2, keras.layers.Conv2D, 2 * 1 * 32),
        ((16, 8), 1, keras.layers.Conv1D, 2 * 32),
    ],
)
def test_convnet_picks_1d_or_2d_from_the_input_shape(input_shape, rank, conv_type, flat_size):
    x = np.random.default_rng(0).normal(size=(16,) + input_shape)
    model = convnet(input_shape, 10, adapt_data=x, seed=0, rank=rank)
    blocks = [layer for layer in model.layers if isinstance(layer, ConvBlock)]
    assert len(blocks) == 3
    assert all(isinstance(block.convolution, conv_type) for block in blocks)
    assert model.get_layer("flatten").output.shape[-1] == flat_size
    assert model(x).shape == (16, 10)


def test_convnet_scaling_is_per_channel():
    x = np.random.default_rng(0).normal(size=(16, 40, 2))
    model = convnet((40, 2), 3, input_scaling="tanh", adapt_data=x, seed=0)
    assert tuple(model.get_layer("input_scaling").scale.shape) == (2,)
    model = convnet((40,), 3, input_scaling="tanh", adapt_data=x[..., 0], seed=0)
    assert tuple(model.get_layer("input_scaling").scale.shape) == ()


def test_convnet_rejects_bad_arguments():
    with pytest.raises(ModelError, match=r"rank=1 does not fit input_shape=\(8, 8, 3\)"):
        convnet((8, 8, 3), 2, rank=1, input_scaling="none")
    with pytest.raises(ModelError, match=r"input_shape \(length,\)"):
        convnet((2, 3, 4, 5), 2, input_scaling="none")
    with pytest.raises(ModelError, match="filters needs at least one entry"):
        convnet((40,), 2, filters=(), input_scaling="none")


@pytest.mark.parametrize(
    "build",
    [
        lambda x: mlp((40,), 10, hidden_units=(16,), adapt_data=x, seed=0),
        lambda x: convnet((40,), 10, filters=(4, 4), dense_units=(8,), adapt_data=x, seed=0),
        lambda x: convnet(
            (40,), 10, filters=(4,), input_scaling="tanh", adapt_data=x, seed=0
        ),
    ],
)
def test_models_train_and_round_trip_through_keras_files(build, tmp_path):
    rng = np.random.default_rng(0)
    x = rng.lognormal(3.0, 1.5, size=(128, 40)).astype("float32")
    y = rng.integers(0, 10, size=128)
    model = build(x)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(numpy(loaded(x)), numpy(model(x)), rtol=1e-6, atol=1e-6)


def test_mlp_learns_from_heavy_tailed_inputs():
    # The tanh-scaled model can separate classes that differ by orders of magnitude.
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=512)
    x = rng.lognormal(np.where(y == 1, 12.0, 8.0)[:, None], 1.5, size=(512, 3)).clip(0, 1.4e8)
    keras.utils.set_random_seed(0)
    model = mlp((3,), 2, hidden_units=(16,), adapt_data=x, seed=0)
    model.compile(
        keras.optimizers.Adam(0.01), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    history = model.fit(x, y, epochs=5, batch_size=64, verbose=0).history
    assert history["accuracy"][-1] > 0.9

"""Sharpness: exact eigenvalues of a quadratic and of a tiny MLP's dense Hessian, the largest
algebraic eigenvalue under a dominant negative one, the non-convergence warning, and a model
left bit for bit as it was."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from toolkit.errors import ModelError
from toolkit.probes.lanczos import largest_eigenvalue
from toolkit.probes.sharpness import HessianVectorProduct, SharpnessResult, sharpness
from toolkit.probes.snapshot import ModelSnapshot

RELATIVE_ERROR = 0.02  # The bar; the products are float32, the errors ~1e-5.


def _design(num_examples=64, num_features=5, seed=0):
    rng = np.random.default_rng(seed)
    # Unequal feature scales give a spectrum with a clear top eigenvalue.
    return (rng.normal(size=(num_examples, num_features)) * np.linspace(0.5, 3.0, num_features)
            ).astype("float32")


def test_linear_model_with_mse_matches_two_over_n_xtx_per_output():
    x = _design()
    num_outputs = 3
    y = np.random.default_rng(1).normal(size=(len(x), num_outputs)).astype("float32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((x.shape[1],)), keras.layers.Dense(num_outputs)])
    model.compile("sgd", "mse")
    result = sharpness(model, (x, y))
    # Keras's MSE averages over examples and outputs: H = 2/(n·m) [X 1]ᵀ[X 1] for each output.
    design = np.c_[x, np.ones(len(x))].astype(np.float64)
    exact = np.linalg.eigvalsh(2.0 / (len(x) * num_outputs) * design.T @ design)[-1]
    assert isinstance(result, SharpnessResult) and result.converged
    assert result.eigenvalue == pytest.approx(exact, rel=RELATIVE_ERROR)
    assert result.eigenvalues_history[-1] == result.eigenvalue
    assert result.iterations == len(result.eigenvalues_history)


def _dense_hessian(model, x, y, sample_weight=None):
    variables = model.trainable_variables
    with tf.GradientTape(persistent=True) as outer:
        with tf.GradientTape() as inner:
            loss = model.compute_loss(x=x, y=y, y_pred=model(x, training=False),
                                      sample_weight=sample_weight)
        flat = tf.concat([tf.reshape(g, [-1]) for g in inner.gradient(loss, variables)], 0)
    rows = [tf.reshape(j, [flat.shape[0], -1]) for j in outer.jacobian(flat, variables)]
    return tf.concat(rows, axis=1).numpy().astype(np.float64)


def test_tiny_mlp_matches_its_dense_hessian():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(48, 3)).astype("float32")
    y = (np.sin(x.sum(axis=1, keepdims=True)) + 0.1 * rng.normal(size=(48, 1))).astype("float32")
    weight = rng.uniform(0.5, 2.0, size=48).astype("float32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="tanh"),
                              keras.layers.Dense(1)])  # 21 parameters
    model.compile("adam", "mse")
    model.fit(x, y, batch_size=16, epochs=3, verbose=0)  # Away from the initialization.
    hessian = _dense_hessian(model, x, y, weight)
    np.testing.assert_allclose(hessian, hessian.T, atol=1e-4)
    exact = np.linalg.eigvalsh((hessian + hessian.T) / 2)
    result = sharpness(model, (x, y, weight))
    assert result.converged
    assert result.eigenvalue == pytest.approx(exact[-1], rel=RELATIVE_ERROR)


class _Quadratic(keras.layers.Layer):
    """Outputs 0.5 wᵀMw per example: with the loss mean(y_pred), the Hessian is exactly M."""

    def __init__(self, matrix, **kwargs):
        super().__init__(**kwargs)
        self.matrix = tf.constant(matrix, tf.float32)

    def build(self, input_shape):
        self.w = self.add_weight(shape=(self.matrix.shape[0],), initializer="ones")

    def call(self, x):
        value = 0.5 * tf.reduce_sum(self.w * tf.linalg.matvec(self.matrix, self.w))
        return tf.zeros_like(x[:, :1]) + value


def test_a_dominant_negative_eigenvalue_is_not_returned():
    dimension = 40
    rng = np.random.default_rng(0)
    spectrum = np.r_[-10.0, rng.uniform(-1.0, 2.5, size=dimension - 2), 3.0]
    rotation, _ = np.linalg.qr(rng.normal(size=(dimension, dimension)))
    matrix = rotation @ np.diag(spectrum) @ rotation.T
    model = keras.Sequential([keras.Input((1,)), _Quadratic(matrix)])
    model.compile("sgd", lambda y_true, y_pred: keras.ops.mean(y_pred))
    x = np.zeros((4, 1), "float32")
    result = sharpness(model, (x, x))
    # Power iteration would settle on -10, the eigenvalue of largest magnitude.
    assert result.converged
    assert result.eigenvalue == pytest.approx(3.0, rel=RELATIVE_ERROR)


def test_lanczos_finds_the_largest_algebraic_eigenvalue_of_a_matrix():
    matrix = np.diag([-7.0, -1.0, 0.5, 1.0])
    result = largest_eigenvalue(lambda v: matrix @ v, 4, num_iterations=10, tolerance=1e-9)
    assert result.converged and result.eigenvalue == pytest.approx(1.0, abs=1e-9)


def _mlp(seed=0, hidden=32):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8,))
    hidden_layer = keras.layers.Dense(hidden, activation="relu")(inputs)
    hidden_layer = keras.layers.BatchNormalization()(hidden_layer)
    hidden_layer = keras.layers.Dropout(0.3)(hidden_layer)
    outputs = [keras.layers.Dense(1, name="first")(hidden_layer),
               keras.layers.Dense(1, name="second")(hidden_layer)]
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.Adam(1e-2), ["mse", "mse"])
    return model


def _data(num_examples=64):
    x = np.random.default_rng(0).normal(size=(num_examples, 8)).astype("float32")
    return x, (x[:, :1] ** 2, x[:, 1:2])


def test_not_converging_warns_with_the_numbers():
    x, y = _data()
    with pytest.warns(UserWarning, match=r"did not converge in num_iterations=3: .* Raise"):
        result = sharpness(_mlp(), (x, y), num_iterations=3, tolerance=1e-9)
    assert not result.converged and result.iterations == 3
    assert result.relative_change >= 1e-9


def test_leaves_weights_batch_norm_seeds_optimizer_and_metrics_bit_for_bit():
    x, y = _data()
    model = _mlp()
    model.fit(x, y, batch_size=16, epochs=2, verbose=0)  # Adam moments, moved BN statistics.
    snapshot = ModelSnapshot.take(model)
    metrics = [np.array(v.numpy(), copy=True) for v in model.metrics_variables]
    product = HessianVectorProduct(model)
    first = sharpness(model, (x, y), hessian_vector_product=product)
    second = sharpness(model, (x, y), hessian_vector_product=product)
    assert snapshot.matches(model)
    for variable, value in zip(model.metrics_variables, metrics):
        np.testing.assert_array_equal(variable.numpy(), value)
    # training=False: dropout is off, so the operator (and the estimate) is deterministic.
    assert first.eigenvalue == second.eigenvalue and first.eigenvalue > 0


def test_bad_arguments_name_the_fix():
    x, y = _data()
    model = _mlp()
    with pytest.raises(ValueError, match=r"`\(x, y\)` or `\(x, y, sample_weight\)`.*length 1"):
        sharpness(model, (x,))
    with pytest.raises(ValueError, match=r"num_iterations=0\. Pass e\.g\. num_iterations=100"):
        sharpness(model, (x, y), num_iterations=0)
    with pytest.raises(ValueError, match=r"tolerance=-1\.0\. Pass e\.g\. tolerance=1e-3"):
        sharpness(model, (x, y), tolerance=-1.0)
    uncompiled = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1)])
    with pytest.raises(ModelError, match=r"is not compiled.*Call `model.compile"):
        sharpness(uncompiled, (x, y[0]))
    frozen = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1, trainable=False)])
    frozen.compile("sgd", "mse")
    with pytest.raises(ModelError, match="has none"):
        sharpness(frozen, (x, y[0]))

"""GradientNoiseScale: the closed-form check on linear regression, TensorBoard points with
`steps_per_execution > 1`, a probe that leaves the model untouched, state, config and errors."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from toolkit.callbacks.gradient_noise_scale import GradientNoiseScale, noise_scale_estimates

TAGS = ("simple_noise_scale", "trace_sigma", "gradient_norm_squared", "batch_size")


def regression(rows=400, features=5, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, features)).astype("float32")
    true_weights = rng.normal(size=features)
    y = (x @ true_weights + 0.5 * rng.normal(size=rows)).astype("float32")[:, None]
    return x, y, true_weights


def exact_noise_scale(x, y, kernel, bias):
    """tr(Σ)/|G|² of the MSE loss from the per-example gradients 2 r (x, 1), over all rows."""
    x64 = x.astype("float64")
    residual = x64 @ kernel[:, 0] + bias[0] - y[:, 0]
    per_example = 2.0 * residual[:, None] * np.hstack([x64, np.ones((len(x), 1))])
    mean = per_example.mean(axis=0)
    trace = ((per_example - mean) ** 2).sum(axis=1).mean()  # Population covariance: IID draws.
    return trace / (mean @ mean), trace, mean @ mean


def test_estimate_matches_the_closed_form_on_linear_regression():
    x, y, true_weights = regression()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(1)])
    # Away from the optimum so |G| is not zero; the learning rate of 0 keeps the weights fixed,
    # so every probe measures the same, known B_simple.
    kernel, bias = (true_weights + 0.3)[:, None].astype("float32"), np.array([0.2], "float32")
    model.layers[0].set_weights([kernel, bias])
    model.compile(keras.optimizers.SGD(0.0), "mse")
    noise = GradientNoiseScale((x, y), batch_size=8, num_batches=8, every_steps=1,
                               smoothing=0.95, seed=1)
    model.fit(x, y, batch_size=8, epochs=1, steps_per_epoch=40, verbose=0, callbacks=[noise])
    assert len(noise.history) == 40
    truth, trace, norm = exact_noise_scale(x, y, kernel, bias)
    assert 9 < truth < 11  # B_simple ≈ 10: between B_small = 8 and B_big = 64.
    assert noise.noise_scale == pytest.approx(truth, rel=0.2)
    smoothed = noise.smoothed()
    assert smoothed["trace_sigma"] == pytest.approx(trace, rel=0.2)
    assert smoothed["gradient_norm_squared"] == pytest.approx(norm, rel=0.2)
    assert noise.summary() == f"critical batch size ≈ {round(noise.noise_scale)} (B_simple); " \
                              f"you train at 8"


def test_estimators_are_exact_on_expected_norms():
    # E|G_B|² = |G|² + tr(Σ)/B with |G|² = 2, tr(Σ) = 40.
    estimates = noise_scale_estimates(2 + 40 / 4, 2 + 40 / 32, 4, 32)
    assert estimates["gradient_norm_squared"] == pytest.approx(2.0)
    assert estimates["trace_sigma"] == pytest.approx(40.0)


def test_plain_fit_with_steps_per_execution_writes_tensorboard_points(tmp_path):
    x, y, _ = regression(rows=96, features=3)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(1)])
    model.compile("adam", "mse", steps_per_execution=4)
    noise = GradientNoiseScale((x, y), log_dir=str(tmp_path), batch_size=8, every_steps=6)
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[noise])  # 24 steps
    # Points land on the first execution boundary at or after each multiple of 6.
    assert [h["step"] for h in noise.history] == [8, 12, 20, 24]
    events = EventAccumulator(str(tmp_path / "train"), size_guidance={"tensors": 0}).Reload()
    for tag in TAGS:
        points = events.Tensors(f"gradient_noise/{tag}")
        assert [p.step for p in points] == [8, 12, 20, 24], tag
    sizes = [float(tf.make_ndarray(p.tensor_proto)) for p in
             events.Tensors("gradient_noise/batch_size")]
    assert sizes == [8.0] * 4
    last = float(tf.make_ndarray(events.Tensors("gradient_noise/simple_noise_scale")[-1]
                                 .tensor_proto))
    assert last == pytest.approx(noise.noise_scale, rel=1e-6)


def test_a_probe_leaves_the_model_untouched_bit_for_bit():
    x, y, _ = regression(rows=64, features=3)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((3,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dropout(0.5),
        keras.layers.BatchNormalization(), keras.layers.Dense(1)])
    model.compile("adam", "mse")
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)  # Adam slots and BN statistics moved.
    before = [np.array(v) for v in model.variables + model.optimizer.variables]
    noise = GradientNoiseScale((x, y), batch_size=8, num_batches=4)
    noise.set_model(model)
    noise.on_train_begin()
    first = noise.probe(step=8)
    after = [np.array(v) for v in model.variables + model.optimizer.variables]
    assert all(np.array_equal(a, b) for a, b in zip(before, after))
    # Its own fixed seed: the same step draws the same probe (dropout seeds restored too).
    again = noise.probe(step=8)
    assert again["probe_trace_sigma"] == first["probe_trace_sigma"]


def test_reads_a_dataset_of_batches():
    x, y, _ = regression(rows=64, features=3)
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(8, drop_remainder=True)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    noise = GradientNoiseScale(dataset, num_batches=4, every_steps=4)
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[noise])
    assert [h["step"] for h in noise.history] == [4, 8, 12, 16]
    assert noise.summary().startswith("critical batch size")  # No batch size given: not quoted.
    assert "you train at" not in noise.summary()


def test_state_round_trips_through_json_and_config_through_the_registry(tmp_path):
    x, y, _ = regression(rows=64, features=3)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    noise = GradientNoiseScale((x, y), log_dir=str(tmp_path), batch_size=8, every_steps=2)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[noise])
    state = json.loads(json.dumps(noise.get_state()))
    fresh = GradientNoiseScale((x, y), batch_size=8, every_steps=2)
    fresh.set_state(state)
    assert fresh.get_state() == state and fresh.noise_scale == noise.noise_scale
    config = noise.get_config()
    assert "data" not in config
    rebuilt = keras.saving.get_registered_object("toolkit>GradientNoiseScale").from_config(
        json.loads(json.dumps(config)))
    assert rebuilt.get_config() == config


@pytest.mark.parametrize("kwargs, match", [
    ({"data": "x.npy", "batch_size": 8}, r"bad `data`.*\(x, y\)"),
    ({"data": (np.ones((4, 2)), np.ones(4))}, r"bad `batch_size`.*batch_size=64"),
    ({"data": (np.ones((4, 2)), np.ones(5)), "batch_size": 2}, r"row counts \[4, 5\]"),
    ({"num_batches": 1}, r"`num_batches`.*at least 2"),
    ({"smoothing": 1.0}, r"`smoothing`.*\[0, 1\)"),
    ({"every_steps": 0}, r"`every_steps` must be a positive integer"),
])
def test_bad_arguments_raise_with_a_fix(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GradientNoiseScale(**kwargs)


def test_training_without_data_says_how_to_give_it():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    with pytest.raises(ValueError, match=r"no probe data.*GradientNoiseScale\(\(x_train"):
        model.fit(np.ones((8, 3)), np.ones(8), verbose=0, callbacks=[GradientNoiseScale()])

"""The Sharpness callback: points in TensorBoard with `steps_per_execution > 1`, the exact value on
a quadratic, 2/η under a schedule, training unchanged by the probes, state, config and errors."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing.event_accumulator import TENSORS, EventAccumulator

from toolkit.callbacks.sharpness import Sharpness

TAGS = ("top_eigenvalue", "stability_threshold", "edge_of_stability_ratio")


def _data(rows=96, features=3):
    x = (np.random.default_rng(0).normal(size=(rows, features))
         * np.array([0.5, 1.0, 2.0])).astype("float32")
    return x, x.sum(axis=1, keepdims=True)


def _linear(optimizer):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer, "mse", steps_per_execution=4)
    return model


def _read(directory):
    accumulator = EventAccumulator(directory, size_guidance={TENSORS: 0})
    accumulator.Reload()
    return {tag: [(event.step, float(tf.make_ndarray(event.tensor_proto)))
                  for event in accumulator.Tensors(tag)]
            for tag in accumulator.Tags()["tensors"]}


def test_logs_exact_quadratic_sharpness_and_threshold_with_steps_per_execution(tmp_path):
    x, y = _data()
    schedule = keras.optimizers.schedules.ExponentialDecay(0.05, decay_steps=8, decay_rate=0.5)
    model = _linear(keras.optimizers.SGD(schedule))
    probe = Sharpness((x[:32], y[:32]), every_steps=6, log_dir=str(tmp_path))
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[probe])
    # Points at the first execution boundary (every 4 steps) at or after each multiple of 6;
    # the epoch's last execution (steps 12 and 24) is seen at the epoch end.
    steps = [step for step, _, _ in probe.history]
    assert steps == [8, 12, 20, 24]
    # A linear model's MSE Hessian is 2/n [X 1]ᵀ[X 1] whatever the weights.
    design = np.c_[x[:32], np.ones(32)].astype(np.float64)
    exact = np.linalg.eigvalsh(2.0 / 32 * design.T @ design)[-1]
    for step, eigenvalue, threshold in probe.history:
        assert eigenvalue == pytest.approx(exact, rel=0.02)
        assert threshold == pytest.approx(2.0 / float(schedule(step)), rel=1e-6)
    logged = _read(str(tmp_path / "train"))
    assert sorted(logged) == sorted(f"sharpness/{tag}" for tag in TAGS)
    for tag in logged.values():
        assert [step for step, _ in tag] == steps
    for (_, eigenvalue, threshold), (_, ratio) in zip(
            probe.history, logged["sharpness/edge_of_stability_ratio"]):
        assert ratio == pytest.approx(eigenvalue / threshold, rel=1e-5)


def test_probes_do_not_change_training(tmp_path):
    x, y = _data()

    def train(callbacks):
        keras.utils.set_random_seed(0)
        inputs = keras.Input((3,))
        hidden = keras.layers.Dense(8, activation="relu")(inputs)
        hidden = keras.layers.Dropout(0.2)(keras.layers.BatchNormalization()(hidden))
        model = keras.Model(inputs, keras.layers.Dense(1)(hidden))
        model.compile(keras.optimizers.Adam(1e-2), "mse", steps_per_execution=4)
        model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=callbacks, shuffle=False)
        return [v.numpy() for v in model.variables + model.optimizer.variables]

    probe = Sharpness((x[:32], y[:32]), every_steps=4, num_iterations=20)
    with_probe, without = train([probe]), train([])
    assert len(probe.history) == 6
    for a, b in zip(with_probe, without):
        np.testing.assert_array_equal(a, b)


def test_state_round_trips_through_json_and_resumes_the_grid():
    x, y = _data()
    model = _linear(keras.optimizers.SGD(0.01))
    probe = Sharpness((x, y), every_steps=5)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[probe])
    state = json.loads(json.dumps(probe.get_state()))
    assert state == probe.get_state() and state["next_step"] == 15
    resumed = Sharpness((x, y), every_steps=5)
    resumed.set_model(model)
    resumed.set_state(state)
    assert resumed.history == probe.history and resumed.get_state() == state


def test_config_round_trips_through_the_registry_without_the_batch():
    x, y = _data()
    probe = Sharpness((x, y), every_steps=50, log_dir="logs", num_iterations=30,
                      tolerance=1e-4, seed=3)
    config = probe.get_config()
    assert "batch" not in config and json.loads(json.dumps(config)) == config
    name = keras.saving.get_registered_name(Sharpness)
    assert name == "toolkit>Sharpness"
    rebuilt = keras.saving.get_registered_object(name).from_config(config)
    assert type(rebuilt) is Sharpness and rebuilt.get_config() == config
    assert rebuilt.batch is None


def test_bad_arguments_name_the_fix():
    x, y = _data()
    with pytest.raises(ValueError, match=r"every_steps=0"):
        Sharpness((x, y), every_steps=0)
    with pytest.raises(ValueError, match=r"`\(x, y\)` or `\(x, y, sample_weight\)`.*ndarray"):
        Sharpness(x)
    with pytest.raises(ValueError, match=r"num_iterations=2\.5"):
        Sharpness((x, y), num_iterations=2.5)
    model = _linear("sgd")
    with pytest.raises(ValueError, match=r"no probe batch\. Received: batch=None"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[Sharpness(every_steps=2)])

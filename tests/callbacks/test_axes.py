"""Axes: event files read back with TensorBoard's own reader."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from toolkit.callbacks import Axes
from toolkit.clock import TrainClock
from toolkit.data import endless

BATCH = 8


def read_scalars(directory):
    """{tag: [(step, value), ...]} of a run directory, via TensorBoard's EventAccumulator."""
    accumulator = event_accumulator.EventAccumulator(
        directory, size_guidance={event_accumulator.TENSORS: 0}
    )
    accumulator.Reload()
    return {
        tag: [(event.step, float(tf.make_ndarray(event.tensor_proto)))
              for event in accumulator.Tensors(tag)]
        for tag in accumulator.Tags()["tensors"]
    }


def make_data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 4)).astype("float32"), rng.integers(0, 3, n)


def make_model(steps_per_execution=1, learning_rate=0.05):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.compile(
        keras.optimizers.Adam(learning_rate),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        steps_per_execution=steps_per_execution,
    )
    return model


def steps_of(series):
    return [step for step, _ in series]


def test_tags_steps_and_examples_axes(tmp_path):
    x, y = make_data()
    model = make_model()
    clock = TrainClock(batch_size=BATCH, dataset_size=len(x))
    axes = Axes(str(tmp_path), every_steps=5, clock=clock)
    model.fit(endless((x, y), BATCH), steps_per_epoch=10, epochs=2, validation_data=(x, y),
              callbacks=[axes], verbose=0)
    train = read_scalars(str(tmp_path / "train"))
    for name in ["loss", "accuracy", "learning_rate", "steps_per_second",
                 "examples_per_second", "epochs"]:
        assert steps_of(train[name]) == [5, 10, 15, 20], name
        assert steps_of(train[f"by_examples/{name}"]) == [5 * BATCH, 10 * BATCH, 15 * BATCH,
                                                           20 * BATCH], name
    assert [v for _, v in train["epochs"]] == pytest.approx([s * BATCH / 64 for s in
                                                             (5, 10, 15, 20)])
    assert [v for _, v in train["learning_rate"]] == pytest.approx([0.05] * 4)
    validation = read_scalars(str(tmp_path / "validation"))
    assert steps_of(validation["loss"]) == [10, 20]
    assert steps_of(validation["by_examples/accuracy"]) == [10 * BATCH, 20 * BATCH]
    assert validation["loss"][-1][1] == pytest.approx(model.evaluate(x, y, verbose=0)[0],
                                                      rel=1e-5)


def _losses_per_step(model, x, y, num_steps):
    """Per-batch training losses computed independently from the weights before each step."""
    dataset = endless((x, y), BATCH, seed=3)
    batches = list(dataset.take(num_steps).as_numpy_iterator())
    weights = []
    recorder = keras.callbacks.LambdaCallback(
        on_train_batch_begin=lambda batch, logs: weights.append(model.get_weights())
    )
    return dataset, batches, weights, recorder


def test_batch_loss_is_exact_at_every_step(tmp_path):
    x, y = make_data()
    model = make_model()
    dataset, batches, weights, recorder = _losses_per_step(model, x, y, 12)
    axes = Axes(str(tmp_path), every_steps=1)
    model.fit(dataset, steps_per_epoch=6, epochs=2, validation_data=(x, y),
              callbacks=[recorder, axes], verbose=0)
    probe = make_model()
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    expected = []
    for (bx, by), w in zip(batches, weights):
        probe.set_weights(w)
        expected.append(float(loss_fn(by, probe(bx))))
    logged = read_scalars(str(tmp_path / "train"))["loss"]
    assert steps_of(logged) == list(range(1, 13))
    np.testing.assert_allclose([v for _, v in logged], expected, rtol=1e-5)
    # Keras's own epoch value is the running mean, which differs from the last batch loss.
    assert model.history.history["loss"][-1] != pytest.approx(expected[-1], rel=1e-4)


def test_window_mean_spans_epochs_and_evaluations(tmp_path):
    x, y = make_data()
    model = make_model()
    dataset, batches, weights, recorder = _losses_per_step(model, x, y, 12)
    # Windows of 4 steps across epochs of 6 steps, each followed by an evaluation.
    axes = Axes(str(tmp_path), every_steps=4)
    model.fit(dataset, steps_per_epoch=6, epochs=2, validation_data=(x, y),
              callbacks=[recorder, axes], verbose=0)
    probe = make_model()
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    per_step = []
    for (bx, by), w in zip(batches, weights):
        probe.set_weights(w)
        per_step.append(float(loss_fn(by, probe(bx))))
    logged = read_scalars(str(tmp_path / "train"))["loss"]
    assert steps_of(logged) == [4, 8, 12]
    expected = [np.mean(per_step[0:4]), np.mean(per_step[4:8]), np.mean(per_step[8:12])]
    np.testing.assert_allclose([v for _, v in logged], expected, rtol=1e-5)


def test_steps_per_execution_points_are_true_optimizer_steps(tmp_path):
    x, y = make_data()
    model = make_model(steps_per_execution=4)
    axes = Axes(str(tmp_path), every_steps=6, clock=TrainClock(batch_size=BATCH))
    model.fit(endless((x, y), BATCH), steps_per_epoch=20, epochs=1, callbacks=[axes], verbose=0)
    train = read_scalars(str(tmp_path / "train"))
    # Callbacks run every 4 steps (4, 8, ..., 20): the first batch end at or past 6, 12, 18.
    assert steps_of(train["loss"]) == [8, 12, 20]
    assert steps_of(train["by_examples/loss"]) == [8 * BATCH, 12 * BATCH, 20 * BATCH]
    assert int(model.optimizer.iterations) == 20


def test_second_fit_continues_steps(tmp_path):
    x, y = make_data()
    model = make_model()
    dataset = endless((x, y), BATCH)
    axes = Axes(str(tmp_path), every_steps=5)
    model.fit(dataset, steps_per_epoch=10, epochs=1, callbacks=[axes], verbose=0)
    model.fit(dataset, steps_per_epoch=10, epochs=1, callbacks=[axes], verbose=0)
    # A new Axes on the same directory continues too.
    model.fit(dataset, steps_per_epoch=7, epochs=1,
              callbacks=[Axes(str(tmp_path), every_steps=5)], verbose=0)
    train = read_scalars(str(tmp_path / "train"))
    # The last call ends at 27, off the grid: a final point is written there.
    assert steps_of(train["loss"]) == [5, 10, 15, 20, 25, 27]
    # Without a clock, the batch size is measured from the loss tracker's example count.
    assert steps_of(train["by_examples/loss"]) == [s * BATCH for s in (5, 10, 15, 20, 25, 27)]


def test_learning_rate_schedule_is_logged_at_the_step(tmp_path):
    x, y = make_data()
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.compile(keras.optimizers.SGD(schedule),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    axes = Axes(str(tmp_path), every_steps=5)
    model.fit(endless((x, y), BATCH), steps_per_epoch=20, callbacks=[axes], verbose=0)
    logged = read_scalars(str(tmp_path / "train"))["learning_rate"]
    assert steps_of(logged) == [5, 10, 15, 20]
    np.testing.assert_allclose([v for _, v in logged],
                               [float(schedule(s)) for s in (5, 10, 15, 20)], rtol=1e-6)


def test_hparams_are_written_for_the_hparams_plugin(tmp_path):
    x, y = make_data()
    model = make_model()
    hparams = {"learning_rate": 0.05, "batch_size": BATCH, "optimizer": "Adam",
               "deterministic": True, "hidden_units": (16, 16)}
    model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0,
              callbacks=[Axes(str(tmp_path), every_steps=4, hparams=hparams)])
    accumulator = event_accumulator.EventAccumulator(str(tmp_path))
    accumulator.Reload()
    content = accumulator.PluginTagToContent("hparams")
    data = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    written = data.session_start_info.hparams
    assert written["learning_rate"].number_value == pytest.approx(0.05)
    assert written["batch_size"].number_value == BATCH
    assert written["optimizer"].string_value == "Adam"
    assert written["deterministic"].bool_value is True
    assert written["hidden_units"].string_value == "(16, 16)"


def test_no_hparams_without_hparams(tmp_path):
    x, y = make_data()
    model = make_model()
    model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0,
              callbacks=[Axes(str(tmp_path), every_steps=4)])
    assert sorted(os.listdir(tmp_path)) == ["train"]


def test_every_steps_is_validated():
    with pytest.raises(ValueError, match="every_steps"):
        Axes("unused", every_steps=0)

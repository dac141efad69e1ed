"""The contract every public callback keeps (one test table over `toolkit.callbacks.__all__`).

Each callback constructs from plain arguments, round-trips `get_config`/`from_config` through
Keras's serialization registry, has a docstring with Args (where it takes any) and an Example,
works in a plain `model.fit` with `steps_per_execution > 1` and across two `fit` calls, and, if
it has run state, round-trips `get_state`/`set_state` through JSON.
"""

import inspect
import json

import keras
import numpy as np
import pytest

import toolkit.callbacks

NAMES = sorted(
    name for name in toolkit.callbacks.__all__
    if isinstance(getattr(toolkit.callbacks, name), type)
    and issubclass(getattr(toolkit.callbacks, name), keras.callbacks.Callback)
)


def make(name, tmp_path):
    """Each callback with small, plain arguments (the table a new callback must join)."""
    directory = str(tmp_path / "checkpoints")
    return {
        "Axes": lambda: toolkit.callbacks.Axes(str(tmp_path / "logs"), every_steps=3),
        "Checkpoint": lambda: toolkit.callbacks.Checkpoint(directory, every_steps=5),
        "EarlyStopping": lambda: toolkit.callbacks.EarlyStopping(patience_steps=12),
        "GradientNoiseScale": lambda: toolkit.callbacks.GradientNoiseScale(
            (np.random.default_rng(0).normal(size=(32, 3)), np.zeros((32, 1))),
            log_dir=str(tmp_path / "logs"), batch_size=8, num_batches=2, every_steps=5),
        "IntervalMetrics": lambda: toolkit.callbacks.IntervalMetrics(),
        "LossCurveDiagnosis": lambda: toolkit.callbacks.LossCurveDiagnosis(
            str(tmp_path / "logs"), every_steps=4, warn=False),
        "NanGuard": lambda: toolkit.callbacks.NanGuard(directory, every_steps=5),
        "Preemption": lambda: toolkit.callbacks.Preemption(directory, resume_hint="rerun"),
        "Progress": lambda: toolkit.callbacks.Progress(24, every_steps=6),
        "Sharpness": lambda: toolkit.callbacks.Sharpness(
            (np.ones((8, 3), "float32"), np.ones((8, 1), "float32")), every_steps=5,
            log_dir=str(tmp_path / "logs"), num_iterations=10),
    }[name]()


def make_model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="relu"),
                              keras.layers.Dense(1)])
    model.compile("adam", "mse", steps_per_execution=4)
    return model


def test_the_table_covers_every_export(tmp_path):
    for name in NAMES:
        assert isinstance(make(name, tmp_path), keras.callbacks.Callback), name


@pytest.mark.parametrize("name", NAMES)
def test_config_round_trips_through_the_registry(name, tmp_path):
    callback = make(name, tmp_path)
    config = callback.get_config()
    json.dumps(config)  # Plain values only.
    registered = keras.saving.get_registered_name(type(callback))
    assert registered == f"toolkit>{name}"
    rebuilt = keras.saving.get_registered_object(registered).from_config(config)
    assert type(rebuilt) is type(callback) and rebuilt.get_config() == config


@pytest.mark.parametrize("name", NAMES)
def test_docstring_has_args_and_example(name):
    cls = getattr(toolkit.callbacks, name)
    doc = inspect.getdoc(cls)
    takes_arguments = len(inspect.signature(cls.__init__).parameters) > 1
    assert ("Args:" in doc) == takes_arguments, name
    assert "Example:" in doc and ">>>" in doc, name


@pytest.mark.parametrize("name", NAMES)
def test_works_in_plain_fit_with_several_steps_per_execution_twice(name, tmp_path, capsys):
    callback = make(name, tmp_path)
    model = make_model()
    x = np.random.default_rng(0).normal(size=(96, 3)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    for epochs in (2, 3):  # A second `fit` call continues with the same callback.
        model.fit(x, y, batch_size=8, epochs=epochs, initial_epoch=epochs - 2,
                  validation_data=(x[:16], y[:16]), callbacks=[callback], verbose=0)
    assert int(model.optimizer.iterations) == 48  # 4 epochs of 12 steps, none lost.
    if hasattr(callback, "get_state"):
        state = callback.get_state()
        assert json.loads(json.dumps(state)) == state  # JSON-able, as checkpoints need.
        fresh = make(name, tmp_path)
        fresh.set_model(model)
        fresh.set_state(state)
        assert fresh.get_state() == state or name == "IntervalMetrics"

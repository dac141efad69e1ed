import os

import keras
import numpy as np
import pytest

from toolkit.callbacks.checkpoint import Checkpoint
from toolkit.data.endless import endless
from toolkit.errors import ModelError
from toolkit.checkpoint.restore import restore


def make_model(hidden=8, seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(hidden, activation="relu"), keras.layers.Dense(1)]
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    return model


def arrays(n=64):
    x = np.random.default_rng(0).normal(size=(n, 4)).astype("float32")
    return x, x.sum(axis=1, keepdims=True)


def state(model):
    return [np.array(v) for v in model.variables + model.optimizer.variables]


def test_interrupted_plain_fit_resumes_exactly_with_endless_data(tmp_path):
    x, y = arrays()
    uninterrupted = make_model()
    uninterrupted.fit(endless((x, y), 8, seed=3), steps_per_epoch=6, epochs=2, verbose=0)

    first = make_model()
    first.fit(endless((x, y), 8, seed=3), steps_per_epoch=5, epochs=1, verbose=0,
              callbacks=[Checkpoint(tmp_path, every_steps=4)])

    resumed = make_model(seed=9)  # A new process would build it afresh, optimizer unbuilt.
    step = restore(resumed, tmp_path)
    assert step == 5
    resumed.fit(endless((x, y), 8, seed=3, start_step=step), steps_per_epoch=12 - step,
                epochs=1, verbose=0)
    for expected, actual in zip(state(uninterrupted), state(resumed)):
        np.testing.assert_array_equal(expected, actual)


def test_restores_the_optimizer_even_when_it_is_not_built(tmp_path):
    model = make_model()
    model.fit(*arrays(), batch_size=16, verbose=0, callbacks=[Checkpoint(tmp_path)])
    fresh = make_model(seed=5)
    assert not fresh.optimizer.built
    assert restore(fresh, tmp_path) == 4
    assert int(fresh.optimizer.iterations) == 4
    for expected, actual in zip(state(model), state(fresh)):
        np.testing.assert_array_equal(expected, actual)


def test_accepts_a_run_directory_holding_checkpoints(tmp_path):
    model = make_model()
    model.fit(*arrays(32), batch_size=16, verbose=0,
              callbacks=[Checkpoint(tmp_path / "checkpoints")])
    assert restore(make_model(), tmp_path) == 2


def test_nothing_to_restore_returns_step_zero(tmp_path):
    model = make_model()
    before = [np.array(v) for v in model.variables]
    assert restore(model, tmp_path / "missing") == 0
    for expected, variable in zip(before, model.variables):
        np.testing.assert_array_equal(expected, variable)


def test_uncompiled_model_gets_weights_and_a_warning(tmp_path):
    model = make_model()
    model.fit(*arrays(32), batch_size=16, verbose=0, callbacks=[Checkpoint(tmp_path)])
    keras.utils.set_random_seed(1)
    bare = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)]
    )
    with pytest.warns(UserWarning, match="not compiled.*Compile it before `restore`"):
        restore(bare, tmp_path)
    for expected, actual in zip(model.variables, bare.variables):
        np.testing.assert_array_equal(np.array(expected), np.array(actual))


def test_checkpoint_of_another_architecture_is_refused(tmp_path):
    make_model().fit(*arrays(32), batch_size=16, verbose=0, callbacks=[Checkpoint(tmp_path)])
    other = make_model(hidden=5)
    with pytest.raises(ModelError, match=r"shape \(4, 5\).*but \(4, 8\)"):
        restore(other, os.fspath(tmp_path))

import keras
import numpy as np
import pytest

from toolkit.callbacks.checkpoint import Checkpoint
from toolkit.callbacks.nan_guard import NanGuard
from toolkit.errors import TrainingDivergedError
from toolkit.checkpoint.checkpointer import Checkpointer


def make_model(layers=None, learning_rate=1e-2, steps_per_execution=1):
    keras.utils.set_random_seed(0)
    layers = layers or [keras.layers.Dense(4, activation="relu"), keras.layers.Dense(1)]
    model = keras.Sequential([keras.Input((4,))] + layers)
    model.compile(keras.optimizers.Adam(learning_rate), "mse",
                  steps_per_execution=steps_per_execution)
    return model


def arrays(n=96):
    x = np.random.default_rng(0).normal(size=(n, 4)).astype("float32")
    return x, x.sum(axis=1, keepdims=True)


def finite(model):
    return all(np.all(np.isfinite(np.asarray(v))) for v in model.variables)


@pytest.mark.parametrize("steps_per_execution", [1, 2])
def test_recovers_from_a_batch_holding_inf(tmp_path, steps_per_execution):
    x, y = arrays()
    x[6 * 8 + 3, 1] = np.inf  # Batch 6: its gradient turns Adam's state and weights into NaN.
    model = make_model(steps_per_execution=steps_per_execution)
    checkpointer = Checkpointer(tmp_path, model=model)
    guard = NanGuard(checkpointer, every_steps=2)
    with pytest.warns(UserWarning, match=r"NanGuard: .*Rolled back to step 6, learning rate "
                                         r"0.01 -> 0.005 \(retry 1/3\)"):
        history = model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0,
                            callbacks=[guard, Checkpoint(checkpointer, every_steps=2)])
    assert finite(model)
    assert guard.num_retries == 1
    assert int(model.optimizer.iterations) == 12 - 2  # Steps 6 and 7 were undone.
    assert float(model.optimizer.learning_rate) == pytest.approx(0.005)
    assert np.isfinite(history.history["loss"][-1])
    for info in checkpointer.checkpoints():  # No non-finite checkpoint was ever written.
        fresh = make_model()
        Checkpointer(tmp_path, model=fresh).restore(step=info.step)
        assert finite(fresh)


class SpikeOnce(keras.callbacks.Callback):
    def on_train_batch_begin(self, batch, logs=None):
        if batch == 5 and not getattr(self, "done", False):
            self.done = True
            self.model.optimizer.learning_rate = 1e10


def test_recovers_from_a_learning_rate_spike(tmp_path):
    model = make_model()
    checkpointer = Checkpointer(tmp_path, model=model)
    guard = NanGuard(checkpointer, every_steps=2)
    with pytest.warns(UserWarning, match=r"Rolled back to step 4, learning rate 1e\+10 -> 0.005"):
        model.fit(*arrays(), batch_size=8, shuffle=False, verbose=0,
                  callbacks=[SpikeOnce(), guard, Checkpoint(checkpointer, every_steps=4)])
    assert finite(model) and guard.num_retries == 1


def exploding_model():
    # exp(100 t) overflows float32 for t > 0.89: hopeless whatever the learning rate.
    return make_model([
        keras.layers.Dense(4, name="hidden"),
        keras.layers.Lambda(lambda t: keras.ops.exp(100.0 * t), name="exploding"),
        keras.layers.Dense(1, name="head"),
    ])


def test_hopeless_run_stops_naming_the_layer_and_keeps_the_good_state(tmp_path):
    model = exploding_model()
    x, y = arrays()
    guard = NanGuard(tmp_path, every_steps=1, max_retries=2, batch_at=lambda step: (x[:8], y[:8]))
    with pytest.warns(UserWarning, match="retry 2/2"):
        with pytest.raises(TrainingDivergedError) as caught:
            model.fit(x, y, batch_size=8, shuffle=False, verbose=0, callbacks=[guard])
    message = str(caught.value)
    assert "after 2 rollback(s)" in message
    assert "output of layer `exploding` became non-finite at step 0" in message
    assert "learning rate is too high (now 0.0025" in message
    assert "initialization" in message and "largest |input|" in message
    assert finite(model)  # Left at the last good checkpoint.


def test_without_batches_it_names_the_first_diverged_weights(tmp_path):
    model = exploding_model()
    guard = NanGuard(tmp_path, every_steps=1, max_retries=0)
    with pytest.raises(TrainingDivergedError, match=r"first layer with non-finite weights: "
                                                   r"`hidden` \(pass `batch_at`"):
        model.fit(*arrays(16), batch_size=8, verbose=0, callbacks=[guard])


def test_state_and_config_round_trip(tmp_path):
    guard = NanGuard(str(tmp_path), every_steps=7, factor=0.25, max_retries=5)
    guard.num_retries = 2
    clone = NanGuard.from_config(guard.get_config())
    clone.set_state(guard.get_state())
    assert clone.get_config() == guard.get_config() and clone.num_retries == 2


@pytest.mark.parametrize(
    "kwargs, match",
    [({"every_steps": 0}, "every_steps"), ({"factor": 1.5}, "factor"),
     ({"max_retries": -1}, "max_retries")],
)
def test_invalid_arguments_are_named(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        NanGuard(tmp_path, **kwargs)

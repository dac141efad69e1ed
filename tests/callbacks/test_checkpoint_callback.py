import keras
import numpy as np
import pytest

from toolkit.callbacks.checkpoint import Checkpoint
from toolkit.checkpoint.checkpointer import Checkpointer


def make_model(steps_per_execution=1):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4), keras.layers.Dense(1)])
    model.compile("adam", "mse", steps_per_execution=steps_per_execution)
    return model


def arrays(n):
    x = np.random.default_rng(0).normal(size=(n, 4)).astype("float32")
    return x, x.sum(axis=1, keepdims=True)


def saved_steps(directory):
    return [info.step for info in Checkpointer(directory, model=make_model()).checkpoints()]


class StepRecorder(keras.callbacks.Callback):
    """Records the true optimizer step of every checkpoint written (test-only host reads)."""

    def __init__(self, checkpointer):
        super().__init__()
        self.checkpointer, self.steps = checkpointer, []

    def on_train_batch_end(self, batch, logs=None):
        last = self.checkpointer.last_saved_step
        if last is not None and (not self.steps or self.steps[-1] != last):
            self.steps.append(last)


@pytest.mark.parametrize(
    "steps_per_execution, expected",
    [(1, [4, 8, 12, 16, 20]), (3, [6, 9, 13, 16, 20])],
)
def test_saves_every_n_steps_and_at_train_end(tmp_path, steps_per_execution, expected):
    # 2 epochs of 10 steps; every_steps=4. With 3 steps per execution, a save happens at the
    # first execution boundary past each multiple of 4: executions start at steps 0, 3, 6, 9, then
    # (epoch 2) 10, 13, 16, 19; the end of training adds 20.
    model = make_model(steps_per_execution)
    callback = Checkpoint(tmp_path, every_steps=4, max_to_keep=100)
    model.fit(*arrays(80), batch_size=8, epochs=2, shuffle=False, verbose=0, callbacks=[callback])
    assert saved_steps(tmp_path) == expected
    for step in expected:  # Each checkpoint holds the optimizer state of its step.
        fresh = make_model()
        assert Checkpointer(tmp_path, model=fresh).restore(step=step) == step
        assert int(fresh.optimizer.iterations) == step


def test_keeps_the_best_epoch_by_validation_loss(tmp_path):
    model = make_model()
    x, y = arrays(32)
    callback = Checkpoint(tmp_path, every_steps=1000, max_to_keep=1, keep_best=1)
    history = model.fit(x, y, batch_size=8, epochs=4, verbose=0, validation_data=(x, -y),
                        callbacks=[callback])
    losses = history.history["val_loss"]
    best_step = 4 * (int(np.argmin(losses)) + 1)
    kept = saved_steps(tmp_path)
    assert kept == sorted({best_step, 16})
    assert callback.checkpointer.best().metrics["val_loss"] == pytest.approx(min(losses))


def test_reapplies_restored_callback_states_before_the_first_step(tmp_path):
    model = make_model()
    stopping = keras.callbacks.EarlyStopping(monitor="loss", patience=50)
    checkpointer = Checkpointer(tmp_path, model=model, callbacks=[stopping])
    stopping.wait, stopping.best = 7, 0.125
    checkpointer.save()

    fresh = make_model()
    stopping2 = keras.callbacks.EarlyStopping(monitor="loss", patience=50)
    checkpointer2 = Checkpointer(tmp_path, model=fresh, callbacks=[stopping2])
    checkpointer2.restore()
    seen = []
    probe = keras.callbacks.LambdaCallback(
        on_train_batch_begin=lambda batch, logs: seen.append((stopping2.wait, stopping2.best))
    )
    # EarlyStopping resets `wait` and `best` in on_train_begin; the restored values must win.
    fresh.fit(*arrays(8), batch_size=8, verbose=0,
              callbacks=[stopping2, Checkpoint(checkpointer2), probe])
    assert seen[0] == (7, 0.125)


def test_config_round_trips_and_a_checkpointer_can_be_shared(tmp_path):
    callback = Checkpoint(str(tmp_path), every_steps=7, keep_best=2, monitor="val_acc", mode="max")
    clone = Checkpoint.from_config(callback.get_config())
    assert clone.get_config() == callback.get_config()
    checkpointer = Checkpointer(tmp_path, model=make_model(), keep_best=1)
    shared = Checkpoint(checkpointer, every_steps=5)
    assert shared.checkpointer is checkpointer and shared.keep_best == 1
    with pytest.raises(ValueError, match="to the `Checkpointer`"):
        Checkpoint(checkpointer, keep_best=3)
    with pytest.raises(ValueError, match="every_steps"):
        Checkpoint(tmp_path, every_steps=0)


def test_survives_two_fit_calls(tmp_path):
    model = make_model()
    callback = Checkpoint(tmp_path, every_steps=3, max_to_keep=10)
    for _ in range(2):
        model.fit(*arrays(32), batch_size=8, shuffle=False, verbose=0, callbacks=[callback])
    assert saved_steps(tmp_path) == [3, 4, 6, 8]

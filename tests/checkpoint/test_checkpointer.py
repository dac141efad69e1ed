import errno
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from toolkit.clock import TrainClock
from toolkit.errors import CheckpointError, ModelError
from toolkit.checkpoint import files as checkpoint_files
from toolkit.checkpoint.checkpointer import Checkpointer


def make_model(hidden=8, optimizer="adam", seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(hidden, activation="relu"),
            keras.layers.Dropout(0.25),
            keras.layers.Dense(1),
        ]
    )
    model.compile(optimizer=keras.optimizers.get(optimizer), loss="mse")
    return model


def data(n=32, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype("float32")
    return x, x.sum(axis=1, keepdims=True)


def all_variables(model):
    return [np.array(v) for v in model.variables + model.optimizer.variables]


def assert_same_state(a, b):
    for va, vb in zip(a.variables + a.optimizer.variables, b.variables + b.optimizer.variables):
        assert np.array_equal(np.asarray(va), np.asarray(vb)), va.path


def trained(steps=4, **kwargs):
    """A model after `steps` Adam updates, applied eagerly (no tracing: keeps tests fast)."""
    model = make_model(**kwargs)
    model.optimizer.build(model.trainable_variables)
    rng = np.random.default_rng(steps)
    for _ in range(steps):
        gradients = [rng.normal(size=v.shape).astype("float32") for v in model.trainable_variables]
        model.optimizer.apply(gradients, model.trainable_variables)
    return model


def fitted(steps=4, **kwargs):
    """A model after `steps` steps of a real `model.fit`."""
    model = make_model(**kwargs)
    x, y = data(8 * steps)
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    return model


def test_round_trip_is_bit_exact_and_training_continues_identically(tmp_path):
    model = fitted()
    clock = TrainClock(batch_size=8)
    clock.tick(4)
    Checkpointer(tmp_path, model=model, clock=clock).save()

    fresh, fresh_clock = make_model(seed=7), TrainClock(batch_size=8)
    assert not fresh.optimizer.built
    step = Checkpointer(tmp_path, model=fresh, clock=fresh_clock).restore()

    assert step == 4
    assert fresh_clock.reading() == clock.reading()
    assert_same_state(model, fresh)
    x, y = data(16, seed=3)
    for m in (model, fresh):  # Dropout's seed state was restored too: same next steps.
        m.fit(x, y, batch_size=8, shuffle=False, verbose=0)
    assert_same_state(model, fresh)


def test_list_variables_shows_adam_slots_and_iteration_count(tmp_path):
    path = Checkpointer(tmp_path, model=trained()).save()
    names = dict(tf.train.list_variables(os.path.join(path, "variables")))
    optimizer = [name for name in names if name.startswith("optimizer/")]
    assert any(name.endswith("/iteration") for name in optimizer)
    assert sum(name.endswith("_momentum") for name in optimizer) == 4
    assert sum(name.endswith("_velocity") for name in optimizer) == 4
    reader = tf.train.load_checkpoint(os.path.join(path, "variables"))
    iteration = [n for n in optimizer if n.endswith("/iteration")][0]
    assert reader.get_tensor(iteration) == 4


def save_at(checkpointer, step, **metrics):
    checkpointer.model.optimizer.iterations.assign(step)
    return checkpointer.save(metrics=metrics)


@pytest.mark.parametrize(
    "mode, best_step", [("min", 2), ("max", 4)]
)
def test_keeps_newest_and_separately_the_best(tmp_path, mode, best_step):
    checkpointer = Checkpointer(
        tmp_path, model=trained(), max_to_keep=2, keep_best=1, mode=mode
    )
    losses = {1: 3.0, 2: 1.0, 3: 2.0, 4: 5.0, 5: 4.0, 6: 2.5}
    for step, loss in losses.items():
        save_at(checkpointer, step, val_loss=loss)
    kept = [info.step for info in checkpointer.checkpoints()]
    assert kept == sorted({5, 6, best_step})
    assert checkpointer.best().step == best_step
    assert checkpointer.latest().step == 6


def test_checkpoints_without_the_monitored_metric_are_never_best(tmp_path):
    checkpointer = Checkpointer(tmp_path, model=trained(), max_to_keep=1, keep_best=1)
    save_at(checkpointer, 1, loss=0.1)
    save_at(checkpointer, 2, val_loss=float("nan"))
    assert checkpointer.best() is None
    assert [info.step for info in checkpointer.checkpoints()] == [2]


def test_restores_a_given_step_and_names_missing_ones(tmp_path):
    model = trained()
    checkpointer = Checkpointer(tmp_path, model=model)
    save_at(checkpointer, 2)
    save_at(checkpointer, 3)
    assert checkpointer.restore(step=2) == 2
    assert int(model.optimizer.iterations) == 2
    with pytest.raises(CheckpointError, match=r"No checkpoint of step 9.*\[2, 3\]"):
        checkpointer.restore(step=9)


def two_checkpoints(tmp_path):
    model = trained()
    checkpointer = Checkpointer(tmp_path, model=model)
    checkpointer.save()
    good = all_variables(model)
    model.optimizer.apply([np.ones(v.shape, "float32") for v in model.trainable_variables])
    newest = checkpointer.save()
    return good, newest


@pytest.mark.parametrize("damage", ["truncate", "flip", "no_manifest", "bad_state"])
def test_damaged_newest_falls_back_to_the_previous_one(tmp_path, damage):
    good, newest = two_checkpoints(tmp_path)
    data_file = os.path.join(newest, "variables.data-00000-of-00001")
    if damage == "truncate":
        with open(data_file, "r+b") as file:
            file.truncate(os.path.getsize(data_file) // 2)
    elif damage == "flip":
        with open(data_file, "r+b") as file:
            byte = file.read(1)
            file.seek(0)
            file.write(bytes([byte[0] ^ 0xFF]))
    elif damage == "no_manifest":
        os.remove(os.path.join(newest, "manifest.json"))
    else:
        with open(os.path.join(newest, "state.json"), "w") as file:
            file.write("{not json")
    fresh = make_model(seed=3)
    with pytest.warns(UserWarning, match="Skipping damaged checkpoint"):
        step = Checkpointer(tmp_path, model=fresh).restore()
    assert step == 4
    for expected, variable in zip(good, fresh.variables + fresh.optimizer.variables):
        assert np.array_equal(expected, np.asarray(variable))


def test_no_good_checkpoint_is_a_clear_error(tmp_path):
    _, newest = two_checkpoints(tmp_path)
    for info in checkpoint_files.list_checkpoints(str(tmp_path)):
        os.remove(os.path.join(info.path, "variables.index"))
    with pytest.warns(UserWarning):
        with pytest.raises(CheckpointError, match="No good checkpoint.*missing `variables.index`"):
            Checkpointer(tmp_path, model=make_model()).restore()


def test_empty_directory_restores_step_zero(tmp_path):
    model = make_model()
    before = all_variables(model)
    assert Checkpointer(tmp_path / "none", model=model).restore() == 0
    for expected, variable in zip(before, model.variables):
        assert np.array_equal(expected, np.asarray(variable))


def test_shape_mismatch_names_the_variable_and_changes_nothing(tmp_path):
    Checkpointer(tmp_path, model=trained(hidden=8)).save()
    other = make_model(hidden=16)
    other.optimizer.build(other.trainable_variables)
    before = all_variables(other)
    with pytest.raises(ModelError, match=r"`sequential_\d+/dense_\d+/kernel` has shape \(4, 16\).*"
                       r"but \(4, 8\).*another model or recipe"):
        Checkpointer(tmp_path, model=other).restore()
    for expected, variable in zip(before, other.variables + other.optimizer.variables):
        assert np.array_equal(expected, np.asarray(variable))


def test_other_optimizer_is_a_clear_error(tmp_path):
    Checkpointer(tmp_path, model=trained()).save()
    with pytest.raises(ModelError, match=r"holds 10 optimizer variables, the model 2"):
        Checkpointer(tmp_path, model=make_model(optimizer="sgd")).restore()


def test_disk_full_while_writing_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    good, _ = two_checkpoints(tmp_path)
    before = sorted(os.listdir(tmp_path))

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint_files, "_write_json", full)
    model = trained()
    model.optimizer.iterations.assign(99)
    with pytest.raises(CheckpointError, match=r"step 99.*No space left.*intact"):
        Checkpointer(tmp_path, model=model).save()
    assert sorted(os.listdir(tmp_path)) == before  # Nothing half-written left behind.


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_read_only_directory_is_a_clear_error(tmp_path):
    Checkpointer(tmp_path, model=trained()).save()
    os.chmod(tmp_path, 0o500)
    try:
        model = trained()
        model.optimizer.iterations.assign(8)
        with pytest.raises(CheckpointError, match="Could not write the checkpoint of step 8"):
            Checkpointer(tmp_path, model=model).save()
    finally:
        os.chmod(tmp_path, 0o700)
    assert Checkpointer(tmp_path, model=make_model()).restore() == 4


@pytest.mark.parametrize("where", ["model", "optimizer"])
def test_non_finite_state_is_never_written(tmp_path, where):
    model = trained()
    checkpointer = Checkpointer(tmp_path, model=model)
    checkpointer.save()
    variable = model.variables[0] if where == "model" else model.optimizer.variables[3]
    variable.assign(np.full(variable.shape, np.nan, "float32"))
    model.optimizer.iterations.assign(10)
    with pytest.warns(UserWarning, match=f"`{variable.path}` holds NaN"):
        assert checkpointer.save() is None
    assert [info.step for info in checkpointer.checkpoints()] == [4]
    assert checkpointer.find_nonfinite() == variable.path


def test_async_save_writes_the_state_of_the_save_call(tmp_path):
    model = fitted()
    checkpointer = Checkpointer(tmp_path, model=model, async_save=True)
    for _ in range(3):  # Keras objects under TF's async checkpointing fail from the 2nd save.
        snapshot = all_variables(model)
        path = checkpointer.save()
        model.fit(*data(16, seed=2), batch_size=8, verbose=0)  # Keeps training meanwhile.
        checkpointer.wait()
        fresh = make_model(seed=4)
        step = Checkpointer(tmp_path, model=fresh).restore()
        assert path.endswith(f"ckpt-{step:08d}")
        for expected, variable in zip(snapshot, fresh.variables + fresh.optimizer.variables):
            assert np.array_equal(expected, np.asarray(variable))
    checkpointer.close()


def test_loss_scale_optimizer_state_round_trips(tmp_path):
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = fitted()
        scale = [v for v in model.optimizer.variables if v.path.endswith("dynamic_scale")][0]
        scale.assign(64.0)
        Checkpointer(tmp_path, model=model).save()
        fresh = make_model(seed=2)
        Checkpointer(tmp_path, model=fresh).restore()
        assert_same_state(model, fresh)
        assert float(fresh.optimizer.variables[3]) == 64.0
    finally:
        keras.mixed_precision.set_global_policy("float32")


class Counter(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.count = 0

    def on_train_begin(self, logs=None):
        self.count = 0  # Resets run state, as callbacks do.

    def get_state(self):
        return {"count": self.count}

    def set_state(self, state):
        self.count = state["count"]


def test_callback_states_round_trip_and_survive_on_train_begin(tmp_path):
    counter, stopping = Counter(), keras.callbacks.EarlyStopping(patience=9)
    counter.count, stopping.wait, stopping.best = 5, 3, np.float32(0.25)
    Checkpointer(tmp_path, model=trained(), callbacks=[counter, stopping, Counter()]).save()
    path = checkpoint_files.list_checkpoints(str(tmp_path))[0].path
    with open(os.path.join(path, "state.json")) as file:
        state = json.load(file)
    assert set(state["callbacks"]) == {"Counter", "EarlyStopping", "Counter-1"}

    counter2, stopping2 = Counter(), keras.callbacks.EarlyStopping(patience=9)
    checkpointer = Checkpointer(tmp_path, model=make_model(), callbacks=[counter2, stopping2])
    checkpointer.restore()
    counter2.on_train_begin()  # Keras callbacks reset themselves here, after the restore.
    stopping2.on_train_begin()
    assert (counter2.count, stopping2.wait) == (0, 0)  # Not applied before `on_train_begin`.
    checkpointer.apply_callback_states()
    assert (counter2.count, stopping2.wait, stopping2.best) == (5, 3, 0.25)
    counter2.count = 7
    checkpointer.apply_callback_states()  # Applied once: a second call changes nothing.
    assert counter2.count == 7


def test_callback_state_must_be_json(tmp_path):
    counter = Counter()
    counter.count = np.arange(3)
    with pytest.raises(TypeError, match=r"`Counter`.get_state\(\) must return JSON-able"):
        Checkpointer(tmp_path, model=trained(), callbacks=[counter]).save()


def test_rollback_restores_model_and_optimizer_but_not_the_clock(tmp_path):
    model, clock = trained(), TrainClock(batch_size=8)
    checkpointer = Checkpointer(tmp_path, model=model, clock=clock)
    checkpointer.save()
    good = all_variables(model)
    model.optimizer.apply([np.ones(v.shape, "float32") for v in model.trainable_variables])
    clock.tick(6)
    assert checkpointer.rollback() == 4
    assert clock.reading().step == 6
    for expected, variable in zip(good, model.variables + model.optimizer.variables):
        assert np.array_equal(expected, np.asarray(variable))


def test_invalid_arguments_are_named(tmp_path):
    with pytest.raises(ValueError, match="max_to_keep"):
        Checkpointer(tmp_path, model=make_model(), max_to_keep=0)
    with pytest.raises(ValueError, match="mode"):
        Checkpointer(tmp_path, model=make_model(), mode="lowest")
    unbuilt = keras.Sequential([keras.layers.Dense(1)])
    with pytest.raises(ModelError, match="not built"):
        Checkpointer(tmp_path, model=unbuilt).save()

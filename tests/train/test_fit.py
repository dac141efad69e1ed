"""fit: budgets, intervals, data guards, fast defaults, one run for the callbacks."""

import os
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from toolkit.data import endless
from toolkit.errors import DataError, ModelError, RecipeError
from toolkit.train import StepHistory, fit
from toolkit.train.fast_defaults import (
    apply_execution_settings,
    choose_jit_compile,
    choose_steps_per_execution,
)
from toolkit.train.intervals import fit_calls, interval_plan
from toolkit.train.options import Execution, Logging
from toolkit.train.training_data import training_data

BATCH = 8


def make_data(n=64):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 4)).astype("float32"), rng.integers(0, 3, n)


def make_model(**compile_kwargs):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.compile(keras.optimizers.Adam(0.01),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"], **compile_kwargs)
    return model


# Budget arithmetic (pure functions) ------------------------------------------------------------

@pytest.mark.parametrize("start, steps, every, expected", [
    (0, 250, 100, [(0, 100), (100, 200), (200, 250)]),
    (150, 420, 100, [(150, 200), (200, 300), (300, 400), (400, 420)]),
    (0, 50, None, [(0, 50)]),
    (30, 50, None, [(30, 50)]),
    (200, 200, 100, []),
    (250, 200, 100, []),
    (99, 101, 100, [(99, 100), (100, 101)]),
])
def test_interval_plan(start, steps, every, expected):
    assert interval_plan(start, steps, every) == expected


def test_fit_calls_group_whole_intervals_only_when_executions_fit():
    plan = interval_plan(150, 420, 100)
    assert fit_calls(plan, 100, 50) == [(150, 200, 1), (200, 400, 2), (400, 420, 1)]
    assert fit_calls(plan, 100, 64) == [(150, 200, 1), (200, 300, 1), (300, 400, 1),
                                        (400, 420, 1)]
    assert fit_calls(interval_plan(0, 300, 100), 100, 1) == [(0, 300, 3)]


def test_log_every_steps_is_a_multiple_of_the_execution():
    assert Logging().resolve_every_steps(10_000, 64) == 256
    assert Logging().resolve_every_steps(640, 64) == 64
    assert Logging().resolve_every_steps(50, 1) == 1
    assert Logging().resolve_every_steps(10_000, 50) % 50 == 0
    assert Logging(every_steps=7).resolve_every_steps(10_000, 64) == 7


def test_fast_default_rules():
    assert choose_steps_per_execution(499) == 1
    assert choose_steps_per_execution(500) == 64
    assert choose_steps_per_execution(5000, every_steps=100) == 50
    assert choose_steps_per_execution(5000, every_steps=101) == 64
    assert choose_steps_per_execution(10, requested=7) == 7
    assert choose_jit_compile(640) is False
    assert choose_jit_compile(1_999) is False
    assert choose_jit_compile(2_000) is True
    assert choose_jit_compile(10_000, requested=False) is False
    with pytest.raises(RecipeError, match="steps_per_execution"):
        choose_steps_per_execution(10, requested=0)
    with pytest.raises(RecipeError, match="jit_compile"):
        choose_jit_compile(10, requested="yes")


# Running a budget ------------------------------------------------------------------------------

def test_budget_not_divisible_then_continue_then_nothing():
    x, y = make_data()
    model = make_model()
    history = fit(model, (x, y), steps=25, batch_size=BATCH, eval_data=(x, y),
                  eval_every_steps=10, verbose=0, execution=Execution(steps_per_execution=4))
    assert isinstance(history, StepHistory)
    assert history.steps == [10, 20, 25]
    assert int(model.optimizer.iterations) == 25
    assert sorted(history.history) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert history.examples_seen == [10 * BATCH, 20 * BATCH, 25 * BATCH]
    assert history.wall_seconds == sorted(history.wall_seconds)
    assert history.final()["val_loss"] == pytest.approx(model.evaluate(x, y, verbose=0)[0],
                                                        rel=1e-5)
    # A larger budget continues on the grid.
    history = fit(model, (x, y), steps=37, batch_size=BATCH, eval_every_steps=10, verbose=0,
                  execution=Execution(steps_per_execution=4))
    assert history.steps == [30, 37]
    assert int(model.optimizer.iterations) == 37
    # The budget reached: nothing runs, and fit says so.
    with pytest.warns(UserWarning, match="nothing to train.*step 37.*steps=37"):
        history = fit(model, (x, y), steps=37, batch_size=BATCH, verbose=0)
    assert len(history) == 0
    assert int(model.optimizer.iterations) == 37


def test_a_finished_run_dir_returns_its_history_and_state(tmp_path):
    x, y = make_data()
    done = fit(make_model(), (x, y), steps=20, batch_size=BATCH, eval_data=(x, y),
               eval_every_steps=10, run_dir=tmp_path, verbose=0)
    again = make_model()  # As a new process would: the run directory has reached its budget.
    with pytest.warns(UserWarning, match="nothing to train.*step 20"):
        history = fit(again, (x, y), steps=20, batch_size=BATCH, eval_data=(x, y),
                      eval_every_steps=10, run_dir=tmp_path, verbose=0)
    assert history == done and int(again.optimizer.iterations) == 20


def test_start_inside_an_interval_finishes_it_first():
    x, y = make_data()
    model = make_model()
    fit(model, (x, y), steps=15, batch_size=BATCH, verbose=0)
    history = fit(model, (x, y), steps=40, batch_size=BATCH, eval_every_steps=10, verbose=0)
    assert history.steps == [20, 30, 40]


def test_executions_larger_than_intervals_do_not_overshoot():
    x, y = make_data()
    model = make_model()
    # Plain Keras would run 64 steps per execution; the budget and every interval stay exact.
    history = fit(model, (x, y), steps=100, batch_size=BATCH, eval_every_steps=30,
                  execution=Execution(steps_per_execution=64), verbose=0)
    assert history.steps == [30, 60, 90, 100]
    assert int(model.optimizer.iterations) == 100


def test_endless_data_is_positioned_at_each_call_step():
    x, y = make_data()
    dataset = endless((x, y), BATCH, seed=5)
    expected = [b[1] for b in dataset.take(9).as_numpy_iterator()]
    data = training_data(dataset, batch_size=None)
    assert data.batches(0, 2) is not None
    got = [b[1] for b in data.batches(4, 3).as_numpy_iterator()]
    got += [b[1] for b in data.batches(7, 2).as_numpy_iterator()]
    np.testing.assert_array_equal(np.stack(got), np.stack(expected[4:9]))


def test_foreign_endless_dataset_continues_between_intervals():
    dataset = tf.data.Dataset.range(10**9).map(lambda i: (tf.fill([2, 4], 1.0), tf.fill([2], i)))
    data = training_data(dataset.repeat(), batch_size=None)
    assert data.batch_size == 2
    first = [int(b[1][0]) for b in data.batches(0, 3).as_numpy_iterator()]
    second = [int(b[1][0]) for b in data.batches(3, 2).as_numpy_iterator()]
    assert first + second == [0, 1, 2, 3, 4]


def test_callbacks_see_one_run_with_one_epoch_per_interval():
    x, y = make_data()
    model = make_model()
    events = []
    recorder = keras.callbacks.LambdaCallback(
        on_train_begin=lambda logs: events.append("begin"),
        on_epoch_end=lambda epoch, logs: events.append(epoch),
        on_train_end=lambda logs: events.append("end"),
    )
    fit(model, (x, y), steps=35, batch_size=BATCH, eval_every_steps=10, callbacks=[recorder],
        execution=Execution(steps_per_execution=5), verbose=0)
    assert events == ["begin", 0, 1, 2, 3, "end"]


def test_early_stopping_patience_spans_intervals():
    x, y = make_data()
    model = make_model()
    # val_loss cannot improve by 1e9: patience 2 stops after the third interval.
    stopper = keras.callbacks.EarlyStopping(monitor="val_loss", patience=2, min_delta=1e9)
    history = fit(model, (x, y), steps=100, batch_size=BATCH, eval_data=(x, y),
                  eval_every_steps=10, callbacks=[stopper], verbose=0,
                  execution=Execution(steps_per_execution=5))
    assert history.steps == [10, 20, 30]
    assert int(model.optimizer.iterations) == 30


def test_run_dir_installs_tensorboard_logging(tmp_path):
    x, y = make_data()
    model = make_model()
    fit(model, (x, y), steps=20, batch_size=BATCH, eval_data=(x, y), eval_every_steps=10,
        run_dir=str(tmp_path), verbose=0)
    assert {"train", "validation"} <= set(os.listdir(tmp_path))
    assert any(name.startswith("events.out.tfevents") for name in os.listdir(tmp_path))


def test_fast_settings_apply_without_losing_optimizer_state():
    x, y = make_data()
    model = make_model()
    fit(model, (x, y), steps=6, batch_size=BATCH, verbose=0,
        execution=Execution(steps_per_execution=1))
    before = [v.numpy().copy() for v in model.optimizer.variables]
    apply_execution_settings(model, steps_per_execution=3, jit_compile=False)
    assert model.steps_per_execution == 3 and model.train_function is None
    after = [v.numpy() for v in model.optimizer.variables]
    assert all(np.array_equal(a, b) for a, b in zip(before, after))
    fit(model, (x, y), steps=12, batch_size=BATCH, verbose=0,
        execution=Execution(steps_per_execution=3))
    assert int(model.optimizer.iterations) == 12
    assert model.steps_per_execution == 3


# Guards ----------------------------------------------------------------------------------------

def test_finite_dataset_is_refused():
    x, y = make_data()
    finite = tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH)
    with pytest.raises(DataError, match=r"ends.*8 batches.*\.repeat\(\)"):
        fit(make_model(), finite, steps=10, verbose=0)


def test_unknown_length_dataset_is_refused():
    x, y = make_data()
    filtered = tf.data.Dataset.from_tensor_slices((x, y)).repeat().filter(lambda a, b: b >= 0)
    with pytest.raises(DataError, match="cardinality is unknown.*assert_cardinality"):
        fit(make_model(), filtered.batch(BATCH), steps=10, verbose=0)


def test_generator_is_refused():
    def batches():
        while True:
            yield np.zeros((BATCH, 4)), np.zeros(BATCH)

    with pytest.raises(DataError, match="cannot bound training data of type generator"):
        fit(make_model(), batches(), steps=10, verbose=0)


def test_arrays_need_a_batch_size():
    with pytest.raises(DataError, match="no `batch_size`.*batch_size=32"):
        fit(make_model(), make_data(), steps=10, verbose=0)


def test_batch_size_must_match_the_endless_dataset():
    with pytest.raises(DataError, match="batch_size=16 for a dataset built with batch_size=8"):
        fit(make_model(), endless(make_data(), BATCH), steps=10, batch_size=16, verbose=0)


def test_infinite_eval_data_is_refused():
    x, y = make_data()
    with pytest.raises(DataError, match="`eval_data` is an infinite"):
        fit(make_model(), (x, y), steps=10, batch_size=BATCH, verbose=0,
            eval_data=endless((x, y), BATCH))


def test_bad_arguments_are_refused():
    x, y = make_data()
    with pytest.raises(RecipeError, match="`steps` must be a positive.*steps=0"):
        fit(make_model(), (x, y), steps=0, batch_size=BATCH)
    with pytest.raises(RecipeError, match="eval_every_steps=-5"):
        fit(make_model(), (x, y), steps=10, batch_size=BATCH, eval_every_steps=-5)
    with pytest.raises(RecipeError, match="verbose"):
        fit(make_model(), (x, y), steps=10, batch_size=BATCH, verbose="loud")
    uncompiled = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    with pytest.raises(ModelError, match="compiled"):
        fit(uncompiled, (x, y), steps=10, batch_size=BATCH)


def test_no_warning_on_a_normal_run():
    x, y = make_data()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit(make_model(), (x, y), steps=5, batch_size=BATCH, verbose=0)

"""EarlyStopping: patience in steps, a minimum improvement from the metric's noise, best weights
restored bit for bit, and the best state kept across a kill and resume (in-process and SIGKILL).

Run as a script (`python test_early_stopping.py RUN_DIR KILL_AT_STEP`), it trains the run of
`_train` and SIGKILLs itself when step KILL_AT_STEP begins.
"""

import math
import os
import signal
import subprocess
import sys
import warnings

import keras
import numpy as np
import pytest

from toolkit.callbacks import metric_noise
from toolkit.callbacks.early_stopping import EarlyStopping
from toolkit.train import Execution, Logging, fit

BUDGET, EVERY, PATIENCE = 200, 4, 40


def _data():
    rng = np.random.default_rng(0)
    x = rng.random((160, 8)).astype("float32")
    y = x.sum(axis=1) + rng.normal(0.0, 0.5, 160).astype("float32")
    return (x[:32], y[:32]), (x[32:96], y[32:96])  # 32 noisy examples: it soon overfits.


def _build():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(64, activation="relu"),
                              keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(0.005), "mse")
    return model


class _Recorder(keras.callbacks.Callback):
    """The weights and `val_loss` at every evaluation, by optimizer step."""

    def __init__(self):
        super().__init__()
        self.weights, self.values = {}, {}

    def on_epoch_end(self, epoch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        self.weights[step], self.values[step] = self.model.get_weights(), logs["val_loss"]


def _train(model, steps, callbacks, run_dir=None, checkpoint_every_steps=None):
    train, val = _data()
    fit(model, train, steps=steps, batch_size=8, eval_data=val, eval_every_steps=EVERY,
        run_dir=run_dir, callbacks=callbacks, verbose=0, execution=Execution(1, False),
        logging=Logging(every_steps=0, checkpoint_every_steps=checkpoint_every_steps))


def _same_weights(a, b):
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


def _scripted(stopping, values, every=100):
    """Feeds `values` as evaluations every `every` steps until the callback stops training."""
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("adam", "mse")
    stopping.set_model(model)
    stopping.on_train_begin()
    for index, value in enumerate(values, 1):
        model.optimizer.iterations.assign(index * every)
        stopping.on_epoch_end(index, {stopping.monitor: value})
        if model.stop_training:
            break
    return stopping


# ------------------------------------------------------------------ the rule, scripted
def test_min_delta_is_one_standard_error_on_known_cases():
    # Alternating +-0.05: every second difference is +-0.2.
    wiggle = [1.0, 1.1, 1.0, 1.1, 1.0, 1.1, 1.0]
    expected = 0.2 / (0.6744897501960817 * math.sqrt(6.0))
    assert metric_noise.spread_standard_error(wiggle) == pytest.approx(expected, rel=1e-12)
    # Only the last 7 evaluations count: an early steep descent drops out.
    assert metric_noise.spread_standard_error([9.0, 5.0] + wiggle) == pytest.approx(expected)
    assert metric_noise.spread_standard_error(wiggle[:4]) is None
    assert metric_noise.rate_standard_error(0.8, 100) == pytest.approx(0.04)
    assert metric_noise.noise_min_delta(wiggle, rate=0.8, num_examples=100) == pytest.approx(
        max(expected, 0.04))
    # Through the callback: accuracy 0.80 on 400 examples has a standard error of 0.02.
    stopping = _scripted(EarlyStopping(1000, monitor="val_accuracy", num_eval_examples=400),
                         [0.80, 0.81])
    assert stopping.current_min_delta == pytest.approx(math.sqrt(0.8 * 0.2 / 400))
    assert (stopping.reference_step, stopping.best_step) == (100, 200)  # +0.01: noise.
    stopping = _scripted(EarlyStopping(1000, monitor="val_accuracy", num_eval_examples=400),
                         [0.80, 0.81, 0.83])
    assert (stopping.reference_step, stopping.best_step) == (300, 300)  # +0.03: real.
    stopping = _scripted(EarlyStopping(1000, min_delta=0.5), wiggle)
    assert stopping.current_min_delta == 0.5 and stopping.reference_step == 100


def test_a_rise_does_not_stop_and_gains_within_the_noise_do_not_reset_patience():
    losses = [0.9, 0.5, 0.42, 0.45, 0.40, 0.41, 0.37, 0.39, 0.40, 0.38]
    stopping = _scripted(EarlyStopping(300), losses)
    # The rise at step 400 did not stop it; 0.37 (step 700) is the best, but only 0.03 under
    # 0.40 (step 500) with noise 0.058, so patience ran from step 500.
    assert stopping.current_min_delta == pytest.approx(0.0484, abs=1e-4)
    assert (stopping.reference_step, stopping.best_step, stopping.stopped_step) == (500, 700, 800)
    assert stopping.best_value == 0.37
    # Keras's rule (any gain counts) restarts patience at step 700: it stops 200 steps later.
    assert _scripted(EarlyStopping(300, min_delta=0.0), losses).stopped_step == 1000
    # A larger accuracy is better ("auto" mode).
    accuracy = _scripted(EarlyStopping(200, monitor="val_accuracy"), [0.5, 0.7, 0.6, 0.65])
    assert (accuracy.best_step, accuracy.stopped_step) == (200, 400)


@pytest.mark.parametrize("kwargs, match", [
    ({"patience_steps": -1}, "`patience_steps` must be an int >= 0"),
    ({"patience_steps": 10, "mode": "up"}, '`mode` must be "auto", "min" or "max"'),
    ({"patience_steps": 10, "min_delta": -0.1}, "`min_delta` must be >= 0"),
    ({"patience_steps": 10, "num_eval_examples": 100},
     "sampling error sqrt\\(p\\(1-p\\)/n\\) of an accuracy; `monitor` is 'val_loss'"),
    ({"patience_steps": 10, "monitor": "val_accuracy", "num_eval_examples": 0},
     "`num_eval_examples` must be a positive int"),
    ({"patience_steps": 10, "monitor": "val_accuracy", "num_eval_examples": 10, "min_delta": 0.1},
     "Pass either `min_delta`"),
])
def test_bad_arguments_say_how_to_fix_them(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EarlyStopping(**kwargs)


def test_a_missing_monitor_warns_once():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    stopping = EarlyStopping(10)
    stopping.set_model(model)
    stopping.on_train_begin()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stopping.on_epoch_end(0, {"loss": 1.0})
        stopping.on_epoch_end(1, {"loss": 1.0})
    assert len(caught) == 1, [str(w.message) for w in caught]
    assert "`val_loss`, which is not in the epoch logs (available: ['loss'])" in str(
        caught[0].message)
    assert stopping.best_step is None


# ------------------------------------------------------------------ real training
@pytest.fixture(scope="module")
def uninterrupted():
    """`toolkit.fit` to the budget, no run directory: stops early on the rising `val_loss`."""
    model, stopping, recorder = _build(), EarlyStopping(PATIENCE), _Recorder()
    _train(model, BUDGET, [stopping, recorder])
    return model, stopping, recorder


def test_fit_stops_after_patience_not_at_the_first_rise_and_restores_the_best(uninterrupted):
    model, stopping, recorder = uninterrupted
    steps, values = sorted(recorder.values), [recorder.values[s] for s in sorted(recorder.values)]
    first_rise = next(s for s, a, b in zip(steps[1:], values, values[1:]) if b > a)
    assert first_rise < stopping.best_step < stopping.stopped_step < BUDGET
    assert stopping.stopped_step - stopping.reference_step >= PATIENCE
    assert int(model.optimizer.iterations) == stopping.stopped_step  # `fit` really stopped.
    assert stopping.best_value == min(values) == recorder.values[stopping.best_step]
    assert _same_weights(model.get_weights(), recorder.weights[stopping.best_step])


def test_plain_fit_restores_the_best_weights_when_the_budget_ends():
    model, stopping, recorder = _build(), EarlyStopping(10_000), _Recorder()
    train, val = _data()
    model.fit(*train, batch_size=8, epochs=12, validation_data=val, verbose=0,
              callbacks=[stopping, recorder])
    assert stopping.stopped_step is None and int(model.optimizer.iterations) == 48
    assert stopping.best_step == min(recorder.values, key=recorder.values.get) != 48
    assert _same_weights(model.get_weights(), recorder.weights[stopping.best_step])


def _assert_continues_like(uninterrupted, model, stopping):
    reference_model, reference, _ = uninterrupted
    # Best value, step and weights, the stop, and the weights training reached (which differ if
    # the resumed run did not continue on the same path).
    assert stopping.get_state() == reference.get_state()
    assert _same_weights(model.get_weights(), reference_model.get_weights())
    assert int(model.optimizer.iterations) == int(reference_model.optimizer.iterations)


@pytest.fixture(scope="module")
def resumed_run(uninterrupted, tmp_path_factory):
    """Trained to step 60 (best at 52 so far), then resumed by a fresh model to the budget."""
    run_dir = str(tmp_path_factory.mktemp("resumed"))
    first = EarlyStopping(PATIENCE)
    _train(_build(), 60, [first], run_dir=run_dir)
    assert first.best_step < 60 and first.stopped_step is None
    model, stopping = _build(), EarlyStopping(PATIENCE)
    _train(model, BUDGET, [stopping], run_dir=run_dir)
    return run_dir, model, stopping


def test_a_resumed_run_keeps_the_best_state_and_stops_like_an_uninterrupted_one(
        uninterrupted, resumed_run):
    # Step 60 is off the checkpoint grid: its checkpoint was written after the best weights were
    # set, and the reached weights kept in the state put training back on its path.
    _, model, stopping = resumed_run
    _assert_continues_like(uninterrupted, model, stopping)


@pytest.fixture(scope="module")
def rerun_after_stop(resumed_run):
    run_dir, _, stopping = resumed_run
    model = _build()
    _train(model, BUDGET, [EarlyStopping(PATIENCE)], run_dir=run_dir)
    return model, stopping


def test_a_rerun_after_an_early_stop_ends_at_the_best_weights(rerun_after_stop):
    model, stopping = rerun_after_stop
    assert _same_weights(model.get_weights(), stopping.best_weights)


def test_a_rerun_after_an_early_stop_trains_no_step(rerun_after_stop):
    model, stopping = rerun_after_stop
    assert int(model.optimizer.iterations) == stopping.stopped_step


def test_sigkill_then_resume_continues_like_an_uninterrupted_run(uninterrupted, tmp_path):
    run_dir = tmp_path / "run"
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    process = subprocess.run([sys.executable, __file__, str(run_dir), "62"], env=environment,
                             capture_output=True, text=True, timeout=300)
    assert process.returncode == -signal.SIGKILL, process.stderr[-3000:]
    checkpoints = sorted(os.listdir(run_dir / "checkpoints"))
    assert checkpoints[-1] == "ckpt-00000060", checkpoints  # The best (step 52) is before it.
    model, stopping = _build(), EarlyStopping(PATIENCE)
    _train(model, BUDGET, [stopping], run_dir=str(run_dir), checkpoint_every_steps=20)
    _assert_continues_like(uninterrupted, model, stopping)


class _KillAt(keras.callbacks.Callback):
    def __init__(self, step):
        super().__init__()
        self.step = step

    def on_train_batch_begin(self, batch, logs=None):
        if int(self.model.optimizer.iterations.numpy()) == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    _train(_build(), BUDGET, [EarlyStopping(PATIENCE), _KillAt(int(sys.argv[2]))],
           run_dir=sys.argv[1], checkpoint_every_steps=20)


def test_scalar_weights_keep_their_shape_through_the_state():
    from toolkit.callbacks.early_stopping import _decode, _encode

    for array in (np.float32(3.5) * np.ones(()), np.arange(6, dtype="float32").reshape(2, 3)):
        again = _decode(_encode(array))
        assert again.shape == array.shape and again.dtype == array.dtype
        np.testing.assert_array_equal(again, array)

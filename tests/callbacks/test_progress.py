"""Progress: one bar over the whole budget, in plain model.fit and in toolkit.train.fit."""

import io

import keras
import numpy as np
import pytest

from toolkit.callbacks import Progress
from toolkit.data import endless
from toolkit.train import Execution, fit

BATCH = 8


def make_model(steps_per_execution=1):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  steps_per_execution=steps_per_execution)
    return model


def make_data(n=64):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 4)).astype("float32"), rng.integers(0, 3, n)


def bar_steps(text):
    """The step numbers of the bar lines ("12/40 [...").'"""
    return [int(line.split("/")[0]) for line in text.splitlines() if "[" in line]


def test_bar_counts_the_whole_budget_across_epochs():
    x, y = make_data()
    stream = io.StringIO()
    make_model().fit(endless((x, y), BATCH), steps_per_epoch=10, epochs=4, verbose=0,
                     validation_data=(x, y),
                     callbacks=[Progress(steps=40, every_steps=4, stream=stream)])
    text = stream.getvalue()
    # Not a terminal: a line per 10% of the budget at most, and a last one with the total time.
    assert bar_steps(text) == [4, 8, 12, 16, 20, 24, 28, 32, 36, 40, 40]
    assert text.splitlines()[-1].startswith("40/40 [" + "=" * 24 + "] 100%")
    assert sum(line.startswith("step ") and "val_loss" in line for line in text.splitlines()) == 4


def test_target_defaults_to_epochs_times_steps():
    x, y = make_data()
    stream = io.StringIO()
    make_model().fit(x, y, batch_size=BATCH, epochs=2, verbose=0,
                     callbacks=[Progress(every_steps=8, stream=stream)])
    assert bar_steps(stream.getvalue())[-1] == 16
    assert "16/16" in stream.getvalue()


def test_continued_run_starts_where_it_stopped():
    x, y = make_data()
    model = make_model(steps_per_execution=5)
    fit(model, (x, y), steps=20, batch_size=BATCH, verbose=0)
    stream = io.StringIO()
    fit(model, (x, y), steps=60, batch_size=BATCH, eval_every_steps=20, verbose=0,
        execution=Execution(steps_per_execution=5),
        callbacks=[Progress(60, every_steps=10, stream=stream)])
    steps = bar_steps(stream.getvalue())
    assert steps[0] == 30 and steps[-1] == 60
    assert "60/60" in stream.getvalue()


def test_fit_shows_one_bar_and_no_keras_epoch_bar(capsys):
    x, y = make_data()
    fit(make_model(), (x, y), steps=30, batch_size=BATCH, eval_data=(x, y),
        eval_every_steps=10, verbose=1)
    out = capsys.readouterr().out
    assert "Epoch" not in out
    assert bar_steps(out)[-1] == 30
    assert all(line.split("/")[1].startswith("30 ") for line in out.splitlines() if "[" in line)
    assert [line.split(":")[0] for line in out.splitlines() if line.startswith("step ")] == [
        "step 10", "step 20", "step 30"]


def test_terminal_redraws_in_place():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    x, y = make_data()
    stream = Terminal()
    make_model().fit(x, y, batch_size=BATCH, epochs=1, verbose=0,
                     callbacks=[Progress(steps=8, every_steps=2, stream=stream)])
    text = stream.getvalue()
    assert text.count("\r") == 5  # steps 2, 4, 6, 8 and the final draw
    assert text.endswith("\n")


def test_silent_fit_prints_nothing(capsys):
    x, y = make_data()
    fit(make_model(), (x, y), steps=10, batch_size=BATCH, verbose=0)
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("every_steps", [0, -1, 2.5])
def test_every_steps_is_validated(every_steps):
    with pytest.raises(ValueError, match="every_steps"):
        Progress(every_steps=every_steps)

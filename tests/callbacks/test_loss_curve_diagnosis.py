"""LossCurveDiagnosis in real `model.fit` / `toolkit.fit` runs, and its rules on real curves.

`data/loss_curves.json` holds the curves of this project's recipes at their default learning
rate, 1000x below and 100x above, as the callback recorded them in real runs
(`benchmarks/calibrate_loss_curves.py` writes it); the rules must keep judging them as the
issue asks.
"""

import json
import os
import warnings

import keras
import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.util import tensor_util

import toolkit
from toolkit.callbacks import LossCurveDiagnosis, diagnose_curve
from toolkit.callbacks.loss_curve_diagnosis import TEXT_DIR

CURVES = os.path.join(os.path.dirname(__file__), "data", "loss_curves.json")


def _load_curves():
    with open(CURVES) as file:
        return json.load(file)


@pytest.mark.parametrize("name", sorted(_load_curves()))
def test_recipe_curves_get_the_expected_codes(name):
    curve = _load_curves()[name]
    codes = [f.code for f in diagnose_curve(curve["steps"], curve["losses"],
                                            curve["eval_steps"], curve["eval_losses"])]
    expected = curve["expected"]
    assert any(code in codes for code in expected), (name, codes)
    if "healthy" not in expected:
        assert "healthy" not in codes, (name, codes)


def test_synthetic_shapes():
    steps = np.arange(0, 1001, 20)
    fast = 2.3 / (1 + steps / 20)
    assert [f.code for f in diagnose_curve(steps, fast)] == ["healthy"]
    linear = 2.3 - 0.0005 * steps  # 22% over the run, steadily
    assert [f.code for f in diagnose_curve(steps, linear)] == ["learning-rate-too-low"]
    rising = np.concatenate([fast[:20], fast[19] + 0.004 * (steps[20:] - steps[19])])
    assert [f.code for f in diagnose_curve(steps, rising)] == ["learning-rate-too-high"]
    spike = fast.copy()
    spike[3] = 50.0
    assert diagnose_curve(steps, spike)[0].code == "learning-rate-too-high"
    worse = 2.3 + 0.002 * steps
    assert [f.code for f in diagnose_curve(steps, worse)] == ["diverged"]
    floor = 0.5 + 1.8 / (1 + steps / 5)
    assert [f.code for f in diagnose_curve(steps, floor)] == ["healthy", "plateau"]
    nan = fast.copy()
    nan[30] = np.nan
    (finding,) = diagnose_curve(steps, nan)
    assert (finding.code, finding.step) == ("diverged", 600)
    assert diagnose_curve(steps[:4], fast[:4]) == []  # too few points to judge
    assert diagnose_curve(np.arange(40), np.linspace(2, 1, 40)) == []  # too few steps


def test_evaluation_rules_read_a_persistent_rise_and_a_gap():
    steps = np.arange(0, 1001, 20)
    fast = 2.3 / (1 + steps / 20)  # ends at 0.045
    eval_steps = [200, 400, 600, 800, 1000]
    rising = [0.30, 0.25, 0.29, 0.33, 0.38]
    codes = [f.code for f in diagnose_curve(steps, fast, eval_steps, rising)]
    assert codes == ["overfitting"]
    wobbling = [0.30, 0.25, 0.33, 0.25, 0.33]  # back to its best: noise, not a trend
    assert [f.code for f in diagnose_curve(steps, fast, eval_steps, wobbling)] == ["healthy"]
    gap = [f for f in diagnose_curve(steps, fast, eval_steps, [2.0] * 5)]
    assert [f.code for f in gap] == ["generalization-gap"]
    assert gap[0].evidence["ratio"] > 10 and gap[0].step == 1000
    assert "memorized" in gap[0].message


def test_mismatched_points_are_a_clear_error():
    with pytest.raises(ValueError, match="same length.*3 steps and 2 losses"):
        diagnose_curve([1, 2, 3], [1.0, 2.0])


def _classifier(learning_rate, seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(32, activation="relu"),
                              keras.layers.Dense(3)])
    model.compile(keras.optimizers.Adam(learning_rate),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def _data(n=512):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 8)).astype("float32")
    y = (x[:, 0] > 0).astype("int32") + (x[:, 1] > 0.5).astype("int32")
    return x, y


def test_plain_fit_good_and_too_high_learning_rates():
    x, y = _data()
    good = LossCurveDiagnosis(every_steps=16, warn=False)
    _classifier(3e-2).fit(x, y, batch_size=32, epochs=12, verbose=0, callbacks=[good])
    assert [f.code for f in good.findings] == ["healthy"], [f.line() for f in good.findings]
    # The first windows are 1, 2, 4, ... steps long: the curve's start is seen.
    assert good.get_state()["steps"][:5] == [1, 2, 4, 8, 16]
    high = LossCurveDiagnosis(every_steps=16, initial_batch=(x[:32], y[:32]))
    with pytest.warns(UserWarning, match="LossCurveDiagnosis: (learning-rate-too-high|diverged)"):
        _classifier(30.0).fit(x, y, batch_size=32, epochs=12, verbose=0, callbacks=[high])
    assert high.findings[0].code in ("learning-rate-too-high", "diverged")
    assert high.get_state()["steps"][0] == 0  # the initial batch's loss, before any update


def test_initial_batch_leaves_batch_norm_statistics_and_weights_alone():
    x, y = _data(64)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(8),
                              keras.layers.BatchNormalization(), keras.layers.Dense(3)])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.build((None, 8))
    before = [np.array(v) for v in model.variables]
    diagnosis = LossCurveDiagnosis(every_steps=4, initial_batch=(x * 10 + 3, y), warn=False)
    diagnosis.set_model(model)
    diagnosis.on_train_begin()
    assert diagnosis.get_state()["steps"] == [0]
    for old, new in zip(before, model.variables):
        np.testing.assert_array_equal(old, np.array(new))


def test_toolkit_fit_installs_it_writes_tensorboard_text_and_resumes_its_state(tmp_path):
    x, y = _data()
    data = toolkit.data.endless((x, y), 32, seed=0)
    run_dir = str(tmp_path / "run")
    model = _classifier(3e-2)
    mine = LossCurveDiagnosis(run_dir, every_steps=10, warn=False)
    toolkit.fit(model, data, steps=100, eval_data=(x[:128], y[:128]), eval_every_steps=50,
                run_dir=run_dir, callbacks=[mine], verbose=0)
    state = mine.get_state()
    assert state["steps"][0] == 0  # `fit` gave it the run's first batch
    assert state["eval_steps"] == [50, 100]
    # Continue the same run with a new callback: it gets the first 100 steps' curve back.
    resumed = LossCurveDiagnosis(run_dir, every_steps=10, warn=False)
    toolkit.fit(model, data, steps=150, eval_data=(x[:128], y[:128]), eval_every_steps=50,
                run_dir=run_dir, callbacks=[resumed], verbose=0)
    after = resumed.get_state()
    assert after["steps"][:len(state["steps"])] == state["steps"]
    assert after["eval_steps"] == [50, 100, 150]
    accumulator = EventAccumulator(os.path.join(run_dir, TEXT_DIR),
                                   size_guidance={"tensors": 0})
    accumulator.Reload()
    texts = [tensor_util.make_ndarray(e.tensor_proto).item().decode()
             for e in accumulator.Tensors("diagnosis/text_summary")]
    assert texts and texts[0].startswith("**healthy**"), texts

    # Without a LossCurveDiagnosis of the user's, `fit(run_dir=...)` installs one.
    other = str(tmp_path / "default")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a healthy run warns about nothing
        toolkit.fit(_classifier(3e-2), data, steps=60, eval_data=(x[:128], y[:128]),
                    eval_every_steps=30, run_dir=other, verbose=0)
    assert os.listdir(os.path.join(other, TEXT_DIR))

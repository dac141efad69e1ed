"""ModelTuner: the step-budget Hyperband for a user's own build(hp) and keras_tuner.HyperModel."""

import keras
import keras_tuner
import numpy as np
import pytest

import toolkit
from toolkit.recipe.schema import TuneConfig
from toolkit.report import read_run
from toolkit.tune import ModelTuner

RNG = np.random.default_rng(0)
X = RNG.normal(size=(512, 8)).astype("float32")
Y = (X[:, 0] + X[:, 1] > 0).astype("int32")
VALIDATION = (X[:128], Y[:128])
TUNE = TuneConfig(tuner="hyperband", max_steps=9, min_steps=3, factor=3, seed=2)


def build(hp):
    model = keras.Sequential([keras.Input((8,)),
                              keras.layers.Dense(hp.Choice("units", [4, 16]), "relu"),
                              keras.layers.Dense(2)])
    model.compile(keras.optimizers.Adam(hp.Float("learning_rate", 1e-3, 3e-2, sampling="log")),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    return model


class HyperMLP(keras_tuner.HyperModel):
    def build(self, hp):
        return build(hp)


@pytest.mark.parametrize("hypermodel", [build, HyperMLP()], ids=["function", "HyperModel"])
def test_promoted_trials_continue_and_match_an_unbroken_run(tmp_path, hypermodel):
    tuner = ModelTuner(hypermodel, TUNE, directory=tmp_path / "search", verbose=0)
    tuner.search((X, Y), batch_size=32, validation_data=VALIDATION, eval_every_steps=3)
    trials = [t for t in tuner.oracle.trials.values() if t.status == "COMPLETED"]
    promoted = [t for t in trials if "tuner/trial_id" in t.hyperparameters.values]
    assert promoted and len(trials) > len(promoted)
    child = max(promoted, key=lambda t: t.hyperparameters.values["tuner/epochs"])
    values = child.hyperparameters.values
    parent_dir = tuner.trial_dir(values["tuner/trial_id"])
    child_steps = tuner.trial_steps(values)
    parent_loss = read_run(parent_dir).series("loss")
    child_loss = read_run(tuner.trial_dir(child.trial_id)).series("loss")
    # The child's curve is its parent's, then continues from the parent's last step.
    last = parent_loss.steps.max()
    np.testing.assert_array_equal(child_loss.values[child_loss.steps <= last],
                                  parent_loss.values)
    assert child_loss.steps.max() == child_steps > last
    # And it equals one unbroken run of its hyperparameters to its budget (Adam's state kept).
    keras.utils.set_random_seed(0)
    model = build(keras_tuner.HyperParameters.from_config(
        child.hyperparameters.get_config()))
    history = toolkit.fit(model, (X, Y), steps=child_steps, batch_size=32,
                          eval_data=VALIDATION, eval_every_steps=3,
                          run_dir=str(tmp_path / "unbroken"), verbose=0)
    assert child.metrics.get_last_value("val_loss") == history.final()["val_loss"]


def test_model_tuner_needs_a_step_budget(tmp_path):
    with pytest.raises(ValueError, match="max_steps"):
        ModelTuner(build, TuneConfig(), directory=tmp_path)

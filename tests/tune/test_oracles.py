"""SearchResume's repairs, on KerasTuner's own oracles and files, against plain KerasTuner."""

import json
import os

import keras_tuner
import pytest

from toolkit.errors import RecipeError
from toolkit.recipe.schema import SearchDimension, TuneConfig
from toolkit.tune.oracles import (
    ResumableRandomOracle,
    hyperband_budgets,
    make_oracle,
    objective_direction,
)
from toolkit.tune.space import declare_space

SPACE = (SearchDimension("optimizer.learning_rate", min_value=1e-4, max_value=1e-2),)


def _oracle(cls, directory):
    oracle = cls(objective=keras_tuner.Objective("val_accuracy", "max"), max_trials=5, seed=3,
                 hyperparameters=declare_space(SPACE))
    oracle._set_project_dir(str(directory), "search")
    return oracle


def _reloaded(cls, directory):
    oracle = _oracle(cls, directory)
    oracle.reload()
    return oracle


@pytest.mark.parametrize("cls, runs_again", [
    (keras_tuner.oracles.RandomSearchOracle, True),  # KerasTuner's own reload
    (ResumableRandomOracle, False),
])
def test_a_trial_that_ended_is_not_run_again_after_a_kill(tmp_path, cls, runs_again):
    oracle = _oracle(cls, tmp_path)
    trial = oracle.create_trial("tuner0")
    oracle.update_trial(trial.trial_id, {"val_accuracy": 0.9})
    trial.status = "COMPLETED"
    oracle.end_trial(trial)
    # end_trial saved oracle.json before dropping the trial from the running ones; a kill
    # here (before the tuner's next save) leaves it listed as running.
    assert json.loads(open(oracle._get_oracle_fname()).read())["ongoing_trials"]
    again = _reloaded(cls, tmp_path).create_trial("tuner0")
    assert (again.trial_id == trial.trial_id) is runs_again


def test_a_trial_created_but_never_recorded_is_created_again_the_same(tmp_path):
    oracle = _oracle(ResumableRandomOracle, tmp_path)
    first = oracle.create_trial("tuner0")
    state = open(oracle._get_oracle_fname()).read()
    second = oracle.create_trial("tuner1")
    # A kill between create_trial's two writes: trial.json of the second, not oracle.json.
    with open(oracle._get_oracle_fname(), "w") as file:
        file.write(state)
    reloaded = _reloaded(ResumableRandomOracle, tmp_path)
    assert sorted(reloaded.trials) == [first.trial_id]
    retried = reloaded.create_trial("tuner0")  # the interrupted first trial, queued again
    again = reloaded.create_trial("tuner1")
    assert retried.trial_id == first.trial_id
    assert again.trial_id == second.trial_id
    assert again.hyperparameters.values == second.hyperparameters.values


def test_plain_keras_tuner_keeps_the_unrecorded_trial_and_skips_its_id(tmp_path):
    oracle = _oracle(keras_tuner.oracles.RandomSearchOracle, tmp_path)
    oracle.create_trial("tuner0")
    state = open(oracle._get_oracle_fname()).read()
    lost = oracle.create_trial("tuner1")
    with open(oracle._get_oracle_fname(), "w") as file:
        file.write(state)
    reloaded = _reloaded(keras_tuner.oracles.RandomSearchOracle, tmp_path)
    reloaded.create_trial("tuner0")
    # The unrecorded trial stays RUNNING forever and the next trial takes a new id.
    assert reloaded.create_trial("tuner1").trial_id != lost.trial_id
    assert reloaded.trials[lost.trial_id].status == "RUNNING"


def test_state_files_are_replaced_whole(tmp_path):
    oracle = _oracle(ResumableRandomOracle, tmp_path)
    trial = oracle.create_trial("tuner0")
    folder = os.path.dirname(oracle._get_oracle_fname())
    # Written through toolkit.atomic_write: no temporary file is left beside them.
    names = sorted(os.listdir(folder))
    assert names == ["oracle.json", f"trial_{trial.trial_id}"]
    assert json.loads(open(os.path.join(folder, f"trial_{trial.trial_id}", "trial.json")).read())


def test_objectives_budgets_and_errors():
    assert objective_direction("val_loss") == "min"
    assert objective_direction("val_accuracy") == "max"
    assert objective_direction("val_accuracy", "min") == "min"
    assert hyperband_budgets(2700, 0, 3) == (300, 9)
    assert hyperband_budgets(1000, 100, 3) == (100, 10)
    with pytest.raises(RecipeError, match="must be below"):
        hyperband_budgets(100, 100, 3)
    hp = declare_space(SPACE)
    with pytest.raises(RecipeError, match="validation metric"):
        make_oracle(TuneConfig(objective="accuracy"), hp)
    assert make_oracle(TuneConfig(tuner="random"), hp).max_trials == 10
    assert make_oracle(TuneConfig(tuner="bayesian", max_trials=4), hp).max_trials == 4
    assert make_oracle(TuneConfig(max_steps=900), hp).max_trials is None

"""`toolkit tune` end to end on a tiny Hyperband search (6 trials of 10 and 30 steps)."""

import json
from pathlib import Path

import numpy as np
import pytest

from toolkit.cli import main
from toolkit.errors import RecipeError
from toolkit.recipe.load import load_recipe
from toolkit.recipe.run import run_recipe
from toolkit.report import read_hparams, read_run
from toolkit.tune import search_recipe
from toolkit.tune.recipe_tuner import RecipeTuner

TINY = Path(__file__).with_name("tiny_search.toml")


@pytest.fixture(scope="module")
def search(tmp_path_factory):
    search_dir = tmp_path_factory.mktemp("search")
    return search_recipe(load_recipe(TINY), search_dir, verbose=0)


def test_hyperband_runs_its_brackets_with_step_budgets(search):
    # max 30 / min 10 steps, factor 3: bracket 1 runs 3 trials of 10 steps and promotes one
    # to 30; bracket 0 runs 2 trials of 30 steps.
    assert len(search.trials) == 6
    assert sorted(t.steps for t in search.trials) == [10, 10, 10, 30, 30, 30]
    promoted = [t for t in search.trials if t.parent is not None]
    assert len(promoted) == 1
    # The promoted trial adds 20 steps to its parent's 10: 3*10 + 20 + 2*30.
    assert search.optimizer_steps == 110
    document = json.loads((search.search_dir / "search.json").read_text())
    assert [t["trial_id"] for t in document["trials"]] == [t.trial_id for t in search.trials]
    scores = [t.validation["val_accuracy"] for t in search.trials]
    assert scores == sorted(scores, reverse=True)


def test_a_promoted_trial_continues_its_parent_bit_for_bit(search, tmp_path):
    child = next(t for t in search.trials if t.parent is not None)
    parent = next(t for t in search.trials if t.trial_id == child.parent)
    assert child.values == parent.values and parent.steps == 10 and child.steps == 30
    # Its curves continue the parent's: the same points up to step 10, then new ones.
    child_loss = read_run(child.run_dir).series("loss")
    parent_loss = read_run(parent.run_dir).series("loss")
    assert parent_loss.steps.max() == 10 and child_loss.steps.max() == 30
    np.testing.assert_array_equal(child_loss.values[child_loss.steps <= 10], parent_loss.values)
    # It equals one uninterrupted 30-step run of the same values: weights, Adam's moments and
    # step count, the data position and the clock all came from the parent's last checkpoint.
    # (Plain KerasTuner reloads the weights into a fresh optimizer, which cannot match.)
    tuner_recipe = RecipeTuner(load_recipe(TINY), _oracle(), directory=tmp_path / "unused",
                               verbose=0).trial_recipe
    # The values as KerasTuner holds them (lists as their TOML text), as the tuner gets them.
    straight = run_recipe(tuner_recipe(child.values, 30), tmp_path / "straight", verbose=0,
                          plots=False)
    assert straight.summary["validation"] == {
        key[len("val_"):]: value for key, value in child.validation.items()}
    assert straight.summary["eval"] == {
        key[len("test_"):]: value for key, value in child.test.items()}


def _oracle():
    from toolkit.tune import declare_space, make_oracle

    recipe = load_recipe(TINY)
    return make_oracle(recipe.tune, declare_space(recipe.tune.space))


def test_trials_select_on_the_validation_split_and_report_the_test_split(search):
    for trial in search.trials:
        summary = json.loads((trial.run_dir / "summary.json").read_text())
        assert summary["validation_examples"] == 100
        assert set(summary["validation"]) == {"accuracy", "loss"}
        assert set(summary["eval"]) == {"accuracy", "loss"}
        # During training the trial evaluated on the validation split, not on the test split.
        validation = read_run(trial.run_dir).series("loss", "validation")
        assert validation.values[-1] == pytest.approx(summary["validation"]["loss"], rel=1e-5)


def test_the_hparams_dashboard_shows_every_trial_with_its_results(search):
    view = read_hparams(search.search_dir)
    assert sorted(view.hparams) == ["model.hidden_units", "optimizer.learning_rate"]
    assert sorted(view.metrics) == ["final/test_accuracy", "final/test_loss",
                                    "final/validation_accuracy", "final/validation_loss"]
    sessions = {Path(s["name"]).name: s for s in view.sessions}
    assert sorted(sessions) == sorted(f"trial_{t.trial_id}" for t in search.trials)
    for trial in search.trials:
        session = sessions[f"trial_{trial.trial_id}"]
        assert session["hparams"]["model.hidden_units"] == trial.values["model.hidden_units"]
        assert session["hparams"]["optimizer.learning_rate"] == pytest.approx(
            trial.values["optimizer.learning_rate"])
        assert session["metrics"]["final/validation_accuracy"] == pytest.approx(
            trial.validation["val_accuracy"])
        assert session["metrics"]["final/test_loss"] == pytest.approx(trial.test["test_loss"])


def test_a_finished_search_reruns_without_training(search, capsys):
    again = search_recipe(load_recipe(TINY), search.search_dir, verbose=1)
    assert [t.trial_id for t in again.trials] == [t.trial_id for t in search.trials]
    assert "Trial" not in capsys.readouterr().out


def test_keras_tuner_itself_reloads_the_search(search):
    import keras_tuner

    from toolkit.tune import declare_space

    recipe = load_recipe(TINY)
    oracle = keras_tuner.oracles.HyperbandOracle(
        objective=keras_tuner.Objective("val_accuracy", "max"), max_epochs=3,
        hyperparameters=declare_space(recipe.tune.space))
    tuner = keras_tuner.engine.base_tuner.BaseTuner(
        oracle, directory=str(search.search_dir.parent), project_name=search.search_dir.name)
    best = tuner.oracle.get_best_trials(1)[0]
    assert best.trial_id == search.best.trial_id
    assert best.score == pytest.approx(search.best.validation["val_accuracy"])


def test_searches_refuse_a_recipe_without_validation_split(tmp_path):
    recipe = load_recipe(TINY, ["data.validation_examples=0"])
    with pytest.raises(RecipeError, match="data.validation_examples"):
        search_recipe(recipe, tmp_path, verbose=0)


def test_cli_errors_exit_2_with_one_line(tmp_path, capsys):
    assert main(["tune", str(TINY), "--run-dir", str(tmp_path / "a"),
                 "--set", "tune.objective=accuracy"]) == 2
    assert "must be a validation metric" in capsys.readouterr().err
    assert main(["tune", "digits_mlp", "--run-dir", str(tmp_path / "b"),
                 "--set", "data.validation_examples=100"]) == 2
    assert "no [tune.space] entries" in capsys.readouterr().err
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "notes.txt").write_text("mine")
    assert main(["tune", str(TINY), "--run-dir", str(tmp_path / "c")]) == 2
    assert "not a toolkit search" in capsys.readouterr().err


def test_a_diverging_trial_fails_and_the_search_goes_on(tmp_path, capsys):
    import dataclasses
    import warnings

    from toolkit.recipe.space_tables import parse_space

    recipe = load_recipe(TINY, ["tune.tuner=random", "tune.max_trials=2", "train.steps=20",
                                "tune.max_steps=20", "optimizer.name=sgd"])
    space = parse_space({"optimizer.learning_rate": {"choices": [3e-3, 1e9]}}, "", "")
    recipe = dataclasses.replace(recipe, tune=dataclasses.replace(recipe.tune, space=space))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NanGuard's rollback warnings
        result = search_recipe(recipe, tmp_path, verbose=1)
    diverged = [t for t in ("0", "1") if t not in {trial.trial_id for trial in result.trials}]
    assert len(result.trials) == 1 and result.failed == diverged
    assert result.trials[0].values["optimizer.learning_rate"] == 3e-3
    assert json.loads((tmp_path / "search.json").read_text())["failed_trials"] == diverged
    output = capsys.readouterr()
    assert "failed: Training diverged" in output.out and "Traceback" not in output.err


def test_raising_max_trials_extends_a_random_search(tmp_path):
    import dataclasses

    from toolkit.recipe.space_tables import parse_space

    def recipe(trials):
        base = load_recipe(TINY, ["tune.tuner=random", f"tune.max_trials={trials}",
                                  "train.steps=10", "tune.max_steps=10",
                                  "train.deterministic=false"])
        space = parse_space({"optimizer.learning_rate": {"min": 1e-3, "max": 1e-2}}, "", "")
        return dataclasses.replace(base, tune=dataclasses.replace(base.tune, space=space))

    first = search_recipe(recipe(2), tmp_path, verbose=0)
    more = search_recipe(recipe(3), tmp_path, verbose=0)
    assert len(first.trials) == 2 and len(more.trials) == 3
    assert {t.trial_id for t in first.trials} < {t.trial_id for t in more.trials}
    with pytest.raises(RecipeError, match="only tune.max_trials may change"):
        search_recipe(load_recipe(TINY, ["tune.factor=2"]), tmp_path, verbose=0)

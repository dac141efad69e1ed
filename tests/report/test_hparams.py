"""HParams experiments for runs and searches, read back through TensorBoard's own plugin."""

import os

import pytest
from tensorboard.plugins.hparams import api as hparams_api

from toolkit.callbacks.scalar_writer import ScalarWriter
from toolkit.errors import DataError
from toolkit.recipe import load_recipe
from toolkit.recipe.run import run_recipe, smoke_recipe
from toolkit.recipe.schema import Recipe
from toolkit.report.hparams import (
    recipe_hparams, write_experiment, write_final_metrics, write_run_experiment)
from toolkit.report.hparams_view import read_hparams


def write_session(directory, values):
    """The session-start summary `toolkit.callbacks.Axes(hparams=values)` writes."""
    writer = ScalarWriter(str(directory))
    writer.write_summary(hparams_api.hparams_pb(values), step=0)
    writer.close()


def write_scalars(directory, values, step):
    writer = ScalarWriter(str(directory))
    writer.write(values, step)
    writer.close()


def event_files(directory):
    return sorted(p.name for p in directory.iterdir() if "tfevents" in p.name)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    recipe = smoke_recipe(load_recipe("digits_mlp", ["train.steps=4", "train.deterministic=false"]))
    run_dir = tmp_path_factory.mktemp("runs") / "digits"
    result = run_recipe(recipe, run_dir, verbose=0)
    return recipe, result


def test_single_run_shows_short_hparams_and_its_final_metrics(tiny_run):
    recipe, result = tiny_run
    run_dir, summary = result.run_dir, result.summary
    final = {f"test_{name}": value for name, value in summary["eval"].items()}
    # What run_recipe does after its final evaluation (idempotent if it already did).
    write_run_experiment(run_dir, recipe, final, summary["steps"])

    view = read_hparams(run_dir)
    expected = recipe_hparams(recipe)
    assert len(view.hparams) <= 12
    assert sorted(view.hparams) == sorted(expected)
    assert "data.max_train_examples" in view.hparams  # smoke_recipe changed it
    assert "train.deterministic" not in view.hparams  # bookkeeping, never a column
    assert view.domains["optimizer.learning_rate"] == [0.001]
    assert sorted(view.metrics) == ["final/test_accuracy", "final/test_loss"]
    [session] = view.sessions
    assert session["name"] == "."  # the logdir `toolkit train` prints is the run directory
    assert sorted(session["hparams"]) == sorted(expected)  # what Axes wrote for the run
    assert session["hparams"]["recipe"] == "digits_mlp"
    assert session["hparams"]["data.batch_size"] == 64
    assert session["metrics"] == pytest.approx(
        {"final/test_loss": final["test_loss"], "final/test_accuracy": final["test_accuracy"]},
        rel=1e-6)

    # The same columns and values from a parent logdir (`tensorboard --logdir runs`).
    [from_parent] = read_hparams(run_dir.parent).sessions
    assert from_parent["name"] == "digits"
    assert from_parent["metrics"] == session["metrics"]


def test_search_directory_shows_each_trial_with_only_declared_columns(tmp_path):
    metrics = [("", "final/objective", "Objective"), "final/validation_accuracy"]
    write_experiment(tmp_path, {"optimizer.learning_rate": (1e-4, 1e-2),
                                "model.filters": ["[32]", "[64]"]}, metrics)
    trials = {"trial_0": (1e-3, "[32]", 0.91), "trial_1": (3e-3, "[64]", 0.87),
              "trial_2": (5e-4, "[32]", 0.93)}
    for trial, (learning_rate, filters, accuracy) in trials.items():
        # The extra hyperparameter is not declared: the dashboard leaves it out.
        write_session(tmp_path / trial, {"optimizer.learning_rate": learning_rate,
                                         "model.filters": filters, "train.seed": 0})
        write_scalars(tmp_path / trial / "validation", {"accuracy": accuracy, "loss": 0.3}, 20)
        write_final_metrics(tmp_path / trial, {"objective": 1 - accuracy,
                                               "validation_accuracy": accuracy}, step=20)

    view = read_hparams(tmp_path)
    assert sorted(view.hparams) == ["model.filters", "optimizer.learning_rate"]
    assert view.domains == {"model.filters": ["[32]", "[64]"],
                            "optimizer.learning_rate": (1e-4, 1e-2)}
    assert view.metrics == ["final/objective", "final/validation_accuracy"]
    assert [s["name"] for s in view.sessions] == list(trials)
    for session, (learning_rate, filters, accuracy) in zip(view.sessions, trials.values()):
        assert session["hparams"] == {"optimizer.learning_rate": learning_rate,
                                      "model.filters": filters}
        assert session["metrics"] == pytest.approx(
            {"final/objective": 1 - accuracy, "final/validation_accuracy": accuracy}, rel=1e-6)


def test_validation_group_shows_values_when_sessions_are_subdirectories(tmp_path):
    write_experiment(tmp_path, {"train.seed": [0, 1]}, [("validation", "accuracy")])
    for seed in (0, 1):
        write_session(tmp_path / f"trial_{seed}", {"train.seed": seed})
        write_scalars(tmp_path / f"trial_{seed}" / "validation", {"accuracy": 0.5 + seed / 4}, 10)
    view = read_hparams(tmp_path)
    assert view.metrics == ["validation/accuracy"]
    assert [s["metrics"] for s in view.sessions] == [{"validation/accuracy": 0.5},
                                                      {"validation/accuracy": 0.75}]


def test_tensorboard_finds_no_metric_below_a_session_at_the_logdir_root(tmp_path):
    # Pins TensorBoard 2.21's lookup `os.path.join(session, group)`: the root session is "."
    # and "./validation" names no run. This is why final metrics go into the session's own
    # directory (hparams.py); if this test fails, TensorBoard changed that lookup.
    write_experiment(tmp_path, {"train.seed": [0]}, [("validation", "accuracy"), "final/x"])
    write_session(tmp_path, {"train.seed": 0})
    write_scalars(tmp_path / "validation", {"accuracy": 0.5}, 10)
    write_final_metrics(tmp_path, {"x": 2.0}, step=10)
    [session] = read_hparams(tmp_path).sessions
    assert session["name"] == "."
    assert session["metrics"] == {"final/x": 2.0}


def test_without_an_experiment_every_scalar_tag_is_a_metric(tmp_path):
    # Pins the plugin's fallback that makes declaring an experiment worth it.
    write_session(tmp_path / "run", {"train.seed": 0})
    write_scalars(tmp_path / "run" / "train", {"loss": 1.0, "steps_per_second": 9.0}, 5)
    write_scalars(tmp_path / "run" / "train", {"by_examples/loss": 1.0}, 40)
    view = read_hparams(tmp_path)
    assert view.hparams == ["train.seed"]
    assert sorted(view.metrics) == ["train/by_examples/loss", "train/loss",
                                    "train/steps_per_second"]


def test_tensorboard_keeps_the_first_experiment_of_a_run(tmp_path):
    # Pins why write_experiment replaces its file instead of appending a second summary.
    writer = ScalarWriter(str(tmp_path))
    for values in ([0], [0, 1]):
        writer.write_summary(hparams_api.hparams_config_pb(
            [hparams_api.HParam("train.seed", hparams_api.Discrete(values))], []), step=0)
    writer.close()
    assert read_hparams(tmp_path).domains == {"train.seed": [0.0]}


def test_writing_again_replaces_the_experiment_and_the_step(tmp_path):
    write_experiment(tmp_path, {"train.seed": [0]}, ["final/objective"])
    write_experiment(tmp_path, {"train.seed": [0, 1]}, ["final/objective", "final/loss"])
    write_session(tmp_path / "trial", {"train.seed": 1})
    write_final_metrics(tmp_path / "trial", {"objective": 0.5}, step=10)
    write_final_metrics(tmp_path / "trial", {"objective": 0.4, "loss": 2.0}, step=10)

    experiments = [n for n in event_files(tmp_path) if n.endswith("hparams_experiment.toolkit")]
    assert len(experiments) == 1
    assert len(event_files(tmp_path / "trial")) == 2  # the session, and step 10's results
    view = read_hparams(tmp_path)
    assert view.domains == {"train.seed": [0.0, 1.0]}
    assert view.metrics == ["final/objective", "final/loss"]
    assert view.sessions[0]["metrics"] == {"final/objective": pytest.approx(0.4),
                                           "final/loss": 2.0}

    # A continued trial adds its later step; the dashboard shows the latest.
    write_final_metrics(tmp_path / "trial", {"objective": 0.3}, step=30)
    assert read_hparams(tmp_path).sessions[0]["metrics"]["final/objective"] == pytest.approx(0.3)


def test_recipe_hparams_lists_core_keys_and_changes():
    custom = Recipe(name="mine")  # not shipped: compared with the schema's defaults
    assert list(recipe_hparams(custom)) == [
        "recipe", "data.name", "data.batch_size", "model.name", "optimizer.name",
        "optimizer.learning_rate", "train.steps", "train.seed"]
    changed = load_recipe("mnist1d_cnn", [
        "model.filters=[16]", "train.eval_every_steps=50", "data.check=warn"])
    extra = list(recipe_hparams(changed))[8:]
    assert extra == ["model.filters"]
    assert recipe_hparams(changed)["model.filters"] == "[16]"
    two = recipe_hparams(load_recipe("two_tasks"))
    assert "data.name" not in two and two["data.sources"].startswith("[digit: mnist1d")


@pytest.mark.parametrize("domain, error, match", [
    ((1e-2, 1e-4), ValueError, r"low <= high. Received: \(0.01, 0.0001\)"),
    ((1, 2, 3), ValueError, "must be `\\(low, high\\)`"),
    ([], ValueError, "non-empty list"),
    ([1, "a"], ValueError, "all of one kind"),
    ([[32], [64]], ValueError, "Write lists and other values as strings"),
    ({"a": 1}, TypeError, "list of values or a \\(low, high\\) tuple. Received: \\{'a': 1\\}"),
])
def test_bad_domains_are_refused(tmp_path, domain, error, match):
    with pytest.raises(error, match=match):
        write_experiment(tmp_path, {"x": domain}, ["final/objective"])
    assert not any("tfevents" in p.name for p in tmp_path.iterdir())


def test_bad_metrics_and_logdirs_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"\(group, tag\).*Received: \('final',\)"):
        write_experiment(tmp_path, {"x": [1]}, [("final",)])
    with pytest.raises(ValueError, match="requires real numbers. Received: objective=\\[1, 2\\]"):
        write_final_metrics(tmp_path, {"objective": [1, 2]}, step=1)
    with pytest.raises(ValueError, match="at least one metric"):
        write_final_metrics(tmp_path, {}, step=1)
    with pytest.raises(DataError, match="is not a directory"):
        read_hparams(os.path.join(tmp_path, "missing"))

"""The `[callbacks]` probes of a recipe run reach summary.json, report.md and survive resume."""

import json

import pytest

from toolkit.recipe import load_recipe
from toolkit.recipe.run import run_recipe, smoke_recipe

PROBES = ["callbacks.gradient_noise_every_steps=5", "callbacks.sharpness_every_steps=10",
          "train.deterministic=false"]


def test_probes_are_summarized_and_continue_across_a_resumed_run(tmp_path):
    recipe = smoke_recipe(load_recipe("digits_mlp", PROBES + ["train.steps=10"]))
    run_recipe(recipe, tmp_path, verbose=0, plots=False)
    first = json.loads((tmp_path / "summary.json").read_text())
    assert first["gradient_noise"]["probes"] == 2 and first["sharpness"]["probes"] == 1
    longer = smoke_recipe(load_recipe("digits_mlp", PROBES + ["train.steps=20"]))
    summary = run_recipe(longer, tmp_path, verbose=0, plots=False).summary
    # The probes' history came back from the checkpoint: 4 and 2 probes over 20 steps.
    assert summary["gradient_noise"]["probes"] == 4
    assert summary["gradient_noise"]["batch_size"] == recipe.data.batch_size
    assert "you train at" in summary["gradient_noise"]["summary"]
    sharp = summary["sharpness"]
    assert sharp["probes"] == 2 and sharp["step"] == 20
    assert sharp["threshold"] == pytest.approx(2 / recipe.optimizer.learning_rate)
    report = (tmp_path / "report.md").read_text()
    assert "## Batch size and sharpness" in report and "critical batch size" in report


def test_probes_are_off_by_default(tmp_path):
    recipe = smoke_recipe(load_recipe("digits_mlp", ["train.deterministic=false"]))
    summary = run_recipe(recipe, tmp_path, verbose=0, plots=False).summary
    assert "gradient_noise" not in summary and "sharpness" not in summary


def test_restore_best_ends_on_the_best_evaluation(tmp_path):
    def recipe(steps):
        return smoke_recipe(load_recipe("digits_mlp", [
            "train.deterministic=false", 'callbacks.restore_best="val_accuracy"',
            f"train.steps={steps}", "train.eval_every_steps=5", "optimizer.learning_rate=0.05"]))

    run_recipe(recipe(10), tmp_path, verbose=0, plots=False)
    # Continued: the best weights and value come back from the checkpoint (scalar weights too).
    summary = run_recipe(recipe(20), tmp_path, verbose=0, plots=False).summary
    history = summary["history"]
    best = max(range(len(history["steps"])), key=lambda i: history["val_accuracy"][i])
    assert summary["restored_best"]["step"] == history["steps"][best]
    # Without a validation split the evaluation data is the test split: the final test
    # evaluation is the best evaluation's.
    assert summary["eval"]["accuracy"] == pytest.approx(history["val_accuracy"][best])


def test_restore_best_needs_an_evaluation_metric():
    from toolkit.errors import RecipeError

    with pytest.raises(RecipeError, match="val_<metric>"):
        load_recipe("digits_mlp", ['callbacks.restore_best="accuracy"'])

"""Running recipes: --smoke budgets, run directories, and every shipped recipe end to end."""

import contextlib
import json

import matplotlib.image
import pytest
import tensorflow_datasets as tfds

from toolkit.errors import RecipeError
from toolkit.recipe.load import load_recipe, shipped_recipes
from toolkit.recipe.run import default_run_dir, run_recipe, smoke_recipe
from toolkit.recipe.schema import Recipe


def test_smoke_caps_every_budget_and_keeps_smaller_ones():
    recipe = load_recipe("mnist1d_cnn", ["data.max_eval_examples=50", "train.eval_every_steps=4"])
    small = smoke_recipe(recipe)
    assert (small.train.steps, small.train.eval_every_steps, small.train.log_every_steps) == (
        20, 4, 5)
    assert (small.data.max_train_examples, small.data.max_eval_examples) == (256, 50)
    assert small.model == recipe.model and small.optimizer == recipe.optimizer


def test_default_run_dir_keeps_smoke_runs_apart():
    recipe = Recipe(name="demo")
    assert default_run_dir(recipe).as_posix() == "runs/demo/default"
    assert default_run_dir(recipe, smoke=True).as_posix() == "runs/demo/smoke"


def test_run_dir_that_is_a_file_is_refused(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(RecipeError, match=r"is a file. Pass another --run-dir"):
        run_recipe(Recipe(), target)


@pytest.mark.parametrize("name", shipped_recipes())
def test_every_shipped_recipe_runs_in_smoke_mode(tmp_path, name):
    recipe = smoke_recipe(load_recipe(name, ["train.deterministic=false"]))
    # TFDS recipes need prepared data: here TFDS's own mock data stands in (no network).
    tfds_data = recipe.data.name.startswith("tfds:")
    with tfds.testing.mock_data(num_examples=48) if tfds_data else contextlib.nullcontext():
        result = run_recipe(recipe, tmp_path / "run", verbose=0)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["steps"] == 20 == result.summary["steps"]
    assert summary["examples_seen"] == 20 * recipe.data.batch_size
    expected = {
        "heavy_tailed_regression": {"loss", "mae"},
        "two_tasks": {"loss", "digit_loss", "digit_accuracy", "position_loss", "position_mae"},
    }.get(name, {"loss", "accuracy"})
    assert set(summary["eval"]) == expected
    assert summary["history"]["steps"] == [10, 20]
    assert load_recipe(tmp_path / "run" / "recipe.toml") == recipe
    # Every run directory gets its plots, and they open as images.
    assert "plots/loss.png" in summary["plots"]
    for path in summary["plots"]:
        image = matplotlib.image.imread(tmp_path / "run" / path)
        assert image.ndim == 3 and image.shape[0] > 100 and image.std() > 0
    report = (tmp_path / "run" / "report.md").read_text()
    assert "## Diagnosis" in report and "![loss](plots/loss.png)" in report
    assert isinstance(summary["diagnosis"], list)

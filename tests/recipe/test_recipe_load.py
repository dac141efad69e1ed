"""Loading recipes: files, shipped names, overrides and every user mistake."""

import re
from pathlib import Path

import pytest

from toolkit.errors import RecipeError
from toolkit.recipe.load import (
    load_recipe,
    parse_override,
    recipe_from_dict,
    resolve_recipe,
    shipped_recipes,
)
from toolkit.recipe.schema import Recipe

SHIPPED = ("digits_mlp", "heavy_tailed_regression", "mnist1d_cnn", "mnist1d_mlp")


def _write(tmp_path: Path, text: str, name: str = "mine.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_the_four_recipes_are_shipped_inside_the_package():
    assert set(SHIPPED) <= set(shipped_recipes())
    for name in SHIPPED:
        path = resolve_recipe(name)
        assert path.is_file() and "toolkit" in path.parts and path.name == f"{name}.toml"


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_recipe_loads_and_starts_with_a_measured_header(name):
    recipe = load_recipe(name)
    assert recipe.name == name
    header = resolve_recipe(name).read_text().splitlines()
    assert header[0].startswith("# ")
    comment = "\n".join(line for line in header if line.startswith("#"))
    assert "toolkit train" in comment and "2-core" in comment
    assert re.search(r"Expected: .*\d", comment)  # a measured result, not a placeholder


def test_no_argument_means_the_default_recipe():
    assert resolve_recipe(None).name == "mnist1d_cnn.toml"
    assert load_recipe().name == "mnist1d_cnn"


def test_a_path_is_loaded_and_named_after_its_stem(tmp_path):
    path = _write(tmp_path, "[train]\nsteps = 7\n", "tiny_run.toml")
    recipe = load_recipe(path)
    assert recipe.name == "tiny_run" and recipe.train.steps == 7
    assert recipe.model == Recipe().model  # missing tables take the defaults
    assert load_recipe(_write(tmp_path, 'name = "custom"\n')).name == "custom"


def test_missing_file_is_a_recipe_error_listing_shipped_recipes(tmp_path):
    with pytest.raises(RecipeError, match=r"Cannot find the recipe file '.*nope\.toml'.*mnist1d"):
        load_recipe(tmp_path / "nope.toml")
    with pytest.raises(RecipeError, match=r"shipped recipe 'mnist1d_cnm'.*mnist1d_cnn"):
        load_recipe("mnist1d_cnm")


def test_malformed_toml_reports_line_and_column(tmp_path):
    path = _write(tmp_path, "[train]\nsteps = 10\nseed = = 3\n")
    with pytest.raises(RecipeError, match=r"mine\.toml: malformed TOML: .*line 3, column \d+"):
        load_recipe(path)


def test_unknown_key_lists_the_valid_keys_of_its_table(tmp_path):
    path = _write(tmp_path, "[train]\nstep = 10\n")
    with pytest.raises(RecipeError) as error:
        load_recipe(path)
    message = str(error.value)
    assert "unknown key 'step'" in message and "Did you mean 'steps'?" in message
    assert "steps, eval_every_steps, log_every_steps, seed, deterministic" in message


def test_unknown_table_and_keys(tmp_path):
    with pytest.raises(RecipeError, match=r"unknown top-level key 'trainer'.*Did you mean 'train'"):
        load_recipe(_write(tmp_path, "[trainer]\nsteps = 10\n"))
    with pytest.raises(RecipeError, match=r"\[tune\]: unknown key 'trials'.*Did you mean"):
        load_recipe(_write(tmp_path, "[tune]\ntrials = 10\n"))
    with pytest.raises(RecipeError, match=r"\[callbacks\]: unknown key 'sharpness'"):
        load_recipe(_write(tmp_path, "[callbacks]\nsharpness = 10\n"))
    with pytest.raises(RecipeError, match=r"'train' must be a table"):
        load_recipe(_write(tmp_path, "train = 3\n"))


@pytest.mark.parametrize(
    "line, pattern",
    [
        ('[train]\nsteps = "many"', r"`train.steps` must be an integer. Received: 'many' \(str\)"),
        ("[train]\nsteps = true", r"`train.steps` must be an integer. Received: True \(bool\)"),
        ("[train]\nsteps = 1.5", r"`train.steps` must be an integer. Received: 1.5 \(float\)"),
        ("[train]\ndeterministic = 1", r"`train.deterministic` must be a boolean"),
        ("[data]\nname = 3", r"`data.name` must be a string. Received: 3 \(int\). Quote"),
        ("[model]\nfilters = [32, 1.5]", r"`model.filters` must be a list of positive integers"),
        ("[model]\nfilters = 32", r"`model.filters` must be a list of positive integers"),
        ("[data]\nbatch_size = 0", r"`data.batch_size` must be >= 1. Received: 0"),
        ('[data]\nsampling = "epochs"', r"`data.sampling` must be one of 'iid', 'passes'"),
        ('[model]\ninput_scaling = "log"', r"`model.input_scaling` must be one of 'auto'"),
        ("[optimizer]\nlearning_rate = nan", r"`optimizer.learning_rate` must be finite"),
    ],
)
def test_wrong_type_or_value_names_key_expected_and_received(tmp_path, line, pattern):
    with pytest.raises(RecipeError, match=pattern):
        load_recipe(_write(tmp_path, line + "\n"))


def test_values_are_normalized():
    recipe = recipe_from_dict({"optimizer": {"learning_rate": 1}, "model": {"filters": [8, 16]}})
    assert recipe.optimizer.learning_rate == 1.0 and type(recipe.optimizer.learning_rate) is float
    assert recipe.model.filters == (8, 16)
    hash(recipe)  # frozen and made of tuples: usable as a key


@pytest.mark.parametrize(
    "text, expected",
    [
        ("train.steps=200", ("train.steps", 200)),
        ("optimizer.learning_rate=3e-3", ("optimizer.learning_rate", 0.003)),
        ("model.hidden_units=[64, 64]", ("model.hidden_units", [64, 64])),
        ("train.deterministic=false", ("train.deterministic", False)),
        ("data.name=digits", ("data.name", "digits")),
        ('data.name="digits"', ("data.name", "digits")),
        ("data.name=my.pkg:make", ("data.name", "my.pkg:make")),
        (" train.steps = 5", ("train.steps", 5)),
    ],
)
def test_parse_override_reads_toml_values(text, expected):
    assert parse_override(text) == expected


def test_overrides_apply_in_order_and_are_type_checked():
    recipe = load_recipe("mnist1d_mlp", ["train.steps=10", "train.steps=20", "name=quick",
                                         "model.hidden_units=[8]"])
    assert (recipe.train.steps, recipe.name, recipe.model.hidden_units) == (20, "quick", (8,))


@pytest.mark.parametrize(
    "override, pattern",
    [
        ("foo", r"Bad override 'foo': expected KEY=VALUE"),
        ("=3", r"Bad override '=3'"),
        ("steps=3", r"--set steps=3: the key 'steps' has no table"),
        ("trian.steps=3", r"--set trian.steps=3: unknown table 'trian'.*Did you mean 'train'"),
        ("train.stepz=3",
         r"--set train.stepz=3: \[train\]: unknown key 'stepz'.*Valid keys: steps"),
        ("train.steps=abc", r"--set train.steps=abc: `train.steps` must be an integer. "
                            r"Received: 'abc' \(str\). For example: train.steps=3000"),
        ("train.steps=-1", r"--set train.steps=-1: `train.steps` must be >= 1"),
    ],
)
def test_bad_override_is_a_recipe_error_naming_the_override(override, pattern):
    with pytest.raises(RecipeError, match=pattern):
        load_recipe("mnist1d_cnn", [override])

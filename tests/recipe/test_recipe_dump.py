"""Writing recipes back as TOML: the run directory's recipe.toml reads back identically."""

import dataclasses
import os
import sys

import pytest

from toolkit.recipe.dump import dumps_recipe, format_value, write_recipe
from toolkit.recipe.load import load_recipe, shipped_recipes
from toolkit.recipe.schema import (
    AugmentStep, DataConfig, ModelConfig, OptimizerConfig, Recipe, SourceConfig)

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, packaged as `tomli`.
    import tomli as tomllib


@pytest.mark.parametrize("name", shipped_recipes())
def test_shipped_recipes_round_trip(tmp_path, name):
    recipe = load_recipe(name)
    path = write_recipe(recipe, tmp_path / "recipe.toml", header="Resolved.\nSecond line.")
    assert path.read_text().startswith("# Resolved.\n# Second line.\nname = ")
    assert load_recipe(path) == recipe


def test_awkward_values_round_trip(tmp_path):
    recipe = Recipe(
        name='quote " back \\ slash \n é',
        data=DataConfig(name="pkg.mod:make_data"),
        model=ModelConfig(dense_units=(), hidden_units=(3,)),
        optimizer=OptimizerConfig(learning_rate=1e-05),
    )
    path = write_recipe(recipe, tmp_path / "recipe.toml")
    assert load_recipe(path) == recipe


@pytest.mark.parametrize(
    "value, text",
    [(True, "true"), (3, "3"), (3.0, "3.0"), (0.003, "0.003"), (1e-05, "1e-05"),
     (float("inf"), "inf"), ((), "[]"), ((64, 32), "[64, 32]"), ("a\"b", '"a\\"b"')],
)
def test_format_value(value, text):
    assert format_value(value) == text


def test_format_value_rejects_what_the_schema_cannot_hold():
    with pytest.raises(TypeError, match="Cannot write"):
        format_value({"a": 1})


def test_every_key_is_written_even_defaults():
    text = dumps_recipe(Recipe())
    for table in ("data", "model", "optimizer", "train", "callbacks", "tune"):
        assert f"\n[{table}]\n" in text
    assert "deterministic = true" in text and "sampling = \"iid\"" in text


def test_nested_tables_and_arrays_of_tables_round_trip(tmp_path):
    recipe = load_recipe("mnist1d_cnn", [
        'data.augment=[{name="random_shift", max_shift=3, mode="zeros"}, '
        '{name="gaussian_noise", stddev=0.05}]',
        "data.sources.digit.name=mnist1d", "data.sources.where.name=mnist1d_position",
        "data.sources.where.weight=2", "optimizer.learning_rate=3e-3"])
    path = write_recipe(recipe, tmp_path / "recipe.toml", header="toolkit train x.toml")
    text = path.read_text()
    assert text.startswith("# toolkit train x.toml\nname = ")
    assert "[data.sources.where]\nname = \"mnist1d_position\"\nweight = 2.0\n" in text
    assert "learning_rate = 0.003\n" in text
    assert tomllib.loads(text)["data"]["augment"] == [
        {"name": "random_shift", "max_shift": 3, "mode": "zeros"},
        {"name": "gaussian_noise", "stddev": 0.05}]
    assert load_recipe(path) == recipe


def test_a_long_augment_entry_becomes_an_array_of_tables_and_round_trips(tmp_path):
    # tomli_w writes an inline table over 100 characters as `[[data.augment]]` instead.
    long_mode = "reflect" + " " * 100
    recipe = Recipe(data=DataConfig(augment=(
        AugmentStep("random_shift", (("max_shift", 2), ("mode", long_mode))),)))
    text = dumps_recipe(recipe)
    assert "[[data.augment]]" in text
    assert tomllib.loads(text)["data"]["augment"] == [
        {"name": "random_shift", "max_shift": 2, "mode": long_mode}]


def test_no_sources_writes_no_sources_table():
    text = dumps_recipe(Recipe())
    assert "sources" not in text
    with_one = dumps_recipe(Recipe(data=DataConfig(sources=(SourceConfig("digit", "mnist1d"),))))
    assert "\n[data.sources.digit]\nname = \"mnist1d\"\nweight = 1.0\n" in with_one


def test_write_recipe_is_atomic(tmp_path, monkeypatch):
    target = tmp_path / "recipe.toml"
    write_recipe(Recipe(name="good"), target)

    def broken_replace(source, destination):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_recipe(Recipe(name="bad"), target)
    assert load_recipe(target).name == "good"
    assert sorted(os.listdir(tmp_path)) == ["recipe.toml"]


def test_dataclass_replace_keeps_round_trip(tmp_path):
    recipe = dataclasses.replace(Recipe(), name="x")
    assert load_recipe(write_recipe(recipe, tmp_path / "x.toml")) == recipe

"""Writing recipes back as TOML: the run directory's recipe.toml reads back identically."""

import dataclasses
import os
import stat

import pytest

from toolkit.recipe.dump import dumps_recipe, format_value, write_recipe, write_text_atomic
from toolkit.recipe.load import load_recipe, shipped_recipes
from toolkit.recipe.schema import DataConfig, ModelConfig, OptimizerConfig, Recipe


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


def test_write_text_atomic_replaces_without_leftovers(tmp_path):
    target = tmp_path / "sub" / "summary.json"
    write_text_atomic(target, "old")
    write_text_atomic(target, "new")
    assert target.read_text() == "new"
    assert sorted(os.listdir(target.parent)) == ["summary.json"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask


def test_failed_write_leaves_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "recipe.toml"
    write_text_atomic(target, "good")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_text_atomic(target, "bad")
    assert target.read_text() == "good"
    assert sorted(os.listdir(tmp_path)) == ["recipe.toml"]


def test_dataclass_replace_keeps_round_trip(tmp_path):
    recipe = dataclasses.replace(Recipe(), name="x")
    assert load_recipe(write_recipe(recipe, tmp_path / "x.toml")) == recipe

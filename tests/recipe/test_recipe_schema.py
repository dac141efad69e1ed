"""The recipe schema: one place defines every key, its type, default and help."""

import dataclasses
import types
import typing

import pytest

from toolkit.recipe.keys import iter_keys
from toolkit.recipe.schema import (
    TABLES,
    CallbacksConfig,
    Recipe,
    TrainConfig,
    TuneConfig,
)

_PYTHON_TYPES = {int: int, float: float, str: str, bool: bool}


@pytest.mark.parametrize("info", list(iter_keys()), ids=lambda info: info.key)
def test_every_key_has_help_and_a_default_of_its_type(info):
    assert info.help.strip() and "\n" not in info.help
    expected = _PYTHON_TYPES.get(info.type, tuple)
    if isinstance(info.type, types.UnionType):  # e.g. data.in_memory: true, false or "auto"
        expected = type(info.default)
        assert expected in typing.get_args(info.type)
    assert type(info.default) is expected
    if expected is tuple:
        assert all(type(item) is int and item > 0 for item in info.default)
    if info.choices:
        assert info.default in info.choices
    if info.minimum is not None:
        assert info.default >= info.minimum


def test_iter_keys_covers_every_table_field():
    keys = [info.key for info in iter_keys()]
    expected = [f"{table}.{field.name}" for table, cls in TABLES.items()
                for field in dataclasses.fields(cls)]
    assert keys == expected
    for key in ("data.name", "data.batch_size", "data.sampling", "model.name",
                "optimizer.learning_rate", "train.steps", "train.eval_every_steps",
                "train.seed", "train.deterministic", "train.log_every_steps"):
        assert key in keys


def test_recipe_tables_match_the_table_registry():
    names = [field.name for field in dataclasses.fields(Recipe)]
    assert names == ["name", *TABLES]
    for table, cls in TABLES.items():
        assert isinstance(getattr(Recipe(), table), cls)


def test_configs_are_frozen():
    recipe = Recipe()
    with pytest.raises(dataclasses.FrozenInstanceError):
        recipe.train.steps = 5
    with pytest.raises(dataclasses.FrozenInstanceError):
        recipe.name = "other"


def test_callbacks_and_tune_tables_declare_their_keys():
    assert [f.name for f in dataclasses.fields(CallbacksConfig)] == [
        "gradient_noise_every_steps", "sharpness_every_steps", "restore_best"]
    assert "space" in [f.name for f in dataclasses.fields(TuneConfig)]
    with pytest.raises(TypeError):
        TrainConfig(epochs=3)

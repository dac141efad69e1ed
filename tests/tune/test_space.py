"""The `[tune]` table: parsing, checks of every candidate value, round trip through TOML."""

import tomllib
from pathlib import Path

import pytest

from toolkit.errors import RecipeError
from toolkit.recipe.dump import dumps_recipe
from toolkit.recipe.load import load_recipe, recipe_from_dict
from toolkit.recipe.space_tables import with_values
from toolkit.tune.space import declare_space, hparam_domains, recipe_values

TINY = Path(__file__).with_name("tiny_search.toml")


def _space(entries):
    return recipe_from_dict({"tune": {"space": entries}}).tune.space


def test_ranges_choices_and_booleans_become_keras_tuner_hyperparameters():
    space = _space({
        "optimizer.learning_rate": {"min": 1e-4, "max": 1e-2, "sampling": "log"},
        "model.kernel_size": {"min": 3, "max": 7, "step": 2},
        "model.filters": {"choices": [[32, 32], [64, 64]]},
        "train.deterministic": {"choices": [True, False]},
        "optimizer.name": {"choices": ["adam", "sgd"]},
    })
    hp = declare_space(space)
    kinds = {p.name: type(p).__name__ for p in hp.space}
    assert kinds == {"optimizer.learning_rate": "Float", "model.kernel_size": "Int",
                     "model.filters": "Choice", "train.deterministic": "Boolean",
                     "optimizer.name": "Choice"}
    assert hp.space[0].sampling == "log"
    # Lists are offered to KerasTuner as their TOML text and come back as tuples.
    assert hp.space[2].values == ["[32, 32]", "[64, 64]"]
    values = recipe_values(space, {p.name: p.default for p in hp.space})
    recipe = with_values(recipe_from_dict({}), values)
    assert recipe.model.filters == (32, 32) and recipe.model.kernel_size == 3
    assert hparam_domains(space)["model.filters"] == ["[32, 32]", "[64, 64]"]


@pytest.mark.parametrize("entries, message", [
    ({"optimizer.learnig_rate": {"min": 1, "max": 2}}, "Did you mean 'optimizer.learning_rate'"),
    ({"tune.max_trials": {"min": 1, "max": 2}}, "not a recipe key"),
    ({"data.augment": {"choices": [[]]}}, "holds tables"),
    ({"optimizer.learning_rate": {"min": 1e-2, "max": 1e-4}}, "must be below max"),
    ({"optimizer.learning_rate": {"min": 0.0, "max": 1e-2, "sampling": "log"}}, "needs min > 0"),
    ({"optimizer.learning_rate": {"min": 1e-4}}, "needs finite numbers"),
    ({"model.filters": {"choices": []}}, "non-empty list"),
    ({"model.filters": {"choice": [[8]]}}, "Did you mean 'choices'"),
    # Every candidate is checked against its key, at load time, not hours into a search.
    ({"model.pool": {"choices": ["max", "avg"]}}, "must be one of 'max', 'none'"),
    ({"data.batch_size": {"min": 0, "max": 64}}, "must be >= 1"),
])
def test_bad_entries_are_named_at_load_time(entries, message):
    with pytest.raises(RecipeError, match=message):
        _space(entries)


def test_the_tune_table_round_trips_through_the_resolved_recipe():
    recipe = load_recipe(TINY)
    assert len(recipe.tune.space) == 2
    again = recipe_from_dict(tomllib.loads(dumps_recipe(recipe)))
    assert again == recipe


def test_the_shipped_tuned_recipe_loads_with_a_validation_split():
    recipe = load_recipe("mnist1d_cnn_tune")
    assert recipe.data.validation_examples == 500
    assert [d.key for d in recipe.tune.space] == ["optimizer.learning_rate", "model.filters"]

"""Recipes: a whole training run described by one small TOML file.

A recipe names the data, the model and its hyperparameters, the optimizer and the step budget,
in the tables `[data]`, `[model]`, `[optimizer]` and `[train]` (`[callbacks]` and `[tune]` are
reserved). `toolkit.recipe.schema` defines every key, its type, default and help; unknown keys and
wrong types are `RecipeError`s that list the valid keys. Recipes shipped with the package
(`shipped_recipes()`) are found by name; `toolkit train` is the command-line front end.

Example:

>>> import tempfile
>>> from toolkit.recipe import load_recipe, run_recipe, smoke_recipe
>>> recipe = load_recipe("digits_mlp", overrides=["optimizer.learning_rate=3e-3"])
>>> recipe.data.name, recipe.optimizer.learning_rate
('digits', 0.003)
>>> result = run_recipe(smoke_recipe(recipe), tempfile.mkdtemp(), verbose=0)  # doctest: +SKIP
>>> result.summary["steps"]  # doctest: +SKIP
20
"""

from toolkit.recipe.build import build_data, build_model
from toolkit.recipe.dump import dumps_recipe, write_recipe
from toolkit.recipe.load import (
    load_recipe,
    parse_override,
    recipe_from_dict,
    resolve_recipe,
    shipped_recipes,
)
from toolkit.recipe.run import RunResult, default_run_dir, run_recipe, smoke_recipe
from toolkit.recipe.keys import iter_keys
from toolkit.recipe.schema import (
    CallbacksConfig,
    DataConfig,
    ModelConfig,
    OptimizerConfig,
    Recipe,
    TrainConfig,
    TuneConfig,
)

__all__ = [
    "CallbacksConfig",
    "DataConfig",
    "ModelConfig",
    "OptimizerConfig",
    "Recipe",
    "RunResult",
    "TrainConfig",
    "TuneConfig",
    "build_data",
    "build_model",
    "default_run_dir",
    "dumps_recipe",
    "iter_keys",
    "load_recipe",
    "parse_override",
    "recipe_from_dict",
    "resolve_recipe",
    "run_recipe",
    "shipped_recipes",
    "smoke_recipe",
    "write_recipe",
]

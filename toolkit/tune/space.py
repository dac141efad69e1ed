"""A recipe's `[tune.space]` as KerasTuner hyperparameters, and trial values back as recipe keys.

KerasTuner's `Choice` holds scalars of one type, so choices that are lists (`model.filters`) or
of mixed types are offered to KerasTuner as their TOML text (`"[32, 32]"`) and mapped back by
`recipe_values`. Hyperparameters keep the recipe key as their name (`optimizer.learning_rate`),
so KerasTuner's summaries, `trial.json` files and TensorBoard's HParams table use the recipe's
own words.

Example:

>>> from toolkit.recipe.schema import SearchDimension
>>> space = (SearchDimension("optimizer.learning_rate", min_value=1e-4, max_value=1e-2,
...                          sampling="log"),
...          SearchDimension("model.filters", choices=((32, 32), (64, 64))))
>>> hp = declare_space(space)
>>> [p.name for p in hp.space]
['optimizer.learning_rate', 'model.filters']
>>> recipe_values(space, {"optimizer.learning_rate": 3e-3, "model.filters": "[64, 64]",
...                       "tuner/epochs": 3})
{'optimizer.learning_rate': 0.003, 'model.filters': (64, 64)}
"""

from typing import Any, Dict, Mapping, Sequence

from toolkit.recipe.dump import format_value
from toolkit.recipe.schema import SearchDimension

__all__ = ["declare_space", "hparam_domains", "recipe_values", "tuned_values"]


def declare_space(space: Sequence[SearchDimension], hp: Any = None) -> Any:
    """Registers each dimension as a KerasTuner hyperparameter.

    Args:
        space: The `[tune.space]` dimensions.
        hp: A `keras_tuner.HyperParameters` to add to. Defaults to `None` (a new one).

    Returns:
        The `keras_tuner.HyperParameters`.

    Example:

    >>> from toolkit.recipe.schema import SearchDimension
    >>> hp = declare_space([SearchDimension("train.deterministic", choices=(True, False))])
    >>> type(hp.space[0]).__name__
    'Boolean'
    """
    import keras_tuner

    hp = hp if hp is not None else keras_tuner.HyperParameters()
    for dimension in space:
        kind, name = dimension.kind, dimension.key
        if kind == "bool":
            hp.Boolean(name)
        elif kind == "choice":
            hp.Choice(name, list(_offered(dimension)), ordered=False)
        elif kind == "int":
            hp.Int(name, dimension.min_value, dimension.max_value,
                   step=dimension.step, sampling=dimension.sampling)
        else:
            hp.Float(name, float(dimension.min_value), float(dimension.max_value),
                     step=dimension.step, sampling=dimension.sampling)
    return hp


def _offered(dimension: SearchDimension) -> tuple:
    """The choices as KerasTuner takes them: scalars of one type, or their TOML text."""
    types = {type(choice) for choice in dimension.choices}
    if len(types) == 1 and types <= {int, float, str}:
        return dimension.choices
    return tuple(format_value(choice) for choice in dimension.choices)


def recipe_values(space: Sequence[SearchDimension], values: Mapping[str, Any]) -> Dict[str, Any]:
    """A trial's hyperparameter values as recipe key values (KerasTuner's own keys dropped).

    Args:
        space: The `[tune.space]` dimensions.
        values: `trial.hyperparameters.values`.

    Returns:
        `table.key` -> value, ready for `toolkit.recipe.space_tables.with_values`.
    """
    result = {}
    for dimension in space:
        value = values[dimension.key]
        if dimension.kind == "choice":
            offered = _offered(dimension)
            value = dimension.choices[offered.index(value)]
        result[dimension.key] = value
    return result


def tuned_values(space: Sequence[SearchDimension], values: Mapping[str, Any]) -> Dict[str, Any]:
    """A trial's values as TensorBoard HParams values: bool, int, float or str (lists as text).

    Args:
        space: The `[tune.space]` dimensions.
        values: `trial.hyperparameters.values`.

    Returns:
        `table.key` -> scalar.

    Example:

    >>> from toolkit.recipe.schema import SearchDimension
    >>> tuned_values([SearchDimension("model.filters", choices=((8,), (16,)))],
    ...              {"model.filters": "[16]"})
    {'model.filters': '[16]'}
    """
    return {dimension.key: values[dimension.key] for dimension in space}


def hparam_domains(space: Sequence[SearchDimension]) -> Dict[str, Any]:
    """The dimensions as TensorBoard HParams domains (`toolkit.report.hparams.write_experiment`).

    Args:
        space: The `[tune.space]` dimensions.

    Returns:
        `table.key` -> a list of values (choices, as `tuned_values` gives them) or a
        `(min, max)` tuple.

    Example:

    >>> from toolkit.recipe.schema import SearchDimension
    >>> hparam_domains([SearchDimension("model.filters", choices=((8,), (16,))),
    ...                 SearchDimension("optimizer.learning_rate", min_value=1e-4,
    ...                                 max_value=1e-2)])
    {'model.filters': ['[8]', '[16]'], 'optimizer.learning_rate': (0.0001, 0.01)}
    """
    domains = {}
    for dimension in space:
        if dimension.kind == "bool":
            domains[dimension.key] = [False, True]
        elif dimension.kind == "choice":
            domains[dimension.key] = list(_offered(dimension))
        else:
            domains[dimension.key] = (dimension.min_value, dimension.max_value)
    return domains

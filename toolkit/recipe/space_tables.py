"""`[tune.space]`: the recipe keys a search varies and the values it tries for each.

    [tune.space]
    "optimizer.learning_rate" = {min = 1e-4, max = 1e-2, sampling = "log"}
    "model.filters" = {choices = [[32, 32, 32, 32], [64, 64, 64, 64]]}
    "model.kernel_size" = {min = 3, max = 7, step = 2}

`parse_space` checks the entries when a recipe is loaded: every key must be a recipe key outside
`[tune]`, and every candidate value (each choice, both bounds) must be a valid value of that key,
so a search never discovers a bad value hours into its run. `with_values` applies one trial's
values to a recipe, through the same checks as `--set`.

Example:

>>> parse_space({"optimizer.learning_rate": {"min": 1e-4, "max": 1e-2, "sampling": "log"}},
...             "tune.space", "recipe")
(optimizer.learning_rate in [0.0001, 0.01] (log),)
"""

import dataclasses
import difflib
import math
from typing import Any, Mapping

from toolkit.errors import RecipeError
from toolkit.recipe.schema import TABLES, Recipe, SearchDimension

__all__ = ["parse_space", "with_values"]

_KEYS = ("choices", "min", "max", "sampling", "step")
_SAMPLINGS = ("linear", "log", "reverse_log")
# Keys whose values are tables or lists of tables: KerasTuner's choices hold scalars only.
_NOT_SEARCHABLE = ("data.augment", "data.sources")


def parse_space(value: Any, key: str, source: str) -> tuple:
    """Checks the `[tune.space]` entries and returns them as `SearchDimension`s.

    Args:
        value: The TOML value: `{"table.key": {"min": ..., "max": ...} or {"choices": [...]}}`.
        key: The recipe key, for messages (`"tune.space"`).
        source: Where the value came from (a file or a `--set`), for messages.

    Returns:
        A tuple of `SearchDimension`, in the order of the entries.

    Raises:
        RecipeError: For an entry that names no recipe key, a key of `[tune]`, an unknown
            field, a range with min >= max or a non-positive log bound, or empty choices.

    Example:

    >>> parse_space({"optimizer.learning_rate": {"min": 1e-2, "max": 1e-4}}, "tune.space",
    ...             "x.toml")
    Traceback (most recent call last):
    ...
    toolkit.errors.RecipeError: x.toml: [tune.space] "optimizer.learning_rate": min (0.01) must \
be below max (0.0001).
    """
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        raise RecipeError(
            f'{source}: `{key}` must map recipe keys to tables, e.g. [tune.space] with '
            f'"optimizer.learning_rate" = {{min = 1e-4, max = 1e-2, sampling = "log"}}. '
            f"Received: {value!r}."
        )
    return tuple(_parse_entry(name, entry, source) for name, entry in value.items())


def _parse_entry(name: str, entry: dict, source: str) -> SearchDimension:
    where = f'{source}: [tune.space] "{name}"'
    _check_key(name, where)
    for field in entry:
        if field not in _KEYS:
            close = difflib.get_close_matches(field, _KEYS, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise RecipeError(f"{where}: unknown field {field!r}. Valid fields: "
                              f"{', '.join(_KEYS)}.{hint}")
    if "choices" in entry:
        extra = [f for f in entry if f != "choices"]
        choices = entry["choices"]
        if extra or not isinstance(choices, list) or not choices:
            raise RecipeError(
                f"{where}: give either a non-empty list of choices, e.g. {{choices = [32, 64]}}, "
                f"or a range {{min = ..., max = ...}}, not both. Received: {entry!r}."
            )
        return SearchDimension(name, choices=tuple(_hashable(c) for c in choices))
    low, high = entry.get("min"), entry.get("max")
    numbers = [v for v in (low, high) if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if len(numbers) != 2 or not all(math.isfinite(v) for v in numbers):
        raise RecipeError(
            f"{where}: a range needs finite numbers `min` and `max`, e.g. {{min = 1e-4, "
            f"max = 1e-2, sampling = \"log\"}}; or give {{choices = [...]}}. Received: {entry!r}."
        )
    if low >= high:
        raise RecipeError(f"{where}: min ({low!r}) must be below max ({high!r}).")
    sampling = entry.get("sampling", "linear")
    if sampling not in _SAMPLINGS:
        raise RecipeError(f"{where}: sampling must be one of {', '.join(_SAMPLINGS)}. "
                          f"Received: {sampling!r}.")
    if sampling != "linear" and low <= 0:
        raise RecipeError(f"{where}: {sampling} sampling needs min > 0. Received: {low!r}.")
    step = entry.get("step")
    if step is not None and (isinstance(step, bool) or not isinstance(step, (int, float))
                             or step <= 0):
        raise RecipeError(f"{where}: step must be a positive number. Received: {step!r}.")
    return SearchDimension(name, min_value=low, max_value=high, sampling=sampling, step=step)


def _check_key(name: str, where: str) -> None:
    table, _, field = name.partition(".")
    keys = [f"{t}.{f.name}" for t, cls in TABLES.items() if t != "tune"
            for f in dataclasses.fields(cls)]
    if name in _NOT_SEARCHABLE:
        raise RecipeError(f"{where}: {name} holds tables, which a search cannot vary. Search "
                          f"over plain keys (numbers, strings, booleans, lists of integers).")
    if name not in keys:
        close = difflib.get_close_matches(name, keys, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise RecipeError(f"{where}: not a recipe key (quote it as \"table.key\"; `toolkit "
                          f"train --help` lists them).{hint}")


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def with_values(recipe: Recipe, values: Mapping[str, Any], source: str = "tune.space") -> Recipe:
    """Returns `recipe` with `table.key` values set, each checked as a `--set` value would be.

    Args:
        recipe: The recipe.
        values: `table.key` -> value (lists as lists or tuples).
        source: Where the values come from, for messages. Defaults to `"tune.space"`.

    Returns:
        A new `Recipe`.

    Raises:
        RecipeError: For an unknown key or a value its key does not accept.

    Example:

    >>> with_values(Recipe(), {"model.filters": (16, 16)}).model.filters
    (16, 16)
    """
    from toolkit.recipe.load import coerce_value

    tables: dict = {}
    for key, value in values.items():
        table, _, name = key.partition(".")
        if table not in TABLES or table == "tune":
            raise RecipeError(f"{source}: {key!r} is not a recipe key outside [tune].")
        fields = {f.name: f for f in dataclasses.fields(TABLES[table])}
        if name not in fields:
            raise RecipeError(f"{source}: {key!r} is not a recipe key.")
        plain = list(value) if isinstance(value, tuple) else value
        tables.setdefault(table, {})[name] = coerce_value(key, fields[name], plain, source)
    return dataclasses.replace(recipe, **{
        table: dataclasses.replace(getattr(recipe, table), **changes)
        for table, changes in tables.items()})


def check_candidates(recipe: Recipe, space: tuple, source: str) -> None:
    """Raises `RecipeError` if a choice or a bound of `space` is not a valid value of its key."""
    for dimension in space:
        candidates = dimension.choices or (dimension.min_value, dimension.max_value)
        for candidate in candidates:
            with_values(recipe, {dimension.key: candidate},
                        f'{source}: [tune.space] "{dimension.key}"')

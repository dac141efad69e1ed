"""Reading recipes: TOML files, `--set` overrides, shipped recipe names.

`load_recipe(path, overrides)` parses the file with the standard library's `tomllib`, applies
`--set table.key=value` overrides (values are TOML: `3e-3`, `[64, 64]`, `true`; a bare word is a
string), and checks every key and type against `toolkit.recipe.schema`. Every mistake is a
`RecipeError` whose one line names the key, what was expected, what was received and the fix.

Example:

>>> from toolkit.recipe import load_recipe
>>> recipe = load_recipe("mnist1d_mlp", overrides=["train.steps=200"])
>>> recipe.name, recipe.train.steps, recipe.model.name
('mnist1d_mlp', 200, 'mlp')
"""

import dataclasses
import difflib
import importlib.resources
import math
import os
import sys
from pathlib import Path
from typing import Any, Iterable

from toolkit.errors import RecipeError
from toolkit.recipe.augmentations import parse_augment
from toolkit.recipe.dump import format_value
from toolkit.recipe.schema import TABLES, AugmentStep, Recipe, SearchDimension, SourceConfig
from toolkit.recipe.source_tables import parse_sources
from toolkit.recipe.space_tables import check_candidates, parse_space

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, packaged as `tomli`.
    import tomli as tomllib

__all__ = [
    "coerce_value", "load_recipe", "parse_override", "recipe_from_dict", "resolve_recipe",
    "shipped_recipes",
]

DEFAULT_RECIPE = "mnist1d_cnn"
_TOP_LEVEL = ("name",) + tuple(TABLES)


def shipped_recipes() -> list[str]:
    """Returns the names of the recipes shipped inside the package, sorted.

    Example:

    >>> "mnist1d_cnn" in shipped_recipes()
    True
    """
    folder = importlib.resources.files("toolkit") / "recipes"
    return sorted(p.name[: -len(".toml")] for p in folder.iterdir() if p.name.endswith(".toml"))


def resolve_recipe(recipe: str | os.PathLike | None = None) -> Path:
    """Finds a recipe file: a path, a shipped recipe's name, or `None` for the default.

    A bare name without a `.toml` suffix or a path separator (`"mnist1d_mlp"`) names a recipe
    shipped in the package, unless a file of that exact name exists.

    Args:
        recipe: Path to a TOML file, a shipped recipe's name, or `None` for `mnist1d_cnn`.
            Defaults to `None`.

    Returns:
        The path of the recipe file.

    Raises:
        RecipeError: If the file does not exist or the name is not a shipped recipe.

    Example:

    >>> resolve_recipe("mnist1d_cnn").name
    'mnist1d_cnn.toml'
    """
    text = DEFAULT_RECIPE if recipe is None else os.fspath(recipe)
    path = Path(text)
    if path.is_file():
        return path
    is_name = path.suffix != ".toml" and os.sep not in text and "/" not in text
    if is_name and text in shipped_recipes():
        shipped = importlib.resources.files("toolkit") / "recipes" / f"{text}.toml"
        return Path(str(shipped))
    known = ", ".join(shipped_recipes())
    what = "recipe file" if not is_name else "recipe file or shipped recipe"
    raise RecipeError(
        f"Cannot find the {what} {text!r}. Pass the path of an existing .toml file or one of the "
        f"shipped recipes: {known}."
    )


def load_recipe(path: str | os.PathLike | None = None, overrides: Iterable[str] = ()) -> Recipe:
    """Reads, overrides and validates a recipe.

    Args:
        path: Path to a TOML recipe, a shipped recipe's name, or `None` for the default recipe.
            Defaults to `None`.
        overrides: `"table.key=value"` strings (the CLI's `--set`), applied in order. Values are
            parsed as TOML; a value that is not TOML is taken as a string. Defaults to `()`.

    Returns:
        A validated `Recipe`, named after the file's stem unless the file sets `name`.

    Raises:
        RecipeError: For a missing file, malformed TOML (with line and column), an unknown key, a
            wrong type or a bad override.

    Example:

    >>> load_recipe(overrides=["optimizer.learning_rate=3e-3"]).optimizer.learning_rate
    0.003
    """
    file = resolve_recipe(path)
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise RecipeError(f"{file}: malformed TOML: {error}. Fix the syntax there.") from None
    except (OSError, UnicodeDecodeError) as error:
        raise RecipeError(f"Cannot read the recipe file {str(file)!r}: {error}.") from None
    raw.setdefault("name", file.stem)
    origins = {}
    for override in overrides:
        key, value = parse_override(override)
        origins[_set(raw, key, value, f"--set {override}")] = f"--set {override}"
    return recipe_from_dict(raw, source=str(file), origins=origins)


def parse_override(text: str) -> tuple[str, Any]:
    """Splits a `--set` expression into its key and value.

    The value is parsed as a TOML value; if it is not valid TOML it is kept as a plain string,
    so `data.name=digits` works without quotes. The type is checked later, against the schema.

    Args:
        text: `"table.key=value"`.

    Returns:
        `(key, value)`.

    Raises:
        RecipeError: If `text` has no `=` or no key.

    Example:

    >>> parse_override("model.hidden_units=[64, 64]")
    ('model.hidden_units', [64, 64])
    >>> parse_override("data.name=digits")
    ('data.name', 'digits')
    """
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise RecipeError(
            f"Bad override {text!r}: expected KEY=VALUE such as `train.steps=1000`. "
            f"Valid keys are listed by `toolkit train --help`."
        )
    try:
        return key, tomllib.loads(f"value = {value}")["value"]
    except tomllib.TOMLDecodeError:
        return key, value.strip()


def _set(raw: dict, key: str, value: Any, origin: str) -> str:
    """Stores an override into the raw TOML dict after checking its key; returns the key."""
    table, dot, name = key.partition(".")
    if key == "name":
        raw["name"] = value
        return key
    if not dot:
        raise RecipeError(
            f"{origin}: the key {key!r} has no table. Use `table.key` with a table among "
            f"{', '.join(TABLES)}, e.g. `train.steps`."
        )
    _check_known(table, TABLES, origin, "table")
    name, _, path = name.partition(".")  # data.sources.<head>.<key> reaches into a sub-table
    _check_known(name, [field.name for field in dataclasses.fields(TABLES[table])],
                 f"{origin}: [{table}]", "key")
    target = raw.setdefault(table, {})
    if not isinstance(target, dict):
        raise RecipeError(f"{origin}: {table!r} in the recipe is not a table. Make it [{table}].")
    if path:
        head, _, sub_key = path.partition(".")
        if (table, name) != ("data", "sources") or not head or not sub_key:
            raise RecipeError(
                f"{origin}: {key!r} is not a key. Only [data.sources.<head>] tables take dotted "
                f"keys, e.g. `data.sources.digit.weight=2`."
            )
        target = target.setdefault(name, {})
        target = target.setdefault(head, {}) if isinstance(target, dict) else None
        if not isinstance(target, dict):
            raise RecipeError(f"{origin}: `{table}.{name}.{head}` in the recipe is not a table.")
        target[sub_key] = value
        return f"{table}.{name}"
    target[name] = value
    return key


def _check_known(name: str, valid: Iterable[str], origin: str, what: str) -> None:
    """Raises a `RecipeError` listing the valid names if `name` is not one of them."""
    valid = list(valid)
    if name in valid:
        return
    close = difflib.get_close_matches(name, valid, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    listed = ", ".join(valid) if valid else "none yet (the table is reserved)"
    raise RecipeError(f"{origin}: unknown {what} {name!r}. Valid {what}s: {listed}.{hint}")


def recipe_from_dict(raw: dict, source: str = "recipe", origins: dict | None = None) -> Recipe:
    """Builds a validated `Recipe` from a dict shaped like the TOML file.

    Args:
        raw: `{"name": ..., "data": {...}, "model": {...}, ...}`; missing keys take defaults.
        source: Where the dict came from, for error messages. Defaults to `"recipe"`.
        origins: `"table.key"` -> where that value came from (e.g. `"--set train.steps=abc"`),
            overriding `source` in error messages. Defaults to `None`.

    Returns:
        A `Recipe`.

    Raises:
        RecipeError: For an unknown table or key, or a value of the wrong type or out of range.

    Example:

    >>> recipe_from_dict({"name": "tiny", "train": {"steps": 10}}).train.steps
    10
    """
    for key in raw:
        _check_known(key, _TOP_LEVEL, source, "top-level key")
    origins = origins or {}
    name = raw.get("name", "recipe")
    if not isinstance(name, str) or not name:
        raise RecipeError(
            f"{origins.get('name', source)}: `name` must be a non-empty string. "
            f"Received: {name!r}."
        )
    tables = {}
    for table, cls in TABLES.items():
        values = raw.get(table, {})
        if not isinstance(values, dict):
            raise RecipeError(
                f"{source}: {table!r} must be a table ([{table}]). Received: {values!r}."
            )
        fields = {field.name: field for field in dataclasses.fields(cls)}
        for key in values:
            _check_known(key, fields, f"{source}: [{table}]", "key")
        tables[table] = cls(
            **{key: _coerce(f"{table}.{key}", fields[key], v, origins.get(f"{table}.{key}", source))
               for key, v in values.items()}
        )
    recipe = Recipe(name=name, **tables)
    _check_schedules(recipe, source)
    check_candidates(recipe, recipe.tune.space, origins.get("tune.space", source))
    return recipe


def _check_schedules(recipe: Recipe, source: str) -> None:
    """The schedule keys must agree with each other (each alone is checked by its type)."""
    optimizer, data = recipe.optimizer, recipe.data
    for key, steps in (("optimizer.decay_steps", optimizer.decay_steps),
                       ("data.batch_growth_steps", data.batch_growth_steps)):
        if list(steps) != sorted(set(steps)):
            raise RecipeError(f"{source}: `{key}` must be increasing steps, e.g. [1000, 2000]. "
                              f"Received: {list(steps)!r}.")
    if optimizer.schedule == "step" and not optimizer.decay_steps:
        raise RecipeError(f"{source}: `optimizer.schedule` = \"step\" needs "
                          f"`optimizer.decay_steps`, e.g. [1000, 2000].")
    if optimizer.decay_steps and optimizer.schedule != "step":
        raise RecipeError(f"{source}: `optimizer.decay_steps` is only read by "
                          f"optimizer.schedule = \"step\" (the schedule is "
                          f"{optimizer.schedule!r}). Set the schedule or remove the steps.")
    if optimizer.final_anneal_fraction >= 1:
        raise RecipeError(f"{source}: `optimizer.final_anneal_fraction` must be below 1 (a "
                          f"fraction of the budget, e.g. 0.1). Received: "
                          f"{optimizer.final_anneal_fraction!r}.")
    restore = recipe.callbacks.restore_best
    if restore and not restore.startswith("val_"):
        raise RecipeError(f"{source}: `callbacks.restore_best` must name an evaluation metric, "
                          f"val_<metric> such as val_loss or val_accuracy. Received: {restore!r}.")
    if data.batch_growth_steps and data.batch_growth_factor == 1:
        raise RecipeError(f"{source}: `data.batch_growth_factor` = 1 grows nothing at "
                          f"`data.batch_growth_steps`. Use a factor of 2 or more.")


def coerce_value(key: str, field: dataclasses.Field, value: Any, source: str) -> Any:
    """Checks one value of `table.key` against its schema field; returns it normalized.

    Args:
        key: The key, `table.key`.
        field: Its `dataclasses.Field` in `toolkit.recipe.schema`.
        value: The value, as TOML gives it (lists as lists).
        source: Where the value came from, for messages.

    Returns:
        The value as the `Recipe` holds it (lists as tuples, numbers as floats where declared).

    Raises:
        RecipeError: For a value of the wrong type, outside the choices or below the minimum.

    Example:

    >>> from toolkit.recipe.schema import TrainConfig
    >>> field = dataclasses.fields(TrainConfig)[0]
    >>> coerce_value("train.steps", field, 10, "demo")
    10
    """
    return _coerce(key, field, value, source)


def _type_name(annotation: Any) -> str:
    if annotation is bool:
        return "a boolean (true or false)"
    if annotation is int:
        return "an integer"
    if annotation is float:
        return "a number"
    if annotation is str:
        return "a string"
    if annotation == bool | str:
        return 'true, false or a string'
    return "a list of positive integers such as [64, 64]"


def _coerce(key: str, field: dataclasses.Field, value: Any, source: str) -> Any:
    """Checks one value against its field's type, choices and minimum; returns it normalized."""
    annotation = field.type
    if annotation == tuple[AugmentStep, ...]:
        return parse_augment(value, key, source)
    if annotation == tuple[SourceConfig, ...]:
        return parse_sources(value, key, source)
    if annotation == tuple[SearchDimension, ...]:
        return parse_space(value, key, source)
    ok = {
        bool: lambda v: isinstance(v, bool),
        int: lambda v: isinstance(v, int) and not isinstance(v, bool),
        float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        str: lambda v: isinstance(v, str),
        bool | str: lambda v: isinstance(v, (bool, str)),
    }.get(annotation)
    if ok is None:  # tuple[int, ...]
        ok = lambda v: isinstance(v, list) and all(  # noqa: E731
            isinstance(i, int) and not isinstance(i, bool) and i > 0 for i in v
        )
    if not ok(value):
        fix = (f'Quote strings in TOML: {key.partition(".")[2]} = "..."' if annotation is str
               else f"For example: {key}={format_value(field.default)}")
        raise RecipeError(
            f"{source}: `{key}` must be {_type_name(annotation)}. Received: {value!r} "
            f"({type(value).__name__}). {fix}."
        )
    if annotation is float:
        value = float(value)
        if not math.isfinite(value):
            raise RecipeError(f"{source}: `{key}` must be finite. Received: {value!r}.")
    if isinstance(value, list):
        value = tuple(value)
    choices, minimum = field.metadata["choices"], field.metadata["minimum"]
    if choices and value not in choices:
        raise RecipeError(
            f"{source}: `{key}` must be one of "
            f"{', '.join(format_value(c) if isinstance(c, bool) else repr(c) for c in choices)}. "
            f"Received: {value!r}."
        )
    if minimum is not None and value < minimum:
        raise RecipeError(f"{source}: `{key}` must be >= {minimum!r}. Received: {value!r}.")
    return value

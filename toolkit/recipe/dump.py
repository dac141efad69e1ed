"""Writing a recipe back as TOML (the run directory's `recipe.toml`).

The standard library reads TOML but does not write it; `tomli_w`, the writer that pairs with the
standard library's parser (same author, same specification), writes it here, so quoting, escapes
and float forms are a maintained library's rather than a hand-written subset. The recipe becomes
a document of plain values first: tuples become arrays, each `data.augment` step a table
(`tomli_w` writes it inline, `{ name = ..., ... }`, or as `[[data.augment]]` when longer than a
line) and `data.sources` the `[data.sources.<head>]` sub-tables. The output reads back with
`load_recipe` to an equal `Recipe`.

Example:

>>> from toolkit.recipe import Recipe
>>> from toolkit.recipe.dump import dumps_recipe
>>> print(dumps_recipe(Recipe(name="demo")).splitlines()[0])
name = "demo"
"""

import dataclasses
import os
from pathlib import Path
from typing import Any

import tomli_w

from toolkit import atomic_write
from toolkit.recipe.schema import TABLES, AugmentStep, Recipe, SearchDimension, SourceConfig

__all__ = ["dumps_recipe", "format_value", "write_recipe"]


def format_value(value: Any) -> str:
    """Formats one schema value (bool, int, float, str, tuple, `AugmentStep`) as a TOML value.

    The value is written on one line, as a `--set` override or a key listing shows it; scalars
    are formatted by `tomli_w`.

    Args:
        value: The value.

    Returns:
        Its TOML text.

    Raises:
        TypeError: If the value is of a type no recipe key holds.

    Example:

    >>> format_value(3e-3), format_value((64, 64)), format_value("mlp")
    ('0.003', '[64, 64]', '"mlp"')
    >>> format_value(AugmentStep("random_shift", (("max_shift", 4),)))
    '{name = "random_shift", max_shift = 4}'
    """
    if isinstance(value, AugmentStep):
        pairs = _augment_table(value).items()
        return "{" + ", ".join(f"{key} = {format_value(item)}" for key, item in pairs) + "}"
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(format_value(item) for item in value) + "]"
    if isinstance(value, (bool, int, float, str)):
        # A one-key document is `v = <value>\n`; tomli_w formats the value itself.
        return tomli_w.dumps({"v": value})[len("v = ") : -1]
    raise TypeError(f"Cannot write {value!r} ({type(value).__name__}) as a TOML value.")


def dumps_recipe(recipe: Recipe, header: str = "") -> str:
    """Returns the recipe as TOML text, every key written out (defaults included).

    Args:
        recipe: The recipe to write.
        header: Comment text put first, one `# ` line per line. Defaults to `""`.

    Returns:
        The TOML document.

    Example:

    >>> text = dumps_recipe(Recipe(name="demo"))
    >>> "[train]" in text and "steps = 3000" in text
    True
    """
    comments = "".join(f"# {line}".rstrip() + "\n" for line in header.splitlines())
    document = {"name": recipe.name}
    document.update((table, _table(getattr(recipe, table))) for table in TABLES)
    return comments + tomli_w.dumps(document)


def _table(config: Any) -> dict:
    """One schema table as plain TOML values: arrays, inline tables and sub-tables."""
    table = {}
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if field.type == tuple[SourceConfig, ...]:
            # No sources: no `[data.sources.<head>]` table, rather than an empty `[data.sources]`.
            if value:
                table[field.name] = {s.head: {"name": s.name, "weight": s.weight} for s in value}
        elif field.type == tuple[SearchDimension, ...]:
            if value:
                table[field.name] = {d.key: _dimension_table(d) for d in value}
        else:
            table[field.name] = _toml_value(value)
    return table


def _toml_value(value: Any) -> Any:
    if isinstance(value, AugmentStep):
        return _augment_table(value)
    if isinstance(value, tuple):
        return [_toml_value(item) for item in value]
    return value


def _dimension_table(dimension: SearchDimension) -> dict:
    if dimension.choices:
        return {"choices": [_toml_value(choice) for choice in dimension.choices]}
    table = {"min": dimension.min_value, "max": dimension.max_value}
    if dimension.sampling != "linear":
        table["sampling"] = dimension.sampling
    if dimension.step is not None:
        table["step"] = dimension.step
    return table


def _augment_table(step: AugmentStep) -> dict:
    return {"name": step.name, **dict(step.arguments)}


def write_recipe(recipe: Recipe, path: str | os.PathLike, header: str = "") -> Path:
    """Writes the recipe to `path` atomically and durably (`toolkit.atomic_write`).

    Args:
        recipe: The recipe to write.
        path: Destination file; its folder is created if needed.
        header: Comment text put first. Defaults to `""`.

    Returns:
        The path written.

    Example:

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> write_recipe(Recipe(name="demo"), folder / "recipe.toml").name
    'recipe.toml'
    """
    return atomic_write.write_text(path, dumps_recipe(recipe, header))

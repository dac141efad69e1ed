"""`[data.sources.<head>]`: one dataset per model head, each with its own loss (S0.1).

    [data.sources.digit]          # head `digit`: classification, cross-entropy, accuracy
    name = "mnist1d"
    weight = 0.5

    [data.sources.position]       # head `position`: regression, mean squared error
    name = "mnist1d_position"
    weight = 0.5

`parse_sources` validates the tables when a recipe is loaded: head names must be valid Keras
layer names (they name the model outputs and the logged metrics, `digit_loss`), every table needs
a `name`, and `weight` must be a positive number.

Example:

>>> parse_sources({"digit": {"name": "mnist1d"}}, "data.sources", "recipe")
(digit: mnist1d (weight 1.0),)
"""

import difflib
import math
import re
from typing import Any

from toolkit.errors import RecipeError
from toolkit.recipe.schema import SourceConfig

__all__ = ["parse_sources"]

_HEAD = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
_KEYS = ("name", "weight")


def parse_sources(value: Any, key: str, source: str) -> tuple:
    """Checks the `[data.sources.<head>]` tables and returns them as `SourceConfig`s.

    Args:
        value: The TOML value: a table of tables, `{head: {"name": ..., "weight": ...}}`.
        key: The recipe key, for messages (`"data.sources"`).
        source: Where the value came from (a file or a `--set`), for messages.

    Returns:
        A tuple of `SourceConfig`, in the order of the tables.

    Raises:
        RecipeError: For a value that is not a table of tables, a bad head name, an unknown or
            missing key, or a weight that is not a positive number.

    Example:

    >>> parse_sources({"digit": {"name": "mnist1d", "wieght": 2}}, "data.sources", "x.toml")
    Traceback (most recent call last):
    ...
    toolkit.errors.RecipeError: x.toml: [data.sources.digit]: unknown key 'wieght'. Valid keys: \
name, weight. Did you mean 'weight'?
    """
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        raise RecipeError(
            f"{source}: `{key}` must hold one table per head, e.g. [data.sources.digit] with "
            f'name = "mnist1d". Received: {value!r}.'
        )
    return tuple(_parse_table(head, table, source) for head, table in value.items())


def _parse_table(head: str, table: dict, source: str) -> SourceConfig:
    where = f"{source}: [data.sources.{head}]"
    if not _HEAD.match(head):
        raise RecipeError(
            f"{where}: the head name {head!r} must start with a letter and hold only letters, "
            f"digits and underscores (it names the model output and its metrics). Rename the "
            f"table, e.g. [data.sources.digit]."
        )
    for name in table:
        if name not in _KEYS:
            close = difflib.get_close_matches(name, _KEYS, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise RecipeError(
                f"{where}: unknown key {name!r}. Valid keys: {', '.join(_KEYS)}.{hint}"
            )
    name = table.get("name")
    if not isinstance(name, str) or not name:
        raise RecipeError(
            f'{where}: `name` must name a dataset (e.g. name = "mnist1d", "tfds:mnist" or '
            f'"package.module:function"). Received: {name!r}.'
        )
    weight = table.get("weight", 1.0)
    if (isinstance(weight, bool) or not isinstance(weight, (int, float))
            or not math.isfinite(weight) or weight <= 0):
        raise RecipeError(
            f"{where}: `weight` must be a positive number (the source's relative share of the "
            f"training examples). Received: {weight!r}. Remove the table to drop the source."
        )
    return SourceConfig(head=head, name=name, weight=float(weight))
